"""Native REST: batch inference over a bucket prefix (core.batch), run by the server in a thread with
local worker processes, and its progress read back from the output prefix."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from visionloop.api.deps import ServicesDep
from visionloop.core.batch import DEFAULT_PART_SIZE, MAX_PART_SIZE, check_job
from visionloop.workflows.batch import BatchJobs

router = APIRouter(tags=["batch"])


class BatchIn(BaseModel):
    model: str = Field(
        description="PROJECT/VERSION (or PROJECT: its newest trained version), or labels, text, moderation"
    )
    source: str = Field(description="s3://BUCKET/PREFIX/ of the images (JPEG/PNG by name)")
    out: str = Field(description="s3://BUCKET/PREFIX/ for the JSON Lines parts, _batch.json, _summary.json")
    workers: int = Field(default=0, ge=0, le=256, description="worker processes (0: one per CPU)")
    part_size: int = Field(default=DEFAULT_PART_SIZE, ge=1, le=MAX_PART_SIZE, description="images per part")
    min_confidence: float | None = Field(default=None, ge=0, le=100)


def batch_jobs(request: Request) -> BatchJobs:
    """The app's batch jobs, created on first use with the engine the server's inference units use."""
    jobs: BatchJobs | None = getattr(request.app.state, "batch_jobs", None)
    if jobs is None:
        host = getattr(request.app.state, "serving", None) and request.app.state.serving.host
        factory = getattr(host, "engine_factory", None)
        jobs = request.app.state.batch_jobs = BatchJobs(request.app.state.settings, factory)
    return jobs


@router.post("/batches", status_code=202)
def start_batch(body: BatchIn, svc: ServicesDep, request: Request) -> dict[str, Any]:
    """Start a batch job (Conflict while one writes to the same output); run it again to resume one
    that stopped. Follow it with GET /batches?out=…"""
    check_job(svc, body.model, body.source, body.out)
    options = body.model_dump(include={"workers", "part_size", "min_confidence"})
    batch_jobs(request).start(body.model, body.source, body.out, **options)
    return {"out": body.out, "running": True}


@router.get("/batches")
def describe_batch(
    svc: ServicesDep,
    request: Request,
    out: Annotated[str, Query(description="the job's s3://BUCKET/PREFIX/")],
) -> dict[str, Any]:
    """The job's progress object (state, total, done, failed, parts, images/s), whether this server runs
    it now, and the error that stopped it, if any."""
    return batch_jobs(request).state(svc, out)
