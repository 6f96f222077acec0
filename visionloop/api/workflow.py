"""Native REST: workflow runs (training checks, rollbacks) with their steps, the checks' schedules, the
deployment log, and detection addressed to a project (its serving version)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from visionloop.api.deps import Offset, RowId, ServicesDep
from visionloop.api.detect import _DETECT_BODY, ServingDep, _label, _read_image
from visionloop.core import deployments, retraining, runs, schedules
from visionloop.core.records.runs import Run, Trigger
from visionloop.core.services import Services
from visionloop.core.serving import submit_detect
from visionloop.errors import NotReady

router = APIRouter(tags=["workflow"])


class RunIn(BaseModel):
    kind: Literal["training_check", "rollback"] = Field(
        description="training_check: train and deploy if the rules say so; rollback: go back to the "
        "previously deployed version"
    )
    to_version: str | None = Field(default=None, description="rollback only: this version instead")


def run_json(svc: Services, run: Run, steps: bool = False) -> dict[str, Any]:
    data = run.to_dict()
    if steps:
        data["steps"] = [s.to_dict() for s in runs.run_steps(svc, run)]
    return data


@router.get("/projects/{project}/runs")
def list_runs(
    project: str,
    svc: ServicesDep,
    status: str | None = None,
    kind: str | None = None,
    limit: Annotated[int, Query(ge=1, le=runs.MAX_LIST)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The project's runs, newest first (each with its state; the steps are in GET …/runs/{id})."""
    found = runs.list_runs(svc, project, status=status, kind=kind, limit=limit, offset=offset)
    return {"runs": [run_json(svc, r) for r in found]}


@router.get("/projects/{project}/runs/{run_id}")
def describe_run(project: str, run_id: RowId, svc: ServicesDep) -> dict[str, Any]:
    """A run with every step: name, status, input, output, error, start and end."""
    return run_json(svc, runs.get_run(svc, project, run_id), steps=True)


@router.post("/projects/{project}/runs", status_code=202)
def start_run(project: str, body: RunIn, svc: ServicesDep) -> dict[str, Any]:
    """Queue a training check or a rollback; the server's workflow runner executes it."""
    if body.kind == "rollback":
        run = deployments.request_rollback(svc, project, body.to_version, Trigger.API)
    else:
        run = retraining.request_check(svc, project, Trigger.API)
    return run_json(svc, run)


@router.get("/projects/{project}/schedules")
def list_schedules(project: str, svc: ServicesDep) -> dict[str, Any]:
    """The periodic checks as armed: enabled, period, next and last run, last result."""
    return {"schedules": [s.to_dict() for s in schedules.list_schedules(svc, project)]}


@router.get("/projects/{project}/deployments")
def list_deployments(
    project: str, svc: ServicesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> dict[str, Any]:
    """The serving version and the deployment log, newest first."""
    serving = deployments.serving_version(svc, project)
    log = deployments.deployments(svc, project, limit)
    return {"serving": serving.name if serving else None, "deployments": [d.to_dict() for d in log]}


@router.post("/projects/{project}/detect", openapi_extra=_DETECT_BODY)
async def detect(
    project: str,
    request: Request,
    svc: ServicesDep,
    srv: ServingDep,
    min_confidence: Annotated[float | None, Query(description="0-100; omitted: per-label thresholds")] = None,
    max_results: Annotated[int | None, Query(description="At most this many labels")] = None,
) -> dict[str, Any]:
    """DetectCustomLabels on the project's serving version; a switch meanwhile is followed."""
    image, body = await _read_image(request)
    if body is not None:
        min_confidence = body.min_confidence if body.min_confidence is not None else min_confidence
        max_results = body.max_results if body.max_results is not None else max_results
    version, future = await run_in_threadpool(
        deployments.submit_detect_project, svc, srv, project, image, min_confidence, max_results
    )
    for attempt in range(deployments.MAX_SWITCH_RETRIES + 1):
        try:
            labels = await asyncio.wrap_future(future)
            return {"project": project, "version": version.name, "labels": [_label(p) for p in labels]}
        except NotReady:
            again = await run_in_threadpool(deployments.retry_target, svc, project, version)
            if again is None or attempt == deployments.MAX_SWITCH_RETRIES:
                raise
            version = again
            future = await run_in_threadpool(
                submit_detect, svc, srv, project, version.name, image, min_confidence, max_results
            )
    raise AssertionError("unreachable")
