"""Human sampling and the drift signal: every n-th detection of an inbox opens an AUDIT loop (the review
hook counts, the loops point at the logged detections); the sampling check samples the newest unsampled
detection when none was sampled for human_sampling_minutes and keeps its bookkeeping; agreement per day
and week from completed loops."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tests.core import test_inbox
from tests.core.test_inbox import INBOX, World, inference_images
from tests.factories import image_bytes, make_project, unique_colour
from visionloop.core import review, schedules
from visionloop.core.parameters import get_state, update_parameters
from visionloop.core.records.review import Detection, FlowSettings, HumanLoop, LoopPurpose
from visionloop.core.sampling import agreement_over_time, bucket_start, run_sampling_check
from visionloop.core.services import Services
from visionloop.errors import InvalidInput
from visionloop.workflows.inbox import LocalDetector
from visionloop.workflows.review_hook import ReviewHook

world = test_inbox.world  # the fixture: a trained colour-engine version serving "logos", an inbox bucket


def sampled_loops(svc: Services, project: str = "logos") -> list[HumanLoop]:
    flow = review.find_flow(svc, project)
    if flow is None:
        return []
    return [lp for lp in review.list_loops(svc, flow, ascending=True) if lp.purpose is LoopPurpose.AUDIT]


def test_every_nth_detection_opens_an_audit_loop(world: World) -> None:
    svc = world.svc
    update_parameters(
        svc, "logos", {"human_sampling_enabled": True, "human_sampling_interval": 3}, changed_by="test"
    )
    hook = ReviewHook(svc)
    world.detector.inner = LocalDetector(svc, world.detector.inner.engine, world.log, hook)
    photos = inference_images(world)
    for photo in photos:  # one at a time, as they would arrive
        world.put(f"{INBOX}/{photo.name}", photo.read_bytes())
        world.scan()
        hook.flush()
    hook.stop()
    logged = world.logged()
    assert len(logged) == 10
    loops = sampled_loops(svc)
    assert len(loops) == 3  # the 3rd, 6th and 9th detections
    order = [d.ref for d in reversed(logged)]  # oldest first
    assert [order.index(lp.detection_ref) for lp in loops] == [2, 5, 8]
    assert all(lp.model_version == "v1" for lp in loops)
    pid = svc.repo.get_project("logos").id
    for lp in loops:
        [found] = svc.repo.detection_loops(pid, lp.detection_ref or "")
        assert (found["name"], found["purpose"], found["status"]) == (lp.name, "audit", "InProgress")
    assert svc.repo.detection_loops(pid, logged[0].ref) == []  # the 10th was not sampled


def test_the_sampling_check(world: World) -> None:
    svc = world.svc
    assert "off" in run_sampling_check(svc, "logos").message
    update_parameters(
        svc,
        "logos",
        {"human_sampling_enabled": True, "human_sampling_minutes": 60, "human_sampling_interval": 1000},
        changed_by="test",
    )
    assert run_sampling_check(svc, "logos").message == "no detection since the last sample"
    photos = inference_images(world)
    for photo in photos[:3]:
        world.put(f"{INBOX}/{photo.name}", photo.read_bytes())
    world.scan()
    newest = world.logged()[0]
    first = run_sampling_check(svc, "logos")
    assert first.detection_id == newest.id and first.loop is not None
    [loop] = sampled_loops(svc)
    assert loop.name == first.loop and loop.detection_ref == newest.ref and loop.purpose is LoopPurpose.AUDIT
    assert loop.image.content_hash == newest.content_hash
    assert svc.repo.find_detection(newest.ref) == newest and svc.repo.find_detection("nope") is None
    state = get_state(svc, "logos")
    assert state["sampling.last_loop"] == loop.name and state["sampling.last_detection_id"] == newest.id
    # within the period: nothing more
    world.clock.offset += timedelta(minutes=30)
    assert "sampled 30 minutes ago" in run_sampling_check(svc, "logos").message
    # a period later, nothing new was detected: nothing to sample
    world.clock.offset += timedelta(minutes=31)
    assert run_sampling_check(svc, "logos").message == "no detection since the last sample"
    # a new detection: it is the one sampled
    world.put(f"{INBOX}/{photos[3].name}", photos[3].read_bytes())
    world.scan()
    second = run_sampling_check(svc, "logos")
    assert second.detection_id == world.logged()[0].id and len(sampled_loops(svc)) == 2
    assert get_state(svc, "logos")["sampling.last_loop"] == second.loop
    # the newest detections' images already under review: nothing sampled, said so
    world.clock.offset += timedelta(minutes=61)
    world.put(f"{INBOX}/again.png", photos[3].read_bytes())
    world.scan()
    assert "open loops" in run_sampling_check(svc, "logos").message
    assert "sampling.last_check_at" in get_state(svc, "logos")


def test_the_schedule_runs_the_sampling_check(world: World) -> None:
    """The scheduler (core.schedules) finds run_sampling_check by name and keeps what it said."""
    svc = world.svc
    photo = inference_images(world)[0]
    world.put(f"{INBOX}/{photo.name}", photo.read_bytes())
    world.scan()
    update_parameters(svc, "logos", {"human_sampling_enabled": True}, changed_by="test")
    fired = [f for f in schedules.run_schedules(svc) if f.kind == "sampling" and f.project == "logos"]
    assert len(fired) == 1 and fired[0].result.startswith("detection ") and "audit loop" in fired[0].result
    assert len(sampled_loops(svc)) == 1


@dataclass
class Clock:
    at: datetime

    def now(self) -> datetime:
        return self.at


def complete(
    svc: Services, clock: Clock, when: datetime, model: str, human: str, purpose: LoopPurpose
) -> None:
    """A loop the model answered ``model`` that a reviewer completed with ``human`` at ``when``."""
    clock.at = when - timedelta(hours=1)
    flow = review.find_flow(svc, "drift")
    assert flow is not None
    n = len(review.list_loops(svc, flow)) + 1
    other = "amazon_logo" if model == "aws_logo" else "aws_logo"
    detection = Detection("drift", "v1", image_bytes(color=unique_colour(500 + n)), {model: 0.8, other: 0.2})
    loop = review.maybe_start_loop(svc, detection, flow=flow, purpose=purpose)
    assert loop is not None
    clock.at = when
    item = review.next_item(svc, "alice", project="drift")
    assert item is not None and item.loop.name == loop.name
    done = review.submit_answer(svc, item.loop, "alice", human)
    assert done.completed_at == when


def test_agreement_per_day_and_week(services: Services) -> None:
    clock = Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # a Monday
    services.clock = clock
    make_project(services, "drift")
    services.repo.add_labels(services.repo.get_project("drift").id, ["amazon_logo", "aws_logo"])
    review.put_flow(services, "drift", FlowSettings(), region="us-east-1", account="123456789012")
    monday, tuesday, next_monday = (datetime(2026, 3, d, 15, 0, tzinfo=UTC) for d in (2, 3, 9))
    complete(services, clock, monday, "aws_logo", "aws_logo", LoopPurpose.AUDIT)
    complete(services, clock, monday, "amazon_logo", "aws_logo", LoopPurpose.LOW_CONFIDENCE)
    complete(services, clock, tuesday, "aws_logo", "amazon_logo", LoopPurpose.AUDIT)
    complete(services, clock, next_monday, "aws_logo", "aws_logo", LoopPurpose.AUDIT)
    complete(services, clock, next_monday, "aws_logo", "None of the above", LoopPurpose.AUDIT)

    days = agreement_over_time(services, "drift")
    assert [(b.start.day, b.loops, b.agreed, b.rate) for b in days] == [
        (2, 2, 1, 0.5),
        (3, 1, 0, 0.0),
        (9, 2, 1, 0.5),
    ]
    assert days[0].end - days[0].start == timedelta(days=1)
    per_label = {c.label: c for c in days[0].labels}
    assert (
        per_label["aws_logo"].model_said,
        per_label["aws_logo"].agreed,
        per_label["aws_logo"].human_said,
    ) == (
        1,
        1,
        2,
    )
    assert per_label["amazon_logo"].rate == 0.0
    assert [c.label for c in days[2].labels] == ["aws_logo", "None of the above"]
    weeks = agreement_over_time(services, "drift", bucket="week")
    assert [(b.start.date().isoformat(), b.loops, b.agreed) for b in weeks] == [
        ("2026-03-02", 3, 1),
        ("2026-03-09", 2, 1),
    ]
    audits = agreement_over_time(services, "drift", bucket="week", purpose="audit")
    assert [(b.loops, b.agreed) for b in audits] == [(2, 1), (2, 1)]
    ranged = agreement_over_time(services, "drift", since=tuesday - timedelta(hours=1), until=next_monday)
    assert [b.start.day for b in ranged] == [3]
    assert agreement_over_time(services, "drift", since=datetime(2026, 3, 3)) == days[1:]  # no zone: UTC
    assert bucket_start(datetime(2026, 3, 8, 23, 59, tzinfo=UTC), "week") == datetime(2026, 3, 2, tzinfo=UTC)
    for bad in ({"bucket": "month"}, {"purpose": "whim"}, {"since": monday, "until": monday}):
        with pytest.raises(InvalidInput):
            agreement_over_time(services, "drift", **bad)  # type: ignore[arg-type]
