"""The detection log: every detection — which image (its content hash in the ``images`` bucket of the
internal store), which model version, the labels with their confidences, when, and from where (the
native API, the AWS API, an inbox, the console) — kept and queryable.

Logging costs the detection almost nothing: the detection path hands each detection to
workflows.detection_log.DetectionLog, which queues it; its thread calls ``write_detections`` here (hash
and store the images, insert the rows in batches) and ``prune_detections`` (the retention).

Records
    Detected         what the detection path hands the log (the image bytes, every label's probability,
                     the labels the request returned, the source); ``ref`` links it to a human loop.
    NewDetection     a row about to be inserted (Repository.add_detections).
    DetectionRecord  a logged detection: ``labels`` as returned, ``top_label``/``top_confidence`` the
                     model's best guess (even below every threshold), ``probabilities`` (best first,
                     at most MAX_PROBABILITIES).
    DetectionFilter  a query: time range [since, until), label, confidence range, source, version.
    Retention        how long / how many to keep (default: everything).

Queries (list_detections): newest first, ``limit`` at a time with an opaque ``cursor`` for the next page.
With ``label``, only detections that returned that label, and the confidence range applies to that
label; without, the range applies to the top confidence.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from visionloop.core.entities import Prediction
from visionloop.core.events import publish
from visionloop.core.images import load_image, store_images
from visionloop.core.parameters import get_parameters
from visionloop.core.projects import get_project
from visionloop.core.records.detections import (
    MAX_PROBABILITIES,
    Detected,
    DetectionFilter,
    DetectionPage,
    DetectionRecord,
    DetectionSource,
    NewDetection,
    Retention,
    label_dict,
)
from visionloop.core.records.events import EventType
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, NotFound, VisionloopError

log = logging.getLogger("visionloop.detections")

MAX_LIMIT = 1000  # detections listed at once
DEFAULT_LIMIT = 100


# --- writing (workflows.detection_log runs this in the background) ---------------------------------


def write_detections(
    svc: Services, batch: Sequence[tuple[Detected, datetime]], project_ids: dict[str, int] | None = None
) -> list[DetectionRecord]:
    """Store the images of ``batch`` (content-addressed, once each) and insert its rows; returns the
    records written (detections of projects deleted meanwhile are left out). Retries a failing write
    three times (0.2, 0.5, 1 s apart) before giving up (StorageError)."""
    ids = {} if project_ids is None else project_ids
    rows: list[NewDetection] = []
    images: dict[str, bytes] = {}
    for detected, at in batch:
        project_id = _project_id(svc, detected.project, ids)
        if project_id is None:
            continue
        digest = hashlib.sha256(detected.image).hexdigest()
        images.setdefault(digest, detected.image)
        rows.append(_new_row(detected, at, project_id, digest))
    if not rows:
        return []
    for attempt, pause in enumerate((0.2, 0.5, 1.0, None)):
        try:
            store_images(svc.store, list(images.items()))
            return svc.repo.add_detections(rows)
        except VisionloopError as e:
            if pause is None or isinstance(e, InvalidInput):
                raise
            log.warning("detection log: write attempt %d failed (%s); trying again", attempt + 1, e.message)
            time.sleep(pause)
    raise AssertionError("unreachable")


def _project_id(svc: Services, name: str, ids: dict[str, int]) -> int | None:
    found = ids.get(name)
    if found is None:
        try:
            found = svc.repo.get_project(name).id
        except NotFound:
            return None
        ids[name] = found
    return found


def _new_row(detected: Detected, at: datetime, project_id: int, digest: str) -> NewDetection:
    ranked = sorted(detected.probabilities.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_PROBABILITIES]
    return NewDetection(
        project_id=project_id,
        version=detected.version,
        ref=detected.ref,
        content_hash=digest,
        source=DetectionSource(detected.source),
        source_ref=detected.source_ref,
        detected_at=at,
        labels=tuple(Prediction(p.label, p.confidence, p.box) for p in detected.labels),
        probabilities=tuple((label, round(float(p), 6)) for label, p in ranked),
    )


def publish_detection_events(svc: Services, records: Sequence[DetectionRecord]) -> None:
    """A ``detection`` event (core.events) per written detection of each project whose
    ``detection_events_enabled`` parameter is on (read once per project and batch). For the
    background log's ``on_written``: bootstrap.build_detection_log installs it."""
    by_project: dict[str, list[DetectionRecord]] = {}
    for r in records:
        by_project.setdefault(r.project, []).append(r)
    for project, found in by_project.items():
        try:
            if not get_parameters(svc, project).detection_events_enabled:
                continue
            for r in found:
                payload = {
                    "detection_id": r.id,
                    "version": r.version,
                    "labels": [label_dict(p) for p in r.labels],
                    "source": r.source.value,
                    "image": r.content_hash,
                    "source_ref": r.source_ref,
                }
                publish(svc, project, EventType.DETECTION, payload, now=r.detected_at)
        except VisionloopError as e:  # a project deleted meanwhile, a store that failed: logged only
            log.warning("detection log: detection events of %s not published: %s", project, e.message)


# --- queries -------------------------------------------------------------------------------------------


def check_filter(where: DetectionFilter) -> DetectionFilter:
    """The filter, validated (InvalidInput names the bad field); times without a zone are UTC."""
    for name in ("min_confidence", "max_confidence"):
        value = getattr(where, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100
        ):
            raise InvalidInput(f"{name} must be a number between 0 and 100, not {value!r}")
    if (
        where.min_confidence is not None
        and where.max_confidence is not None
        and where.min_confidence > where.max_confidence
    ):
        raise InvalidInput("min_confidence must not be greater than max_confidence")
    since, until = _aware(where.since), _aware(where.until)
    if since is not None and until is not None and since >= until:
        raise InvalidInput("since must be earlier than until")
    if where.label is not None and not where.label.strip():
        raise InvalidInput("label must not be empty")
    source = None if where.source is None else parse_source(where.source)
    return DetectionFilter(
        since, until, where.label, where.min_confidence, where.max_confidence, source, where.version or None
    )


def parse_source(value: str | DetectionSource) -> DetectionSource:
    try:
        return DetectionSource(value)
    except ValueError:
        known = ", ".join(s.value for s in DetectionSource)
        raise InvalidInput(f"unknown detection source {str(value)[:40]!r}: use one of {known}") from None


def _aware(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def encode_cursor(before_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": before_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor continues below; InvalidInput for anything list_detections did not hand out."""
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        before = doc["before"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise InvalidInput("cursor is not valid: pass the next_cursor of the previous page") from None
    if isinstance(before, bool) or not isinstance(before, int) or before < 1:
        raise InvalidInput("cursor is not valid: pass the next_cursor of the previous page")
    return before


def list_detections(
    svc: Services,
    project_name: str,
    where: DetectionFilter | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> DetectionPage:
    """The project's logged detections matching ``where``, newest first, ``limit`` (1-1000) at a time;
    pass the page's ``next_cursor`` to get the next one."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer between 1 and {MAX_LIMIT}")
    checked = check_filter(where or DetectionFilter())
    before = decode_cursor(cursor) if cursor else None
    project = get_project(svc, project_name)
    found = svc.repo.list_detections(project.id, checked, before_id=before, limit=limit + 1)
    page = found[:limit]
    more = len(found) > limit
    return DetectionPage(page, encode_cursor(page[-1].id) if more and page else None)


def get_detection(svc: Services, project_name: str, detection_id: int) -> DetectionRecord:
    project = get_project(svc, project_name)
    record = svc.repo.get_detection(detection_id)
    if record.project_id != project.id:
        raise NotFound(f"project {project_name!r} has no detection {detection_id}")
    return record


def detection_loops(svc: Services, record: DetectionRecord) -> list[dict[str, object]]:
    """The human loops the detection started (``name``, ``purpose``, ``status``, ``human_answer``,
    ``agrees``), oldest first."""
    return svc.repo.detection_loops(record.project_id, record.ref)


def detection_image(svc: Services, record: DetectionRecord) -> bytes:
    """The image of a logged detection, from the content-addressed store."""
    return load_image(svc.store, record.content_hash)


def prune_detections(svc: Services, retention: Retention, now: datetime | None = None) -> int:
    """Delete the detections past ``retention``; returns how many."""
    if retention.keeps_all:
        return 0
    before = None
    if retention.days is not None:
        before = (now or svc.clock.now()) - timedelta(days=retention.days)
    return svc.repo.prune_detections(before=before, keep_per_project=retention.max_rows)


__all__ = [
    "Detected",
    "DetectionFilter",
    "DetectionPage",
    "DetectionRecord",
    "DetectionSource",
    "NewDetection",
    "Retention",
    "check_filter",
    "decode_cursor",
    "detection_image",
    "encode_cursor",
    "get_detection",
    "list_detections",
    "parse_source",
    "prune_detections",
    "publish_detection_events",
    "write_detections",
]
