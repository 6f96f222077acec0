"""The review hook in the background: what the detection path calls after each detection, without
slowing it. The call applies the project's cached rule (core.review.ReviewRules.decide: a dict lookup
and arithmetic); only a detection the rule picks, or one of a project not cached yet, is queued with its
image for a QueueWorker thread, which looks the rule up and starts the loop (ReviewRules.consider)."""

from __future__ import annotations

import logging
import time
from typing import Self

from visionloop.core.records.review import Detection, HumanLoop, LoopPurpose
from visionloop.core.review import ReviewRules
from visionloop.core.services import Services
from visionloop.workflows.background import QueueWorker

log = logging.getLogger("visionloop.review")


class ReviewHook:
    """A Background component (workflows.background): ``start``, ``flush``, ``stop``; the thread also
    starts with the first queued detection. At most ``max_pending`` detections wait; more are not
    considered (with a warning at most once a minute). ``started`` keeps the last 100 loops started
    (for tests and logs)."""

    def __init__(
        self,
        svc: Services,
        ttl: float = 5.0,
        max_pending: int = 256,
        *,
        region: str = "us-east-1",
        account: str = "123456789012",
    ) -> None:
        self.rules = ReviewRules(svc, ttl, region=region, account=account)
        self.started: list[HumanLoop] = []
        self._warned = 0.0
        self._worker: QueueWorker[tuple[Detection, LoopPurpose | None]] = QueueWorker(
            "review-hook", self._consider, max_pending=max_pending
        )

    def __call__(self, detection: Detection) -> None:
        needed, purpose = self.rules.decide(detection)
        if not needed or self._worker.put((detection, purpose)):
            return
        if time.monotonic() - self._warned > 60:
            self._warned = time.monotonic()
            log.warning("human review: too many detections waiting; some are not considered")

    @property
    def pending(self) -> int:
        """Detections queued or being considered now."""
        return self._worker.pending

    def invalidate(self, project: str | None = None) -> None:
        """Forget the cached rules (after a flow changed)."""
        self.rules.invalidate(project)

    def start(self) -> Self:
        self._worker.start()
        return self

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every queued detection was considered; False on timeout."""
        return self._worker.flush(timeout)

    def stop(self, timeout: float | None = 5.0) -> None:
        """Consider what is queued, then stop following parameter changes and end the thread."""
        self.rules.close()
        self._worker.stop(timeout)

    def _consider(self, batch: list[tuple[Detection, LoopPurpose | None]]) -> None:
        for detection, purpose in batch:
            try:
                loop = self.rules.consider(detection, purpose)
            except Exception:  # never let one detection stop the hook
                log.exception("human review: a detection could not be considered")
                continue
            if loop is not None:
                log.info("human review: loop %s started (%s)", loop.name, loop.purpose.value)
                self.started = [*self.started[-99:], loop]
