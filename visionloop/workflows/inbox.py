"""The watched inboxes at run time: the server's watcher thread, and the two ways an inbox image is
detected — by the server's inference units (serving_detector), or in this process by a command without a
server (LocalDetector). The scanning itself is core.inbox."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Self

from visionloop.core.detections import Detected, DetectionSource
from visionloop.core.entities import ModelVersion, Prediction
from visionloop.core.images import check_image
from visionloop.core.inbox import Detector, InboxSettings, ScanReport, scan_all
from visionloop.core.ports import TrainingEngine
from visionloop.core.records.review import Detection
from visionloop.core.scoring import model_outputs, output_predictions
from visionloop.core.services import Services
from visionloop.core.serving import Serving, StoredImage, read_image, submit_detect
from visionloop.core.training import ModelCache
from visionloop.errors import Unavailable
from visionloop.workflows.background import Ticker

log = logging.getLogger("visionloop.inbox")


def serving_detector(svc: Services, serving: Serving, timeout: float = 300.0) -> Detector:
    """Detect inbox images on the server's inference units (logged with source "inbox", handed to the
    human-review hook, like any detection)."""

    def detect(project: str, version: ModelVersion, bucket: str, key: str) -> Sequence[Prediction]:
        future = submit_detect(
            svc, serving, project, version.name, StoredImage(bucket, key), source=DetectionSource.INBOX
        )
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise Unavailable(
                f"the detection took longer than {timeout:g} s; it is tried again later"
            ) from None

    return detect


class LocalDetector:
    """Detect inbox images in this process (``visionloop workflow scan`` without a server): the version's
    model is loaded once with the engine ``engine()`` builds (on the first detection); each detection
    goes to ``log`` and ``review`` as the server's would."""

    def __init__(
        self,
        svc: Services,
        engine: Callable[[], TrainingEngine],
        log: Callable[[Detected], None] | None = None,
        review: Callable[[Detection], None] | None = None,
    ) -> None:
        self.svc = svc
        self.engine = engine
        self.cache: ModelCache | None = None  # the engine is built on the first detection
        self.log = log
        self.review = review

    def __call__(self, project: str, version: ModelVersion, bucket: str, key: str) -> Sequence[Prediction]:
        image = StoredImage(bucket, key)
        data, limits = read_image(self.svc, image)
        check_image(data, self.svc.inspector, limits)
        if self.cache is None:
            self.cache = ModelCache(self.svc, self.engine())
        model = self.cache.get(version)
        output = model_outputs(model, [data])[0]
        probs, labels = output.probs, output_predictions(output, version.thresholds)
        ref = f"s3://{bucket}/{key}"
        detected = Detected(project, version.name, data, probs, labels, DetectionSource.INBOX, ref)
        if self.log is not None:
            self.log(detected)
        if self.review is not None:
            boxes = tuple(p for p in labels if p.box is not None)
            self.review(
                Detection(project, version.name, data, probs, source_ref=ref, ref=detected.ref, boxes=boxes)
            )
        return labels


class InboxWatcher:
    """Looks into every project's inboxes every ``interval`` seconds on a Ticker thread (the server owns
    one; a Background component: start, flush, stop). ``trigger()`` makes it look now; ``scan_now()``
    looks on the caller's thread. Two looks never run at once; a failing look is logged and the watcher
    goes on."""

    def __init__(
        self,
        svc: Services,
        detector: Detector | None,
        settings: InboxSettings | None = None,
        interval: float = 5.0,
    ) -> None:
        self.svc = svc
        self.detector = detector
        self.settings = settings or InboxSettings()
        self.interval = interval
        self.scans = 0  # looks done
        self.last: list[ScanReport] = []  # what the last look did (projects with something handled)
        self._lock = threading.Lock()
        self._ticker = Ticker("inbox-watcher", self._look, interval, delay_first=True)

    def start(self) -> Self:
        try:
            self.svc.buckets.create_bucket(self.settings.bucket)  # a folder people can drop files into
        except Exception as e:
            log.error("inbox: cannot create the workflow bucket %r: %s", self.settings.bucket, e)
        if self.interval > 0:
            self._ticker.start()
        return self

    def trigger(self) -> None:
        self._ticker.wake()

    def flush(self, timeout: float | None = 60.0) -> bool:
        """Wait for the look in progress."""
        return self._ticker.flush(timeout)

    def scan_now(self) -> list[ScanReport]:
        with self._lock:
            reports = scan_all(self.svc, self.detector, self.settings)
            self.scans += 1
            self.last = reports
        for r in reports:
            log.info(
                "inbox %s: %d detected, %d added to TRAIN, %d duplicates, %d failed, %d waiting",
                r.project,
                r.detected,
                r.added,
                r.duplicates,
                r.failed,
                r.waiting,
            )
        return reports

    def stop(self, timeout: float | None = 60.0) -> None:
        self._ticker.stop(timeout)

    def _look(self) -> None:
        try:
            self.scan_now()
        except Exception:
            log.exception("inbox: a look into the inboxes failed")
