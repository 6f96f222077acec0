"""The detection log: every detection — which image (its content hash in the ``images`` bucket of the
internal store), which model version, the labels with their confidences, when, and from where (the
native API, the AWS API, an inbox, the console) — kept and queryable.

Logging costs the detection almost nothing: the detection path calls ``DetectionLog.record`` (a lock and
an append to a bounded queue); the log's own thread hashes and stores the images and inserts the rows in
batches, and ``close`` writes everything still queued (the server calls it at shutdown). When more is
waiting than the queue holds (``max_pending`` detections or ``max_pending_bytes`` of images), further
detections are not logged and counted as ``dropped`` (with a warning at most once a minute): the
detection itself never waits for the log.

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
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
)
from visionloop.core.records.events import EventType
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, NotFound, VisionloopError

log = logging.getLogger("visionloop.detections")

MAX_LIMIT = 1000  # detections listed at once
DEFAULT_LIMIT = 100


# --- the log -------------------------------------------------------------------------------------------


@dataclass
class LogStats:
    logged: int = 0  # rows written
    dropped: int = 0  # not logged: the queue was full, or the log was closed
    failed: int = 0  # could not be written (the store or the database failed; logged as errors)
    pending: int = 0  # waiting to be written now


WrittenFn = Callable[[Sequence[DetectionRecord]], None]


class DetectionLog:
    """The detection path's side of the log: ``record`` only queues; a thread of its own writes batches
    of up to ``batch`` rows (hashing and storing the images first), waiting up to ``linger`` seconds
    after a detection for others to join its batch. ``flush`` waits until everything
    queued is written; ``close`` flushes and stops the thread. ``retention`` is applied every
    ``prune_seconds`` by the same thread. Callbacks in ``on_written`` get each written batch (on that
    thread; a failing one is logged)."""

    def __init__(
        self,
        svc: Services,
        *,
        retention: Retention | None = None,
        batch: int = 256,
        max_pending: int = 10_000,
        max_pending_bytes: int = 256 * 1024 * 1024,
        prune_seconds: float = 60.0,
        linger: float = 0.05,
    ) -> None:
        self.svc = svc
        self.retention = retention or Retention()
        self.batch = batch
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.prune_seconds = prune_seconds
        self.linger = linger
        self._flushing = 0
        self.on_written: list[WrittenFn] = []
        self._stats = LogStats()
        self._pending: deque[tuple[Detected, datetime]] = deque()
        self._pending_bytes = 0
        self._writing = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._warned = 0.0
        self._projects: dict[str, int] = {}
        self._pruned_at = time.monotonic()

    # the detection path ---------------------------------------------------------------------------

    def record(self, detected: Detected) -> None:
        """Queue one detection for the log (never blocks on I/O)."""
        now = self.svc.clock.now()
        size = len(detected.image)
        with self._cond:
            if (
                self._closed
                or len(self._pending) >= self.max_pending
                or self._pending_bytes + size > self.max_pending_bytes
            ):
                self._stats.dropped += 1
                self._warn_dropped()
                return
            self._pending.append((detected, now))
            self._pending_bytes += size
            self._cond.notify()
            started = self._thread is not None
        if not started:
            self._start()

    __call__ = record

    # control ----------------------------------------------------------------------------------------

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every queued detection is written (or failed); False on timeout."""
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: not self._pending and not self._writing, timeout)
            finally:
                self._flushing -= 1

    def close(self, timeout: float | None = 60.0) -> None:
        """Write what is queued, then stop; later detections are dropped."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def stats(self) -> LogStats:
        with self._cond:
            return LogStats(
                self._stats.logged,
                self._stats.dropped,
                self._stats.failed,
                len(self._pending) + self._writing,
            )

    # the writer -------------------------------------------------------------------------------------

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="detection-log", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    if not self._cond.wait(timeout=self._prune_wait()):
                        break  # time to apply the retention
                if self._pending and self.linger > 0:  # let a batch gather: one transaction for many
                    self._cond.wait_for(
                        lambda: len(self._pending) >= self.batch or self._closed or self._flushing,
                        timeout=self.linger,
                    )
                batch = [self._pending.popleft() for _ in range(min(self.batch, len(self._pending)))]
                self._pending_bytes -= sum(len(d.image) for d, _ in batch)
                self._writing = len(batch)
                done = self._closed and not batch
            if batch:
                self._write(batch)
            with self._cond:
                self._writing = 0
                self._cond.notify_all()
            self._maybe_prune()
            if done:
                return

    def _write(self, batch: Sequence[tuple[Detected, datetime]]) -> None:
        try:
            records = write_detections(self.svc, batch, self._projects)
        except Exception as e:  # the log must survive anything; what is lost is counted and logged
            message = e.message if isinstance(e, VisionloopError) else repr(e)
            log.error("detection log: %d detections could not be written: %s", len(batch), message)
            with self._cond:
                self._stats.failed += len(batch)
            return
        with self._cond:
            self._stats.logged += len(records)
            self._stats.failed += len(batch) - len(records)
        for fn in list(self.on_written):
            try:
                fn(records)
            except Exception:
                log.exception("detection log: a callback failed on %d detections", len(records))

    def _prune_wait(self) -> float | None:
        if self.retention.keeps_all:
            return None
        return max(0.0, self._pruned_at + self.prune_seconds - time.monotonic())

    def _maybe_prune(self) -> None:
        if self.retention.keeps_all or time.monotonic() - self._pruned_at < self.prune_seconds:
            return
        self._pruned_at = time.monotonic()
        try:
            removed = prune_detections(self.svc, self.retention)
        except VisionloopError as e:
            log.error("detection log: the retention could not be applied: %s", e.message)
            return
        if removed:
            log.info("detection log: %d detections past the retention deleted", removed)

    def _warn_dropped(self) -> None:
        if time.monotonic() - self._warned > 60:
            self._warned = time.monotonic()
            log.warning(
                "detection log: %s; detections are not being logged (%d so far)",
                "closed" if self._closed else "the writer is behind and its queue is full",
                self._stats.dropped,
            )


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
        labels=tuple(Prediction(p.label, p.confidence) for p in detected.labels),
        probabilities=tuple((label, round(float(p), 6)) for label, p in ranked),
    )


def publish_detection_events(svc: Services, records: Sequence[DetectionRecord]) -> None:
    """A ``detection`` event (core.events) per written detection of each project whose
    ``detection_events_enabled`` parameter is on (read once per project and batch). For
    DetectionLog.on_written: bootstrap.build_detection_log installs it."""
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
                    "labels": [{"name": p.label, "confidence": p.confidence} for p in r.labels],
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
    "DetectionLog",
    "DetectionPage",
    "DetectionRecord",
    "DetectionSource",
    "LogStats",
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
