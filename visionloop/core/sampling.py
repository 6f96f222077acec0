"""Human sampling and the drift signal.

Sampling sends detections to people whatever the model's confidence, as AUDIT human loops (compared with
the model, never added to training), so that the agreement between people and the model is measured on
an unbiased sample — low-confidence loops are, by design, the detections the model is unsure of.

- **Every n-th detection** (parameter ``human_sampling_interval``, with ``human_sampling_enabled``):
  counted by the detection path's review hook (core.review.ReviewHook), which opens the AUDIT loop.
- **The sampling check** (``run_sampling_check``, called by the scheduler every
  ``human_sampling_minutes``; core.schedules): when no AUDIT loop was opened in the last
  ``human_sampling_minutes``, the most recent logged detection (core.detections) since the last sample
  whose image has no open loop is sampled. So a project with few detections is still sampled about once
  per period. The check records what it did in the workflow state (core.parameters): ``sampling.*``.

The drift signal (``agreement_over_time``): the Completed loops' human answers against the model's, per
day or week (UTC) and per label — the rate at which people agreed with the model when it said that label.
A falling rate on AUDIT loops means the model is drifting from what people see.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from visionloop.core.images import load_image
from visionloop.core.parameters import get_parameters, set_state
from visionloop.core.projects import get_project
from visionloop.core.records.detections import DetectionFilter
from visionloop.core.records.review import NONE_OF_THE_ABOVE, Detection, LoopPurpose
from visionloop.core.review import ensure_flow, maybe_start_loop
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, NotFound

CANDIDATES = 20  # newest unsampled detections tried (an image with an open loop is skipped)
BUCKETS = ("day", "week")
MAX_BUCKETS = 1000


@dataclass(frozen=True)
class SamplingResult:
    """What one sampling check did: the loop it opened (and for which logged detection), or why none."""

    project: str
    message: str
    loop: str | None = None
    detection_id: int | None = None

    def __str__(self) -> str:  # what the scheduler keeps as the check's last result
        return self.message


def run_sampling_check(
    svc: Services,
    project: str,
    *,
    now: datetime | None = None,
    region: str = "us-east-1",
    account: str = "123456789012",
) -> SamplingResult:
    """The time-based half of human sampling (see the module docstring). ``region`` and ``account``
    name the default flow's ARN if the project has no flow yet (the review hook creates it normally)."""
    now = now or svc.clock.now()
    found = get_project(svc, project)
    params = get_parameters(svc, found)
    if not params.human_sampling_enabled:
        return SamplingResult(found.name, "human sampling is off (human_sampling_enabled)")
    period = timedelta(minutes=params.human_sampling_minutes)
    last = svc.repo.newest_loop_at(found.id, LoopPurpose.AUDIT.value)
    state: dict[str, Any] = {"sampling.last_check_at": now.isoformat()}
    if last is not None and now - last < period:
        minutes = (now - last).total_seconds() / 60
        set_state(svc, found, state, now=now)
        return SamplingResult(found.name, f"a detection was sampled {minutes:.0f} minutes ago")
    result = _sample_newest(svc, found.name, last, now, region, account)
    if result.loop is not None:
        state |= {
            "sampling.last_sampled_at": now.isoformat(),
            "sampling.last_detection_id": result.detection_id,
            "sampling.last_loop": result.loop,
        }
    set_state(svc, found, state, now=now)
    return result


def _sample_newest(
    svc: Services, project: str, last: datetime | None, now: datetime, region: str, account: str
) -> SamplingResult:
    found = get_project(svc, project)
    where = DetectionFilter(since=last, until=now + timedelta(microseconds=1))
    detections = [
        d
        for d in svc.repo.list_detections(found.id, where, limit=CANDIDATES)
        if last is None or d.detected_at > last
    ]
    if not detections:
        return SamplingResult(project, "no detection since the last sample")
    flow = svc.repo.find_flow(found.id) or ensure_flow(svc, project, region=region, account=account)
    for d in detections:
        try:
            image = load_image(svc.store, d.content_hash)
        except NotFound:  # its image is gone from the store: not sampleable
            continue
        boxes = tuple(p for p in d.labels if p.box is not None)
        detection = Detection(project, d.version, image, dict(d.probabilities), d.source_ref, d.ref, boxes)
        loop = maybe_start_loop(svc, detection, flow=flow, purpose=LoopPurpose.AUDIT, now=now)
        if loop is not None:
            return SamplingResult(
                project, f"detection {d.id} sampled: audit loop {loop.name}", loop.name, d.id
            )
    return SamplingResult(project, "the recent detections' images already have open loops")


# --- the drift signal ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelCounts:
    label: str
    model_said: int  # loops whose model answer was this label
    agreed: int  # ... where the human answer was the same
    human_said: int  # loops whose human answer was this label

    @property
    def rate(self) -> float | None:
        return round(self.agreed / self.model_said, 4) if self.model_said else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "model_said": self.model_said,
            "agreed": self.agreed,
            "human_said": self.human_said,
            "rate": self.rate,
        }


@dataclass(frozen=True)
class AgreementBucket:
    """One day or week (UTC): how many Completed loops, how often people agreed with the model."""

    start: datetime
    end: datetime
    loops: int
    agreed: int
    labels: tuple[LabelCounts, ...] = field(default=())

    @property
    def rate(self) -> float | None:
        return round(self.agreed / self.loops, 4) if self.loops else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "loops": self.loops,
            "agreed": self.agreed,
            "rate": self.rate,
            "labels": [c.to_dict() for c in self.labels],
        }


def bucket_start(ts: datetime, bucket: str) -> datetime:
    """The start (UTC midnight; for weeks, Monday's) of the day or week ``ts`` falls in."""
    day = ts.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday()) if bucket == "week" else day


def agreement_over_time(
    svc: Services,
    project: str,
    *,
    bucket: str = "day",
    since: datetime | None = None,
    until: datetime | None = None,
    purpose: LoopPurpose | str | None = None,
) -> list[AgreementBucket]:
    """Human vs model agreement over the project's Completed loops (of ``purpose``, default every
    purpose), per ``bucket`` ("day" or "week", UTC) of their completion time in [since, until), oldest
    first; buckets without a completed loop are left out."""
    if bucket not in BUCKETS:
        raise InvalidInput(f"bucket must be one of {', '.join(BUCKETS)}, not {str(bucket)[:40]!r}")
    wanted = _purpose(purpose)
    since = since if since is None or since.tzinfo else since.replace(tzinfo=UTC)
    until = until if until is None or until.tzinfo else until.replace(tzinfo=UTC)
    if since is not None and until is not None and since >= until:
        raise InvalidInput("since must be earlier than until")
    found = get_project(svc, project)
    rows = [
        (at, model, human)
        for at, model, human, kind in svc.repo.loop_outcomes(found.id, since=since, until=until)
        if wanted is None or kind == wanted.value
    ]
    groups: dict[datetime, list[tuple[str | None, str]]] = {}
    for at, model, human in rows:
        groups.setdefault(bucket_start(at, bucket), []).append((model, human))
    if len(groups) > MAX_BUCKETS:
        raise InvalidInput(f"more than {MAX_BUCKETS} {bucket}s: narrow the range with since and until")
    step = timedelta(days=7 if bucket == "week" else 1)
    return [_bucket(start, start + step, pairs) for start, pairs in sorted(groups.items())]


def _purpose(purpose: LoopPurpose | str | None) -> LoopPurpose | None:
    if purpose is None or purpose == "":
        return None
    try:
        return LoopPurpose(purpose)
    except ValueError:
        known = ", ".join(p.value for p in LoopPurpose)
        raise InvalidInput(f"unknown loop purpose {str(purpose)[:40]!r}: use one of {known}") from None


def _bucket(start: datetime, end: datetime, pairs: Iterable[tuple[str | None, str]]) -> AgreementBucket:
    model_said: Counter[str] = Counter()
    agreed: Counter[str] = Counter()
    human_said: Counter[str] = Counter()
    for model, human in pairs:
        said = model or NONE_OF_THE_ABOVE
        model_said[said] += 1
        human_said[human] += 1
        if human == said:
            agreed[said] += 1
    labels = sorted(set(model_said) | set(human_said), key=lambda s: (s == NONE_OF_THE_ABOVE, s))
    counts = tuple(LabelCounts(lab, model_said[lab], agreed[lab], human_said[lab]) for lab in labels)
    return AgreementBucket(start, end, sum(model_said.values()), sum(agreed.values()), counts)


__all__ = [
    "AgreementBucket",
    "LabelCounts",
    "SamplingResult",
    "agreement_over_time",
    "bucket_start",
    "run_sampling_check",
]
