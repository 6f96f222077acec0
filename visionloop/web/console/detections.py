"""The detection log, the drift signal and the watched inboxes in the console (over core.detections,
core.sampling and core.inbox):

GET  /console/projects/{p}/workflow/detections        the log, newest first, 50 a page (?cursor=), filtered
                                                      by time (UTC), label, confidence, source, version
                                                      (?scores=all: every score a detection kept);
                                                      agreement between reviewers and the model per day or
                                                      week (the drift signal); what the inboxes took
GET  /console/projects/{p}/workflow/detections/{id}   one detection: the image, the labels returned, the
                                                      model's best probabilities, the human loops it opened
GET  …/workflow/detections/{id}/image[?size=small]    its image (small: a thumbnail)
POST …/workflow/inbox/scan                            look into the project's inboxes now

The labels shown as returned are those the request answered. Try it asks for every label (MinConfidence
0, to show each score beside its threshold), so its detections keep every label: the log shows of those
the ones at or above their assumed threshold, what DetectCustomLabels answers by default."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from urllib.parse import urlencode

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from visionloop.api.deps import RowId
from visionloop.api.errors import status_for
from visionloop.core import detections, inbox, sampling
from visionloop.core.accounts import ReviewerSession
from visionloop.core.detections import DetectionFilter, DetectionSource
from visionloop.core.entities import ModelVersion, Project
from visionloop.core.labels import project_labels
from visionloop.core.projects import get_project, list_versions
from visionloop.core.records.review import LoopPurpose
from visionloop.core.scoring import cut_off
from visionloop.core.services import Services
from visionloop.core.training import get_version
from visionloop.errors import InvalidInput, NotFound, Unavailable, VisionloopError
from visionloop.web.auth import Operator, OperatorForm
from visionloop.web.console import charts, console_router
from visionloop.web.console.datasets import make_thumbnail
from visionloop.web.pages import render
from visionloop.web.routing import web

router = console_router()
PER_PAGE = 50
INBOX_SHOWN = 20
THUMB_SIDE = 160
PREVIEW_SIDE = 720
FILTERS = ("since", "until", "label", "min_confidence", "max_confidence", "source", "version")
IMAGE_HEADERS = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}


def _time(name: str, text: str) -> datetime | None:
    """A date-time typed in the form (datetime-local: no zone, meaning UTC), or None."""
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"{name} must be a date and time like 2026-05-01T09:30, not {text[:40]!r}"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _number(name: str, text: str) -> float | None:
    if not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"{name} must be a number from 0 to 100, not {text[:40]!r}") from None


def parse_filter(form: dict[str, str]) -> DetectionFilter:
    """The filter form's fields (strings, possibly empty) as a DetectionFilter; InvalidInput names the
    bad field."""
    source = form.get("source", "").strip()
    return DetectionFilter(
        since=_time("since", form.get("since", "")),
        until=_time("until", form.get("until", "")),
        label=form.get("label", "").strip() or None,
        min_confidence=_number("min_confidence", form.get("min_confidence", "")),
        max_confidence=_number("max_confidence", form.get("max_confidence", "")),
        source=detections.parse_source(source) if source else None,
        version=form.get("version", "").strip() or None,
    )


@dataclass(frozen=True)
class ShownLabel:
    """A label of a logged detection as the log shows it: ``returned`` False for a Try it score below
    its threshold (shown only with every score)."""

    label: str
    confidence: float  # 0..100
    threshold: float | None  # 0..1: the assumed threshold, for Try it's detections
    returned: bool = True


def shown_labels(
    record: detections.DetectionRecord, thresholds: Mapping[str, float], every_score: bool = False
) -> list[ShownLabel]:
    """The labels ``record`` returned (see the module docstring); with ``every_score`` also the scores
    below their threshold that Try it kept."""
    if record.source is not DetectionSource.CONSOLE:
        return [ShownLabel(p.label, p.confidence, None) for p in record.labels]
    shown = []
    for p in record.labels:
        threshold = cut_off(p.label, thresholds)
        returned = p.confidence / 100 >= threshold
        if returned or every_score:
            shown.append(ShownLabel(p.label, p.confidence, threshold, returned))
    return shown


@dataclass(frozen=True)
class LogRow:
    record: detections.DetectionRecord
    labels: list[ShownLabel]


def log_rows(
    found: Sequence[detections.DetectionRecord],
    versions: Sequence[ModelVersion],
    form: Mapping[str, str],
    every_score: bool,
) -> list[LogRow]:
    """The page's rows. Filtered by a label, a Try it detection whose score for it was below the
    threshold returned nothing of it, so it is left out (unless every score is shown)."""
    thresholds = {v.name: v.thresholds for v in versions}
    rows = [LogRow(r, shown_labels(r, thresholds.get(r.version, {}), every_score)) for r in found]
    label = form.get("label", "").strip()
    if label and not every_score:
        rows = [row for row in rows if any(s.label == label for s in row.labels)]
    return rows


def _log_page(
    request: Request,
    session: ReviewerSession,
    project: Project,
    form: dict[str, str],
    cursor: str,
    bucket: str,
    purpose: str,
    *,
    every_score: bool = False,
    status: int = 200,
    message: str = "",
    notice: str = "",
) -> Response:
    svc = web(request).services
    found: list[detections.DetectionRecord] = []
    next_cursor = None
    try:
        page = detections.list_detections(
            svc, project.name, parse_filter(form), limit=PER_PAGE, cursor=cursor or None
        )
        found, next_cursor = page.detections, page.next_cursor
    except InvalidInput as e:
        status, message = 400, e.message
    bucket = bucket if bucket in sampling.BUCKETS else "day"
    purpose = purpose if purpose in {p.value for p in LoopPurpose} else ""
    agreement = sampling.agreement_over_time(svc, project.name, bucket=bucket, purpose=purpose or None)
    query = {k: v for k, v in form.items() if v}
    if every_score:
        query["scores"] = "all"
    versions = list_versions(svc, project)
    return render(
        request,
        "console/detections.html",
        status=status,
        session=session,
        title=f"Detection log · {project.name}",
        project=project,
        rows=log_rows(found, versions, form, every_score),
        more=bool(next_cursor),
        every_score=every_score,
        form=form,
        filtered=bool(query),
        next_url="?" + urlencode({**query, "cursor": next_cursor}) if next_cursor else "",
        first_url="?" + urlencode(query) if cursor else "",
        sources=[s.value for s in DetectionSource],
        labels=project_labels(svc, project),
        versions=[v.name for v in versions],
        agreement=agreement[-14:],
        agreement_chart=charts.agreement_chart(agreement[-14:], bucket) if agreement else None,
        bucket=bucket,
        purpose=purpose,
        purposes=[p.value for p in LoopPurpose],
        inbox_items=inbox.list_items(svc, project.name, limit=INBOX_SHOWN),
        has_watcher=getattr(request.app.state, "inbox_watcher", None) is not None,
        message=message,
        notice=notice,
        section="detections",
    )


@router.get("/projects/{name}/workflow/detections")
def detections_page(
    request: Request,
    name: str,
    session: Operator,
    since: str = "",
    until: str = "",
    label: str = "",
    min_confidence: str = "",
    max_confidence: str = "",
    source: str = "",
    version: str = "",
    cursor: str = "",
    bucket: str = "day",
    purpose: str = "",
    scores: str = "",
) -> Response:
    project = get_project(web(request).services, name)
    values = (since, until, label, min_confidence, max_confidence, source, version)
    form = dict(zip(FILTERS, values, strict=True))
    every = scores == "all"
    return _log_page(request, session, project, form, cursor, bucket, purpose, every_score=every)


@router.get("/projects/{name}/workflow/detections/{detection_id}")
def detection_page(request: Request, name: str, detection_id: RowId, session: Operator) -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    record = detections.get_detection(svc, project.name, detection_id)
    return render(
        request,
        "console/detection.html",
        session=session,
        title=f"Detection {record.id} · {project.name}",
        project=project,
        d=record,
        labels=shown_labels(record, _thresholds(svc, project, record.version), every_score=True),
        loops=detections.detection_loops(svc, record),
        section="detections",
    )


def _thresholds(svc: Services, project: Project, version: str) -> Mapping[str, float]:
    try:
        return get_version(svc, project.name, version).thresholds
    except NotFound:  # the version was deleted since
        return {}


@router.get("/projects/{name}/workflow/detections/{detection_id}/image")
def detection_image(
    request: Request, name: str, detection_id: RowId, session: Operator, size: str = "small"
) -> Response:
    svc = web(request).services
    record = detections.get_detection(svc, get_project(svc, name).name, detection_id)
    side = THUMB_SIDE if size == "small" else PREVIEW_SIDE
    small = make_thumbnail(detections.detection_image(svc, record), side)
    return Response(small, media_type="image/jpeg", headers=IMAGE_HEADERS)


@router.post("/projects/{name}/workflow/inbox/scan")
async def scan_inbox(request: Request, name: str, session: OperatorForm) -> Response:
    svc = web(request).services
    project = await run_in_threadpool(get_project, svc, name)
    form = dict.fromkeys(FILTERS, "")
    watcher = getattr(request.app.state, "inbox_watcher", None)
    page = partial(_log_page, request, session, project, form, "", "day", "")
    try:
        if watcher is None:
            raise Unavailable("this server watches no inbox")
        report = await run_in_threadpool(
            inbox.scan_inbox, svc, project.name, watcher.detector, watcher.settings
        )
    except VisionloopError as e:
        return await run_in_threadpool(partial(page, status=status_for(e), message=e.message))
    return await run_in_threadpool(partial(page, notice=scan_notice(report)))


def scan_notice(report: inbox.ScanReport) -> str:
    """One line for what a look into the inboxes did."""
    done = [
        f"{n} {what}"
        for n, what in (
            (report.detected, "detected"),
            (report.added, "added to TRAIN"),
            (report.duplicates, "already there"),
            (report.failed, "failed (moved to errors/)"),
            (report.waiting, "waiting"),
        )
        if n
    ]
    line = "Looked into the inboxes: " + (", ".join(done) if done else "nothing new") + "."
    return line + (" " + " ".join(report.notes) if report.notes else "")
