"""The project's parameters drive the review hook (workflows.review_hook.ReviewHook with core.parameters), and
human loops publish human_loop_created / human_loop_completed events (core.events)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.factories import image_bytes, make_project, unique_colour
from visionloop.core import events, parameters, review
from visionloop.core.events import Event, EventType
from visionloop.core.records.review import Detection, FlowSettings, LoopPurpose, LoopResult, flow_arn
from visionloop.core.services import Services
from visionloop.workflows.review_hook import ReviewHook

REGION, ACCOUNT = "us-east-1", "123456789012"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    def now(self) -> datetime:
        return T0


@pytest.fixture
def svc(services: Services) -> Services:
    services.clock = Clock()
    make_project(services, "logos")
    services.repo.add_labels(services.repo.get_project("logos").id, ["cat", "dog"])
    return services


@pytest.fixture
def hook(svc: Services) -> Iterator[ReviewHook]:
    h = ReviewHook(svc, ttl=60, region=REGION, account=ACCOUNT)
    yield h
    h.stop()


class Images:
    n = 0

    def __call__(self) -> bytes:
        Images.n += 1
        return image_bytes(color=unique_colour(5000 + Images.n))


image = Images()


def detect(hook: ReviewHook, top: float, project: str = "logos") -> None:
    hook(Detection(project, "v1", image(), {"cat": top, "dog": round(1 - top, 3) / 2}))


def test_no_parameters_no_flow_no_loops(svc: Services, hook: ReviewHook) -> None:
    for _ in range(3):
        detect(hook, 0.1)
    hook.flush()
    assert hook.started == [] and review.find_flow(svc, "logos") is None


def test_human_review_enabled_uses_min_confidence_and_creates_the_flow(
    svc: Services, hook: ReviewHook
) -> None:
    parameters.update_parameters(
        svc, "logos", {"human_review_enabled": True, "min_confidence": 70}, changed_by="t"
    )
    detect(hook, 0.65)  # below 70
    detect(hook, 0.75)  # above
    hook.flush()
    detect(hook, 0.69)  # decided on the caller's thread now that the rule is cached
    hook.flush()
    assert [loop.purpose for loop in hook.started] == [LoopPurpose.LOW_CONFIDENCE] * 2
    flow = review.get_flow(svc, "logos")
    assert flow.arn == flow_arn(REGION, ACCOUNT, "logos")
    assert flow.settings.min_confidence is None  # the flow's own setting is untouched


def test_the_parameter_threshold_replaces_the_flows_own(svc: Services, hook: ReviewHook) -> None:
    review.put_flow(svc, "logos", FlowSettings(min_confidence=40.0), region=REGION, account=ACCOUNT)
    detect(hook, 0.5)
    hook.flush()
    assert hook.started == []  # 50 ≥ the flow's 40
    parameters.update_parameters(
        svc, "logos", {"human_review_enabled": True, "min_confidence": 60}, changed_by="t"
    )  # the hook hears of it at once (the event), not after its ttl
    detect(hook, 0.5)
    hook.flush()
    assert len(hook.started) == 1
    parameters.update_parameters(svc, "logos", {"human_review_enabled": False}, changed_by="t")
    detect(hook, 0.5)
    detect(hook, 0.3)  # below the flow's own 40 again
    hook.flush()
    assert len(hook.started) == 2


def test_every_nth_detection_is_sampled_for_audit(svc: Services, hook: ReviewHook) -> None:
    parameters.update_parameters(
        svc, "logos", {"human_sampling_enabled": True, "human_sampling_interval": 3}, changed_by="t"
    )
    for _ in range(7):
        detect(hook, 0.95)  # confident: only sampling picks them
        hook.flush()
    assert [loop.purpose for loop in hook.started] == [LoopPurpose.AUDIT] * 2  # the 3rd and the 6th
    parameters.update_parameters(
        svc,
        "logos",
        {"human_review_enabled": True, "min_confidence": 50, "human_sampling_interval": 2},
        changed_by="t",
    )
    # the 7th detection was counted already: the next is the 2nd since the last sample; it is low
    # confidence, so it gets that loop (not also an audit) and the count starts again
    detect(hook, 0.2)
    detect(hook, 0.9)
    detect(hook, 0.9)  # the 2nd since: audit
    hook.flush()
    assert [loop.purpose for loop in hook.started[2:]] == [LoopPurpose.LOW_CONFIDENCE, LoopPurpose.AUDIT]
    parameters.update_parameters(svc, "logos", {"human_sampling_enabled": False}, changed_by="t")
    for _ in range(4):
        detect(hook, 0.9)
    hook.flush()
    assert len(hook.started) == 4


def test_loops_publish_created_and_completed_events(svc: Services, hook: ReviewHook) -> None:
    seen: list[Event] = []
    svc.bus.subscribe(seen.append, [EventType.HUMAN_LOOP_CREATED, EventType.HUMAN_LOOP_COMPLETED])
    parameters.update_parameters(
        svc, "logos", {"human_review_enabled": True, "min_confidence": 90}, changed_by="t"
    )
    detect(hook, 0.6)
    hook.flush()
    [loop] = hook.started
    [created] = seen
    assert created.type is EventType.HUMAN_LOOP_CREATED and created.project == "logos"
    assert created.payload == {
        "loop": loop.name,
        "arn": loop.arn,
        "purpose": "low_confidence",
        "model_answer": "cat",
        "version": "v1",
    }
    review.next_item(svc, "ann")
    done = review.submit_answer(svc, loop.name, "ann", "dog")
    assert done.result is LoopResult.ADDED
    completed = seen[1]
    assert completed.type is EventType.HUMAN_LOOP_COMPLETED
    assert completed.payload == {
        "loop": loop.name,
        "arn": loop.arn,
        "purpose": "low_confidence",
        "model_answer": "cat",
        "human_answer": "dog",
        "agrees": False,
        "result": "added",
        "version": "v1",
    }
    stored = events.list_events(svc, "logos", type="human_loop_completed")
    assert [e.id for e in stored] == [completed.id]


def test_an_explicit_loop_publishes_too(svc: Services) -> None:
    flow = review.ensure_flow(svc, "logos", region=REGION, account=ACCOUNT)
    loop = review.start_loop(svc, flow, "by-hand", {"customLabels": []}, image=image())
    [event] = events.list_events(svc, "logos", type="human_loop_created")
    assert event.payload["loop"] == loop.name and event.payload["purpose"] == "explicit"


def test_a_failing_publish_never_fails_the_loop(
    svc: Services, hook: ReviewHook, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    flow = review.ensure_flow(svc, "logos", region=REGION, account=ACCOUNT)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("events table is gone")

    monkeypatch.setattr(svc.repo, "add_event", broken)
    loop = review.start_loop(svc, flow, "still-fine", {"customLabels": []}, image=image())
    assert loop.name == "still-fine"
    assert "human_loop_created event of loop still-fine was not published" in caplog.text
