"""Native REST: model versions (train, describe with metrics and inference units) and jobs (progress)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from visionloop.api.deps import RowId, ServicesDep
from visionloop.api.detect import ServingDep
from visionloop.core import copies, jobs, projects, training
from visionloop.core.entities import ModelVersion
from visionloop.core.ports import PoolStats
from visionloop.core.serving import serving_state

router = APIRouter(tags=["model versions"])


class TrainIn(BaseModel):
    version_name: str | None = None
    backbone: str = training.DEFAULT_BACKBONE
    mode: str = "fast"
    seed: int = 0
    max_seconds: float | None = Field(default=None, gt=0)
    hyperparams: dict[str, Any] | None = None


# the serving fields a version's description repeats (GET …/serving has them all, with the live queue)
SERVING_FIELDS = ("min_inference_units", "max_inference_units", "inference_units")


def version_json(v: ModelVersion, full: bool = True, stats: PoolStats | None = None) -> dict[str, Any]:
    """``stats``: the version's pool on this server, for the units serving now."""
    state = serving_state(v, stats)
    data: dict[str, Any] = {
        "name": v.name,
        "status": v.status.value,
        "status_message": v.status_message,
        "backbone": v.backbone,
        "mode": v.mode,
        "f1": v.f1,
        "created_at": v.created_at.isoformat(),
        "training_ended_at": v.training_ended_at.isoformat() if v.training_ended_at else None,
        "training_seconds": v.training_seconds,
        "snapshot_id": v.snapshot_id,
        "thresholds": v.thresholds,
        **{k: state[k] for k in SERVING_FIELDS},
    }
    if full:
        data["evaluation"] = v.evaluation
        data["params"] = v.params
    return data


@router.post("/projects/{project}/versions", status_code=202)
def train(project: str, body: TrainIn, svc: ServicesDep) -> dict[str, Any]:
    opts = training.TrainingOptions(
        body.version_name, body.backbone, body.mode, body.seed, body.max_seconds, body.hyperparams
    )
    version, job = training.request_training(svc, project, opts)
    return {"version": version_json(version, full=False), "job": job.to_dict()}


@router.get("/projects/{project}/versions")
def list_versions(project: str, svc: ServicesDep, srv: ServingDep) -> dict[str, Any]:
    versions = projects.list_versions(svc, projects.get_project(svc, project))
    return {"versions": [version_json(v, False, srv.host.stats(v.id)) for v in versions]}


@router.get("/projects/{project}/versions/{version}")
def describe_version(project: str, version: str, svc: ServicesDep, srv: ServingDep) -> dict[str, Any]:
    v = training.get_version(svc, project, version)
    return {**version_json(v, stats=srv.host.stats(v.id)), "copied_from": copies.copy_source(svc, v)}


@router.get("/jobs")
def list_jobs(svc: ServicesDep, project: str | None = None) -> dict[str, Any]:
    return {"jobs": [j.to_dict() for j in jobs.list_jobs(svc, project)]}


@router.get("/jobs/{job_id}")
def get_job(job_id: RowId, svc: ServicesDep) -> dict[str, Any]:
    return jobs.get_job(svc, job_id).to_dict()
