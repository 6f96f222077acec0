"""The detection hook: review_purpose (the rule), maybe_start_loop (the loop it starts) and ReviewRules
(each project's rule, cached, as the detection path applies it; workflows.review_hook runs it in the
background so that it never slows a detection)."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from visionloop.core.entities import ModelVersion, Prediction
from visionloop.core.images import content_hash, store_image
from visionloop.core.parameters import get_parameters
from visionloop.core.records.events import EventType
from visionloop.core.records.review import Detection, FlowDefinition, HumanLoop, LoopPurpose, NewLoop
from visionloop.core.review.checks import TOP_GUESSES, new_loop_name
from visionloop.core.review.flows import ensure_flow
from visionloop.core.review.inputs import custom_label, margin
from visionloop.core.review.loops import check_quota, loop_created
from visionloop.core.services import Services
from visionloop.errors import Conflict, NotFound, QuotaExceeded

log = logging.getLogger("visionloop.review")


def review_purpose(
    flow: FlowDefinition,
    probabilities: Mapping[str, float],
    min_confidence: float | None = None,
    rng: random.Random | None = None,
) -> LoopPurpose | None:
    """The rule alone (no I/O): LOW_CONFIDENCE when the top confidence is below ``min_confidence``
    (default: the flow's), else AUDIT for a sampled ``audit_rate`` share, else None."""
    threshold = flow.settings.min_confidence if min_confidence is None else min_confidence
    top = max(probabilities.values(), default=0.0) * 100
    if threshold is not None and top < threshold:
        return LoopPurpose.LOW_CONFIDENCE
    if flow.settings.audit_rate > 0 and (rng or random).random() < flow.settings.audit_rate:
        return LoopPurpose.AUDIT
    return None


def suggested_min_confidence(version: ModelVersion) -> float | None:
    """The ``min_confidence`` a version's review guide suggests (0..100: the lowest setting that sent the
    guide's target share of its wrong cross-validated answers to review); None when the version has no
    guide (object detection, versions trained before the guide) or its guide suggests nothing (no wrong
    answers)."""
    guide = (version.evaluation or {}).get("review_guide")
    suggested = guide.get("suggested") if isinstance(guide, Mapping) else None
    value = suggested.get("min_confidence") if isinstance(suggested, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        return None
    return float(value)


def maybe_start_loop(
    svc: Services,
    detection: Detection,
    *,
    min_confidence: float | None = None,
    flow: FlowDefinition | None = None,
    purpose: LoopPurpose | None = None,
    rng: random.Random | None = None,
    now: datetime | None = None,
) -> HumanLoop | None:
    """The detection hook's rule (review_purpose) and the loop it starts. A LOW_CONFIDENCE loop starts
    when the detection's top confidence is below ``min_confidence`` (default: the flow's setting);
    otherwise ``audit_rate`` samples an AUDIT loop. None when the project has no flow or no rule, the
    rule does not fire, or the image already has an open loop. ``flow`` saves a query when the caller
    has it; ``purpose`` is a decision the caller already took with review_purpose."""
    if flow is None:
        project = svc.repo.get_project(detection.project)
        flow = svc.repo.find_flow(project.id)
        if flow is None:
            return None
    probs = dict(detection.probabilities)
    if purpose is None:
        purpose = review_purpose(flow, probs, min_confidence, rng)
    if purpose is None:
        return None
    now = now or svc.clock.now()
    digest = content_hash(detection.image)
    if svc.repo.open_loop_for_image(flow.project_id, digest) is not None:
        return None
    try:
        check_quota(svc, flow)
    except QuotaExceeded as e:
        log.warning("human review: %s", e.message)
        return None
    info = svc.inspector.inspect(detection.image)
    ranked = sorted(probs.items(), key=lambda kv: (-kv[1], kv[0]))
    guesses = detection.boxes[:TOP_GUESSES] or tuple(
        Prediction(label, round(100 * p, 3)) for label, p in ranked[:TOP_GUESSES]
    )  # a detector's boxes, for reviewers to keep, move or remove

    source_ref = detection.source_ref or f"detect://{detection.project}/{detection.version}"
    doc = {
        "taskObject": source_ref if source_ref.startswith("s3://") else None,
        "contentHash": digest,
        "project": detection.project,
        "modelVersion": detection.version,
        "detectedAt": now.astimezone(UTC).isoformat(),
        "customLabels": [custom_label(p) for p in guesses],
    }
    text = json.dumps(doc)
    new = NewLoop(
        name=new_loop_name(now),
        flow_id=flow.id,
        purpose=purpose,
        expires_at=now + timedelta(seconds=flow.settings.time_limit_seconds),
        image=info,
        source_ref=source_ref,
        input_content=text,
        input_hash=hashlib.sha256(text.encode()).hexdigest(),
        answers_needed=flow.settings.reviewers_per_item,
        predictions=guesses,
        model_answer=ranked[0][0] if ranked else None,
        margin=margin([p for _, p in ranked]) if ranked else None,
        model_version=detection.version,
        detection_ref=detection.ref,
    )
    store_image(svc.store, detection.image, digest)
    try:
        return loop_created(svc, svc.repo.create_loop(new, now), now)
    except Conflict:  # another detection of the same image won the race
        return None


class ReviewRules:
    """The review rule of each project, as the detection path applies it (workflows.review_hook runs it
    in the background). ``decide`` is the detection path's part: it looks up the project's rule in a
    cache (refreshed every ``ttl`` seconds by ``consider``, and at once when a parameter changes) and
    applies it (review_purpose: arithmetic only). ``consider`` is the rest, with I/O: it reads the rule
    when it is not cached, and starts the loop (maybe_start_loop).

    The rule is the flow's, with the project's parameters (core.parameters) on top: with
    ``human_review_enabled`` the threshold is the parameter ``min_confidence`` (else the flow's own), or,
    with ``suggested_min_confidence_enabled`` too, the one suggested by the version that answered the
    detection (suggested_min_confidence; ``min_confidence`` where it suggests none; cached like the
    rule); with ``human_sampling_enabled`` every ``human_sampling_interval``-th detection of the project
    (counted here, in memory, since the last sampled one) starts an AUDIT loop when the threshold did not
    already pick it. A project whose parameters want loops gets its default flow (``region``, ``account``: its
    ARN)."""

    def __init__(
        self, svc: Services, ttl: float = 5.0, *, region: str = "us-east-1", account: str = "123456789012"
    ) -> None:
        self.svc = svc
        self.ttl = ttl
        self.region = region
        self.account = account
        # project -> (seen at, flow with the parameters' threshold, sample every n-th or None, whether
        # each version's suggested threshold replaces it)
        self._flows: dict[str, tuple[float, FlowDefinition | None, int | None, bool]] = {}
        # (project, version) -> (seen at, the version's suggested min_confidence or None)
        self._suggested: dict[tuple[str, str], tuple[float, float | None]] = {}
        self._counts: dict[str, int] = {}  # project -> detections since the last sampled one
        self._count_lock = threading.Lock()
        self._unsubscribe = svc.bus.subscribe(
            lambda event: self.invalidate(event.project), [EventType.PARAMETER_CHANGED]
        )

    def decide(self, detection: Detection) -> tuple[bool, LoopPurpose | None]:
        """(whether ``consider`` has anything to do, the purpose when already known) from the cache
        alone; a project not in the cache yet needs ``consider`` to look it up."""
        cached = self._flows.get(detection.project)
        if cached is None or time.monotonic() - cached[0] >= self.ttl:
            return True, None
        _, flow, every, from_model = cached
        if flow is None or (not flow.has_rule and every is None):
            return False, None
        threshold = None
        if from_model:
            known = self._suggested.get((detection.project, detection.version))
            if known is None or time.monotonic() - known[0] >= self.ttl:
                return True, None
            threshold = known[1]
        purpose = self._purpose(detection, flow, every, threshold)
        return purpose is not None, purpose

    def consider(self, detection: Detection, purpose: LoopPurpose | None = None) -> HumanLoop | None:
        """Start the loop the rule asks for (``purpose``: what ``decide`` found), if any."""
        flow, every, from_model = self._rule(detection.project)
        if flow is None or (not flow.has_rule and every is None):
            return None
        if purpose is None:
            threshold = self._version_threshold(detection) if from_model else None
            purpose = self._purpose(detection, flow, every, threshold)
            if purpose is None:
                return None
        return maybe_start_loop(self.svc, detection, flow=flow, purpose=purpose)

    def invalidate(self, project: str | None = None) -> None:
        """Forget what is cached (after a flow changed)."""
        if project is None:
            self._flows.clear()
            self._suggested.clear()
        else:
            self._flows.pop(project, None)
            for key in [k for k in self._suggested if k[0] == project]:
                self._suggested.pop(key, None)

    def close(self) -> None:
        """Stop following parameter changes."""
        self._unsubscribe()

    def _purpose(
        self, detection: Detection, flow: FlowDefinition, every: int | None, threshold: float | None = None
    ) -> LoopPurpose | None:
        purpose = review_purpose(flow, detection.probabilities, threshold)
        if every is None:
            return purpose
        with self._count_lock:
            count = self._counts.get(detection.project, 0) + 1
            sampled = count >= every
            self._counts[detection.project] = 0 if sampled else count
        return purpose or (LoopPurpose.AUDIT if sampled else None)

    def _version_threshold(self, detection: Detection) -> float | None:
        """The suggested min_confidence of the version that answered ``detection`` (None: the flow's)."""
        key = (detection.project, detection.version)
        known = self._suggested.get(key)
        if known is not None and time.monotonic() - known[0] < self.ttl:
            return known[1]
        try:
            project = self.svc.repo.get_project(detection.project)
            threshold = suggested_min_confidence(self.svc.repo.get_version(project.id, detection.version))
        except NotFound:
            threshold = None
        self._suggested[key] = (time.monotonic(), threshold)
        return threshold

    def _rule(self, project_name: str) -> tuple[FlowDefinition | None, int | None, bool]:
        cached = self._flows.get(project_name)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1], cached[2], cached[3]
        from_model = False
        try:
            project = self.svc.repo.get_project(project_name)
        except NotFound:
            flow, every = None, None
        else:
            params = get_parameters(self.svc, project)
            flow = self.svc.repo.find_flow(project.id)
            if flow is None and (params.human_review_enabled or params.human_sampling_enabled):
                flow = ensure_flow(self.svc, project.name, region=self.region, account=self.account)
            if flow is not None and params.human_review_enabled:
                settings = replace(flow.settings, min_confidence=params.min_confidence)
                flow = replace(flow, settings=settings)
            every = params.human_sampling_interval if params.human_sampling_enabled else None
            from_model = params.human_review_enabled and params.suggested_min_confidence_enabled
        self._flows[project_name] = (time.monotonic(), flow, every, from_model)
        return flow, every, from_model
