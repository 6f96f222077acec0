"""Native REST: the detection log (query with filters and pagination, one detection, its image), the
drift signal (human vs model agreement per day or week) and the watched inboxes (look now, what they
took)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from visionloop.api.deps import IMAGE_RESPONSES, RowId, ServicesDep
from visionloop.core import detections, inbox, sampling
from visionloop.core.detections import DetectionFilter, DetectionRecord, DetectionSource
from visionloop.core.records.review import LoopPurpose
from visionloop.errors import Unavailable

router = APIRouter(tags=["detections"])


def detection_json(d: DetectionRecord, *, full: bool = False) -> dict[str, Any]:
    out = d.to_dict()
    out["image_url"] = f"/api/v1/projects/{d.project}/detections/{d.id}/image"
    if full:
        out["probabilities"] = [
            {"name": label, "confidence": round(100 * p, 3)} for label, p in d.probabilities
        ]
    return out


@router.get("/projects/{project}/detections")
def list_detections(
    project: str,
    svc: ServicesDep,
    since: Annotated[datetime | None, Query(description="ISO 8601; inclusive (no zone: UTC)")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601; exclusive (no zone: UTC)")] = None,
    label: Annotated[str | None, Query(description="Only detections that returned this label")] = None,
    min_confidence: Annotated[
        float | None, Query(description="0-100: the label's confidence (with label), else the top one")
    ] = None,
    max_confidence: Annotated[float | None, Query(description="0-100, inclusive")] = None,
    source: Annotated[DetectionSource | None, Query(description="api, aws, inbox or console")] = None,
    version: Annotated[str | None, Query(description="Only this model version's detections")] = None,
    limit: Annotated[int, Query(description="1-1000")] = detections.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> dict[str, Any]:
    """The detection log, newest first, a page at a time."""
    where = DetectionFilter(since, until, label, min_confidence, max_confidence, source, version)
    page = detections.list_detections(svc, project, where, limit=limit, cursor=cursor)
    return {
        "detections": [detection_json(d) for d in page.detections],
        "next_cursor": page.next_cursor,
    }


@router.get("/projects/{project}/detections/{detection_id}")
def get_detection(project: str, detection_id: RowId, svc: ServicesDep) -> dict[str, Any]:
    """One logged detection, with the probabilities of its best labels and the human loops it started."""
    found = detections.get_detection(svc, project, detection_id)
    return {
        **detection_json(found, full=True),
        "loops": detections.detection_loops(svc, found),
    }


@router.get(
    "/projects/{project}/detections/{detection_id}/image", response_class=Response, responses=IMAGE_RESPONSES
)
def detection_image(project: str, detection_id: RowId, svc: ServicesDep) -> Response:
    data = detections.detection_image(svc, detections.get_detection(svc, project, detection_id))
    media = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return Response(data, media_type=media)


@router.get("/projects/{project}/agreement")
def agreement(
    project: str,
    svc: ServicesDep,
    bucket: Annotated[str, Query(description="day or week (UTC)")] = "day",
    since: Annotated[datetime | None, Query(description="ISO 8601; loops completed from then")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601; exclusive")] = None,
    purpose: Annotated[
        LoopPurpose | None, Query(description="audit (unbiased), low_confidence or explicit; all if omitted")
    ] = None,
) -> dict[str, Any]:
    """The drift signal: how often people agreed with the model, per day or week and per label."""
    found = sampling.agreement_over_time(
        svc, project, bucket=bucket, since=since, until=until, purpose=purpose
    )
    return {
        "project": project,
        "bucket": bucket,
        "purpose": None if purpose is None else purpose.value,
        "buckets": [b.to_dict() for b in found],
    }


@router.post("/projects/{project}/inbox/scan")
async def scan_inbox(project: str, request: Request, svc: ServicesDep) -> dict[str, Any]:
    """Look into the project's inboxes now (as the watcher does every inbox_poll_seconds)."""
    watcher = getattr(request.app.state, "inbox_watcher", None)
    if watcher is None:
        raise Unavailable("this server has no inbox watcher")
    report = await run_in_threadpool(inbox.scan_inbox, svc, project, watcher.detector, watcher.settings)
    return report.to_dict()


@router.get("/projects/{project}/inbox")
def inbox_items(
    project: str, svc: ServicesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """What the project's inboxes took, newest first."""
    return {"items": [i.to_dict() for i in inbox.list_items(svc, project, limit=limit)]}
