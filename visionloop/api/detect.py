"""Native REST: serving model versions — start, stop, delete, serving state — and detection.

Detection takes the image as a multipart ``file``, as raw bytes (``Content-Type: image/jpeg``,
``image/png`` or ``application/octet-stream``), or as JSON ``{"image_base64": …}`` or
``{"s3_object": {"bucket", "name"}}``. The handler is async and waits on the inference future, so a
request never holds the event loop or a thread while the model runs."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from visionloop.api import images
from visionloop.api.deps import ServicesDep
from visionloop.core import serving
from visionloop.core.entities import ModelVersion, Prediction
from visionloop.core.training import get_version

router = APIRouter(tags=["serving"])

MAX_BODY = images.max_body(serving.DETECT_LIMITS.max_bytes)


def get_serving(request: Request) -> serving.Serving:
    srv: serving.Serving = request.app.state.serving
    return srv


ServingDep = Annotated[serving.Serving, Depends(get_serving)]


class StartIn(BaseModel):
    min_inference_units: int = Field(
        default=1, description="Inference units (worker processes) to start, ≥ 1"
    )
    max_inference_units: int | None = Field(
        default=None, description="Scale up to this many units under load; omitted: no scaling"
    )
    idle_timeout_minutes: float | None = Field(
        default=None,
        description="Stop after this many minutes without requests; 0: never; omitted: server default",
    )
    auto_start: bool | None = Field(
        default=None, description="After an idle stop, the next detection starts the version again"
    )


class S3ObjectIn(BaseModel):
    bucket: str
    name: str


class DetectIn(BaseModel):
    image_base64: str | None = None
    s3_object: S3ObjectIn | None = None
    min_confidence: float | None = None
    max_results: int | None = None


def serving_json(srv: serving.Serving, version: ModelVersion) -> dict[str, Any]:
    return {"name": version.name, **serving.serving_state(version, srv.host.stats(version.id))}


@router.post("/projects/{project}/versions/{version}/start", status_code=202)
def start(
    project: str, version: str, svc: ServicesDep, srv: ServingDep, body: StartIn | None = None
) -> dict[str, Any]:
    body = body or StartIn()
    idle = None if body.idle_timeout_minutes is None else body.idle_timeout_minutes * 60
    v = serving.start_version(
        svc,
        srv,
        project,
        version,
        body.min_inference_units,
        body.max_inference_units,
        idle_timeout_seconds=idle,
        auto_start=body.auto_start,
    )
    return serving_json(srv, v)


@router.post("/projects/{project}/versions/{version}/stop", status_code=202)
def stop(project: str, version: str, svc: ServicesDep, srv: ServingDep) -> dict[str, Any]:
    return serving_json(srv, serving.stop_version(svc, srv, project, version))


@router.delete("/projects/{project}/versions/{version}", status_code=204)
def delete(project: str, version: str, svc: ServicesDep, srv: ServingDep) -> Response:
    serving.delete_version(svc, srv, project, version)
    return Response(status_code=204)


@router.get("/projects/{project}/versions/{version}/serving")
def serving_state(project: str, version: str, svc: ServicesDep, srv: ServingDep) -> dict[str, Any]:
    """Status, inference units (min, max, serving now), start cost, idle timeout and the live queue."""
    return serving_json(srv, get_version(svc, project, version))


_DETECT_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image_base64": {"type": "string", "description": "The image, base64-encoded"},
                        "s3_object": {
                            "type": "object",
                            "properties": {"bucket": {"type": "string"}, "name": {"type": "string"}},
                            "required": ["bucket", "name"],
                            "description": "An image in one of the server's buckets",
                        },
                        "min_confidence": {"type": "number", "minimum": 0, "maximum": 100},
                        "max_results": {"type": "integer", "minimum": 0},
                    },
                }
            },
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
        }
    }
}


@router.post("/projects/{project}/versions/{version}/detect", openapi_extra=_DETECT_BODY)
async def detect(
    project: str,
    version: str,
    request: Request,
    svc: ServicesDep,
    srv: ServingDep,
    min_confidence: Annotated[float | None, Query(description="0-100; omitted: per-label thresholds")] = None,
    max_results: Annotated[int | None, Query(description="At most this many labels")] = None,
) -> dict[str, Any]:
    """DetectCustomLabels: labels above their thresholds, sorted by confidence (0-100)."""
    image, body = await _read_image(request)
    if body is not None:
        min_confidence = body.min_confidence if body.min_confidence is not None else min_confidence
        max_results = body.max_results if body.max_results is not None else max_results
    future = await run_in_threadpool(
        serving.submit_detect, svc, srv, project, version, image, min_confidence, max_results
    )
    labels = await asyncio.wrap_future(future)
    return {"project": project, "version": version, "labels": [_label(p) for p in labels]}


def _label(p: Prediction) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.label, "confidence": p.confidence}
    if p.box is not None:
        out["box"] = {"left": p.box.left, "top": p.box.top, "width": p.box.width, "height": p.box.height}
    return out


async def _read_image(request: Request) -> tuple[bytes | serving.StoredImage, DetectIn | None]:
    return await images.read_image(
        request, DetectIn.model_validate_json, serving.DETECT_LIMITS.max_bytes, serving.StoredImage
    )
