"""The detection log in the background: the detection path hands each detection to ``DetectionLog``
(a lock and an append to a bounded queue), and a QueueWorker thread writes them in batches with the
core's use case (core.detections.write_detections: store the images, insert the rows) and applies the
retention (core.detections.prune_detections). ``stop`` writes everything still queued (the server's
BackgroundGroup calls it at shutdown). When more is waiting than the queue holds (``max_pending``
detections or ``max_pending_bytes`` of images), further detections are not logged and counted as
``dropped`` (with a warning at most once a minute): the detection itself never waits for the log."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Self

from visionloop.core.detections import prune_detections, write_detections
from visionloop.core.records.detections import Detected, DetectionRecord, Retention
from visionloop.core.services import Services
from visionloop.errors import VisionloopError
from visionloop.workflows.background import QueueWorker

log = logging.getLogger("visionloop.detections")


@dataclass
class LogStats:
    logged: int = 0  # rows written
    dropped: int = 0  # not logged: the queue was full, or the log was stopped
    failed: int = 0  # could not be written (the store or the database failed; logged as errors)
    pending: int = 0  # waiting to be written now


WrittenFn = Callable[[Sequence[DetectionRecord]], None]


class DetectionLog:
    """``record`` only queues; the worker thread writes batches of up to ``batch`` rows, waiting up to
    ``linger`` seconds after a detection for others to join its batch. ``flush`` waits until everything
    queued is written; ``stop`` flushes and ends the thread. ``retention`` is applied every
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
        self.prune_seconds = prune_seconds
        self.on_written: list[WrittenFn] = []
        self._stats = LogStats()
        self._lock = threading.Lock()  # the counters: detections come from many threads
        self._warned = 0.0
        self._projects: dict[str, int] = {}
        self._pruned_at = time.monotonic()
        self._worker: QueueWorker[tuple[Detected, datetime]] = QueueWorker(
            "detection-log",
            self._write,
            batch=batch,
            linger=linger,
            max_pending=max_pending,
            max_bytes=max_pending_bytes,
            size=lambda item: len(item[0].image),
            housekeeping=self._maybe_prune,
        )

    def record(self, detected: Detected) -> None:
        """Queue one detection for the log (never blocks on I/O)."""
        if not self._worker.put((detected, self.svc.clock.now())):
            with self._lock:
                self._stats.dropped += 1
            self._warn_dropped()

    __call__ = record

    def start(self) -> Self:
        self._worker.start()
        return self

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every queued detection is written (or failed); False on timeout."""
        return self._worker.flush(timeout)

    def stop(self, timeout: float | None = 60.0) -> None:
        """Write what is queued, then stop; later detections are dropped."""
        self._worker.stop(timeout)

    def stats(self) -> LogStats:
        with self._lock:
            s = self._stats
            return LogStats(s.logged, s.dropped, s.failed, self._worker.pending)

    def _write(self, batch: list[tuple[Detected, datetime]]) -> None:
        try:
            records = write_detections(self.svc, batch, self._projects)
        except Exception as e:  # the log must survive anything; what is lost is counted and logged
            message = e.message if isinstance(e, VisionloopError) else repr(e)
            log.error("detection log: %d detections could not be written: %s", len(batch), message)
            with self._lock:
                self._stats.failed += len(batch)
            return
        with self._lock:
            self._stats.logged += len(records)
            self._stats.failed += len(batch) - len(records)
        for fn in list(self.on_written):
            try:
                fn(records)
            except Exception:
                log.exception("detection log: a callback failed on %d detections", len(records))

    def _maybe_prune(self) -> float | None:
        """Apply the retention when due (on the worker thread); the seconds until it is due again."""
        if self.retention.keeps_all:
            return None
        due = self._pruned_at + self.prune_seconds - time.monotonic()
        if due > 0:
            return due
        self._pruned_at = time.monotonic()
        try:
            removed = prune_detections(self.svc, self.retention)
        except VisionloopError as e:
            log.error("detection log: the retention could not be applied: %s", e.message)
        else:
            if removed:
                log.info("detection log: %d detections past the retention deleted", removed)
        return self.prune_seconds

    def _warn_dropped(self) -> None:
        if time.monotonic() - self._warned > 60:
            self._warned = time.monotonic()
            log.warning(
                "detection log: %s; detections are not being logged (%d so far)",
                "stopped" if self._worker.stopped else "the writer is behind and its queue is full",
                self._stats.dropped,
            )
