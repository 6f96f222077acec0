"""The project's parameters drive the review hook (workflows.review_hook.ReviewHook with core.parameters), and
human loops publish human_loop_created / human_loop_completed events (core.events)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
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


def guide(min_confidence: float | None) -> dict[str, object]:
    """An evaluation whose review guide suggests ``min_confidence`` (None: suggests nothing)."""
    suggested = (
        None
        if min_confidence is None
        else {"min_confidence": min_confidence, "wrong_caught": 0.8, "sent": 0.3}
    )
    return {"review_guide": {"basis": "cross-validation", "images": 100, "wrong": 20, "suggested": suggested}}


def add_version(svc: Services, name: str, evaluation: dict[str, object] | None) -> None:
    project = svc.repo.get_project("logos")
    version = svc.repo.create_version(project.id, name, "fake", "fast", "s" * 64, T0)
    svc.repo.update_version(version.id, evaluation=evaluation)


def test_each_version_can_set_its_own_threshold_from_its_review_guide(
    svc: Services, hook: ReviewHook
) -> None:
    add_version(svc, "v1", guide(85))
    add_version(svc, "v2", {"macro_f1": 0.9})  # no guide (e.g. trained before it): min_confidence applies
    add_version(svc, "v3", guide(None))  # no wrong answers: nothing suggested
    parameters.update_parameters(
        svc,
        "logos",
        {"human_review_enabled": True, "min_confidence": 60, "suggested_min_confidence_enabled": True},
        changed_by="t",
    )

    def top(version: str, p: float) -> None:
        hook(Detection("logos", version, image(), {"cat": p, "dog": round(1 - p, 3)}))
        hook.flush()

    top("v1", 0.80)  # below v1's 85: reviewed
    top("v1", 0.80)  # the same again, decided from the cache on the caller's thread
    top("v1", 0.90)  # above
    top("v2", 0.80)  # above the parameter's 60
    top("v2", 0.55)  # below it
    top("v3", 0.55)
    top("gone", 0.55)  # a version that does not exist: min_confidence
    top("gone", 0.70)
    assert [loop.model_version for loop in hook.started] == ["v1", "v1", "v2", "v3", "gone"]
    parameters.update_parameters(svc, "logos", {"suggested_min_confidence_enabled": False}, changed_by="t")
    top("v1", 0.80)  # the parameter's 60 again
    parameters.update_parameters(
        svc,
        "logos",
        {"human_review_enabled": False, "suggested_min_confidence_enabled": True},
        changed_by="t",
    )
    top("v1", 0.80)  # only with human review on
    assert len(hook.started) == 5


def test_suggested_min_confidence_reads_only_a_sound_suggestion(svc: Services) -> None:
    add_version(svc, "v1", guide(77))
    version = svc.repo.get_version(svc.repo.get_project("logos").id, "v1")
    assert review.suggested_min_confidence(version) == 77.0
    for evaluation in (
        None,
        {},
        {"review_guide": None},
        {"review_guide": []},
        {"review_guide": {"suggested": "70"}},
        guide(None),
        {"review_guide": {"suggested": {"min_confidence": "70"}}},
        {"review_guide": {"suggested": {"min_confidence": True}}},
        guide(101),
        guide(-1),
    ):
        assert review.suggested_min_confidence(replace(version, evaluation=evaluation)) is None, evaluation


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
