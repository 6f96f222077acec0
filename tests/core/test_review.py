"""core.review on a real SQLite file and a local object store, with a clock the tests move."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.factories import image_bytes, make_project, unique_colour
from visionloop.core import review
from visionloop.core.entities import Box, DatasetType, EntrySource, Prediction, TaskType
from visionloop.core.projects import ensure_dataset
from visionloop.core.records.review import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_TIME_LIMIT_SECONDS,
    NONE_OF_THE_ABOVE,
    Detection,
    FlowDefinition,
    FlowSettings,
    HumanLoop,
    LoopPurpose,
    LoopResult,
    LoopStatus,
    QueueOrder,
    flow_arn,
)
from visionloop.core.review.inputs import input_predictions
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from visionloop.workflows.review_hook import ReviewHook

REGION, ACCOUNT = "us-east-1", "123456789012"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    at: datetime = T0

    def now(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


@dataclass
class World:
    svc: Services
    clock: Clock
    n: list[int] = field(default_factory=lambda: [0])

    def image(self) -> bytes:
        self.n[0] += 1
        return image_bytes(color=unique_colour(1000 + self.n[0]))

    def flow(self, project: str = "logos", **settings: Any) -> FlowDefinition:
        if project not in {p.name for p in self.svc.repo.list_projects()}:
            task = settings.pop("task", TaskType.CLASSIFICATION)
            assert isinstance(task, TaskType)
            make_project(self.svc, project, task)
            self.svc.repo.add_labels(self.svc.repo.get_project(project).id, ["cat", "dog"])
        else:
            settings.pop("task", None)
        return review.put_flow(
            self.svc,
            project,
            FlowSettings(**settings),
            region=REGION,
            account=ACCOUNT,
        )

    def detect(
        self, project: str = "logos", probs: dict[str, float] | None = None, data: bytes | None = None
    ) -> HumanLoop | None:
        return review.maybe_start_loop(
            self.svc,
            Detection(project, "v1", data or self.image(), probs or {"cat": 0.4, "dog": 0.35}, ref="req-1"),
        )


@pytest.fixture
def world(services: Services) -> World:
    clock = Clock()
    services.clock = clock
    return World(services, clock)


def test_flow_defaults_arn_and_choices(world: World) -> None:
    flow = world.flow()
    assert flow.name == "logos"
    assert flow.arn == "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/logos"
    assert flow.settings.reviewers_per_item == 1 and not flow.boxes and not flow.has_rule
    assert review.flow_choices(world.svc, flow) == ("cat", "dog", NONE_OF_THE_ABOVE)
    again = world.flow(min_confidence=60.0, instructions="Pick the logo")
    assert again.id == flow.id and again.settings.min_confidence == 60.0 and again.has_rule
    assert review.get_flow(world.svc, "logos").settings.instructions == "Pick the logo"
    with pytest.raises(InvalidInput, match="reviewers_per_item"):
        world.flow(reviewers_per_item=0)
    with pytest.raises(InvalidInput, match="min_confidence"):
        world.flow(min_confidence=101)
    with pytest.raises(InvalidInput, match="always offered"):
        world.flow(labels=("cat", NONE_OF_THE_ABOVE))


def test_the_hook_rule_and_one_open_loop_per_image(world: World) -> None:
    world.flow()
    assert world.detect() is None  # no rule: nothing
    world.flow(min_confidence=50.0)
    assert world.detect(probs={"cat": 0.9, "dog": 0.1}) is None  # confident
    data = world.image()
    loop = world.detect(data=data)
    assert loop is not None and loop.status is LoopStatus.IN_PROGRESS
    assert loop.purpose is LoopPurpose.LOW_CONFIDENCE and loop.model_answer == "cat"
    assert loop.margin == pytest.approx(0.05) and loop.model_version == "v1"
    assert [p.label for p in loop.predictions] == ["cat", "dog"]
    assert loop.expires_at == T0 + timedelta(seconds=DEFAULT_TIME_LIMIT_SECONDS)
    assert world.detect(data=data) is None  # the image already has an open loop
    assert review.item_image(world.svc, loop) == data


def test_explicit_start_same_name_and_conflicts(world: World) -> None:
    flow = world.flow()
    world.svc.buckets.put("inbox", "a.jpg", world.image())
    doc = {"taskObject": "s3://inbox/a.jpg", "customLabels": [{"Name": "dog", "Confidence": 70}]}
    loop = review.start_loop(world.svc, flow, "loop-1", json.dumps(doc))
    assert loop.purpose is LoopPurpose.EXPLICIT and loop.model_answer == "dog"
    assert loop.arn == "arn:aws:sagemaker:us-east-1:123456789012:human-loop/loop-1"
    assert review.start_loop(world.svc, flow, "loop-1", json.dumps(doc)).id == loop.id  # idempotent
    with pytest.raises(AlreadyExists):
        review.start_loop(world.svc, flow, "loop-1", json.dumps({**doc, "x": 1}))
    with pytest.raises(Conflict):  # same image, another name
        review.start_loop(world.svc, flow, "loop-2", json.dumps(doc))
    for bad in ("Loop", "-a", "a" * 64, "a_b"):
        with pytest.raises(InvalidInput):
            review.start_loop(world.svc, flow, bad, json.dumps(doc))
    for bad_doc in ("[]", "not json", json.dumps({"taskObject": "http://x"}), json.dumps({"a": 1})):
        with pytest.raises(InvalidInput):
            review.start_loop(world.svc, flow, "loop-3", bad_doc)
    with pytest.raises(NotFound):
        review.start_loop(world.svc, flow, "loop-3", json.dumps({"taskObject": "s3://inbox/missing.jpg"}))


def test_lease_is_exclusive_reentrant_and_expires(world: World) -> None:
    world.flow(min_confidence=50.0, lease_seconds=300)
    first, second = world.detect(), world.detect()
    assert first is not None and second is not None
    a = review.next_item(world.svc, "alice")
    assert a is not None and a.loop.id == first.id and a.choices[-1] == NONE_OF_THE_ABOVE
    assert a.lease_expires_at == T0 + timedelta(seconds=300)
    again = review.next_item(world.svc, "alice")
    assert again is not None and again.loop.id == first.id  # the same item while the lease lasts
    b = review.next_item(world.svc, "bob")
    assert b is not None and b.loop.id == second.id
    assert review.next_item(world.svc, "carol") is None  # both leased
    world.clock.advance(seconds=301)  # alice walked away
    c = review.next_item(world.svc, "carol")
    assert c is not None and c.loop.id == first.id
    with pytest.raises(Conflict, match="another reviewer"):
        review.submit_answer(world.svc, first.name, "alice", "cat")
    done = review.submit_answer(world.svc, first.name, "carol", "cat")
    assert done.status is LoopStatus.COMPLETED


def test_concurrent_reviewers_never_share_an_item(world: World) -> None:
    world.flow(min_confidence=50.0)
    for _ in range(6):
        world.detect()
    got: list[int] = []
    lock = threading.Lock()

    def take(name: str) -> None:
        item = review.next_item(world.svc, name)
        with lock:
            got.append(item.loop.id if item else -1)

    threads = [threading.Thread(target=take, args=(f"r{i}",)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    leased = [g for g in got if g != -1]
    assert len(leased) == 6 and len(set(leased)) == 6 and got.count(-1) == 2


def test_skip_release_and_no_lease(world: World) -> None:
    world.flow(min_confidence=50.0)
    loop = world.detect()
    assert loop is not None
    with pytest.raises(Conflict, match="no lease"):
        review.submit_answer(world.svc, loop.name, "alice", "cat")
    assert review.next_item(world.svc, "alice") is not None
    review.release_item(world.svc, loop.name, "alice")
    assert review.next_item(world.svc, "bob") is not None
    review.skip_item(world.svc, loop.name, "bob")
    assert review.next_item(world.svc, "bob") is None  # skipped: never again for bob
    item = review.next_item(world.svc, "alice")
    assert item is not None and item.loop.id == loop.id
    with pytest.raises(InvalidInput, match="not one of the choices"):
        review.submit_answer(world.svc, loop.name, "alice", "horse")
    with pytest.raises(InvalidInput, match="boxes"):
        review.submit_answer(world.svc, loop.name, "alice", "cat", [Box("cat", 0, 0, 0.5, 0.5)])
    with pytest.raises(InvalidInput):
        review.next_item(world.svc, "has space")


def test_completed_loop_adds_a_train_entry_and_writes_output(world: World) -> None:
    world.flow(min_confidence=50.0)
    loop = world.detect()
    assert loop is not None
    review.next_item(world.svc, "alice")
    world.clock.advance(seconds=42)
    done = review.submit_answer(world.svc, loop.name, "alice", "dog")
    assert done.status is LoopStatus.COMPLETED and done.result is LoopResult.ADDED
    assert done.human_answer == "dog" and done.agrees is False and not done.disagreement
    entry = world.svc.repo.get_entry(done.entry_id or 0)
    assert entry.labels == ("dog",) and entry.source is EntrySource.HUMAN_REVIEW
    assert entry.review_ref == loop.arn and entry.content_hash == loop.image.content_hash
    assert done.output_uri is not None and done.output_uri.startswith(
        "s3://human-review/logos/2026/03/01/09/00/00/"
    )
    out = review.loop_output(world.svc, done)
    assert out is not None
    assert out["flowDefinitionArn"] == review.get_flow(world.svc, "logos").arn
    assert out["humanLoopName"] == loop.name and out["inputContent"]["contentHash"] == loop.image.content_hash
    [answer] = out["humanAnswers"]
    assert answer["workerId"] == "alice" and answer["answerContent"] == {"label": "dog"}
    assert answer["timeSpentInSeconds"] == 42.0 and answer["submissionTime"].endswith("Z")
    agreement = {a.label: a for a in review.agreement_by_label(world.svc, "logos")}
    assert agreement["cat"].model_said == 1 and agreement["cat"].agreed == 0 and agreement["cat"].rate == 0
    assert agreement["dog"].human_said == 1


def test_none_of_the_above_and_audit_add_nothing(world: World) -> None:
    world.flow(min_confidence=50.0)
    loop = world.detect(probs={"cat": 0.2, "dog": 0.1})
    assert loop is not None
    review.next_item(world.svc, "alice")
    done = review.submit_answer(world.svc, loop.name, "alice", None)
    assert done.result is LoopResult.NONE_OF_THE_ABOVE and done.entry_id is None
    assert done.human_answer == NONE_OF_THE_ABOVE and done.agrees is False
    world.flow(min_confidence=None, audit_rate=1.0)
    audit = world.detect(probs={"cat": 0.99, "dog": 0.01})
    assert audit is not None and audit.purpose is LoopPurpose.AUDIT
    review.next_item(world.svc, "alice")
    done = review.submit_answer(world.svc, audit.name, "alice", "cat")
    assert done.result is LoopResult.AUDIT and done.entry_id is None and done.agrees is True
    train = ensure_dataset(world.svc, world.svc.repo.get_project("logos"), DatasetType.TRAIN)
    assert world.svc.repo.count_entries(train.id) == 0


def test_majority_tie_breaker_and_disagreement(world: World) -> None:
    world.flow(min_confidence=50.0, reviewers_per_item=2)
    loop = world.detect()
    assert loop is not None
    for who in ("a", "b"):
        item = review.next_item(world.svc, who)
        assert item is not None and item.loop.id == loop.id  # two slots
    assert review.next_item(world.svc, "c") is None
    review.submit_answer(world.svc, loop.name, "a", "cat")
    tied = review.submit_answer(world.svc, loop.name, "b", "dog")
    assert tied.status is LoopStatus.IN_PROGRESS and tied.answers_needed == 3 and tied.disagreement
    assert review.next_item(world.svc, "a") is None  # a already answered
    review.next_item(world.svc, "c")
    done = review.submit_answer(world.svc, loop.name, "c", "cat")
    assert done.status is LoopStatus.COMPLETED and done.human_answer == "cat" and done.disagreement
    assert done.agrees is True
    assert [a.reviewer for a in review.loop_answers(world.svc, done)] == ["a", "b", "c"]


def test_expiry_stop_and_delete(world: World) -> None:
    world.flow(min_confidence=50.0, time_limit_seconds=3600)
    loop = world.detect()
    held = world.detect()
    assert loop is not None and held is not None
    with pytest.raises(Conflict, match="stop it"):
        review.delete_loop(world.svc, loop.name)
    world.clock.advance(seconds=3601)
    expired = review.describe_loop(world.svc, loop.name)
    assert expired.status is LoopStatus.FAILED and expired.failure_code == "Expired"
    review.delete_loop(world.svc, loop.name)
    with pytest.raises(NotFound):
        review.describe_loop(world.svc, loop.name)

    world.flow(min_confidence=50.0, time_limit_seconds=36000)
    fresh = world.detect()
    assert fresh is not None
    item = review.next_item(world.svc, "alice")
    assert item is not None and item.loop.id == fresh.id
    stopping = review.stop_loop(world.svc, fresh.name)
    assert stopping.status is LoopStatus.STOPPING  # alice holds it
    with pytest.raises(Conflict, match="stopped"):
        review.submit_answer(world.svc, fresh.name, "alice", "cat")
    assert review.describe_loop(world.svc, fresh.name).status is LoopStatus.STOPPED  # the lease went
    review.release_item(world.svc, fresh.name, "alice")  # nothing to release: no error
    assert review.stop_loop(world.svc, fresh.name).status is LoopStatus.STOPPED
    abandoned = world.detect()
    assert abandoned is not None and review.next_item(world.svc, "bob") is not None
    assert review.stop_loop(world.svc, abandoned.name).status is LoopStatus.STOPPING
    world.clock.advance(seconds=DEFAULT_LEASE_SECONDS + 1)  # bob never comes back
    assert review.describe_loop(world.svc, abandoned.name).status is LoopStatus.STOPPED
    review.delete_loop(world.svc, fresh.name)
    # the image is free again for a new loop
    assert world.detect(data=review.item_image(world.svc, fresh)) is not None


def test_order_by_margin_and_daily_budget(world: World) -> None:
    world.flow(min_confidence=90.0, queue_order=QueueOrder.LOWEST_MARGIN, daily_budget=2)
    wide = world.detect(probs={"cat": 0.8, "dog": 0.1})
    narrow = world.detect(probs={"cat": 0.41, "dog": 0.40})
    mid = world.detect(probs={"cat": 0.6, "dog": 0.3})
    assert wide and narrow and mid
    first = review.next_item(world.svc, "a")
    assert first is not None and first.loop.id == narrow.id
    second = review.next_item(world.svc, "b")
    assert second is not None and second.loop.id == mid.id
    assert review.next_item(world.svc, "c") is None  # two handed out today
    review.release_item(world.svc, second.loop.name, "b")
    third = review.next_item(world.svc, "c")
    assert third is not None and third.loop.id == mid.id
    world.clock.advance(days=1)  # a new day: leases expired and the budget renewed
    assert review.next_item(world.svc, "d") is not None


def test_detection_project_answers_with_boxes(world: World) -> None:
    world.flow("shapes", task=TaskType.DETECTION, min_confidence=50.0)
    loop = world.detect("shapes")
    assert loop is not None
    flow = review.get_flow(world.svc, "shapes")
    assert flow.boxes
    review.next_item(world.svc, "a")
    with pytest.raises(InvalidInput, match="inside the image"):
        review.submit_answer(world.svc, loop.name, "a", "cat", [Box("cat", 0.5, 0.5, 0.9, 0.2)])
    done = review.submit_answer(world.svc, loop.name, "a", "cat", [Box("cat", 0.1, 0.1, 0.5, 0.5)])
    entry = world.svc.repo.get_entry(done.entry_id or 0)
    assert entry.boxes == (Box("cat", 0.1, 0.1, 0.5, 0.5),) and entry.labels == ()
    out = review.loop_output(world.svc, done)
    assert out is not None and out["humanAnswers"][0]["answerContent"]["boundingBoxes"][0]["label"] == "cat"


def test_a_detectors_boxes_become_the_reviewers_starting_boxes(world: World) -> None:
    world.flow("shapes", task=TaskType.DETECTION, min_confidence=50.0)
    boxes = (
        Prediction("dog", 45.0, Box("dog", 0.5, 0.5, 0.25, 0.25)),
        Prediction("cat", 40.0, Box("cat", 0, 0, 0.5, 0.5)),
    )
    loop = review.maybe_start_loop(
        world.svc, Detection("shapes", "v1", world.image(), {"cat": 0.4, "dog": 0.45}, boxes=boxes)
    )
    assert loop is not None
    stored = world.svc.repo.get_loop_by_id(loop.id)  # through the database
    assert stored.predictions == boxes and stored.model_answer == "dog"
    doc = json.loads(stored.input_content)
    assert doc["customLabels"][0] == {
        "Name": "dog",
        "Confidence": 45.0,
        "Geometry": {"BoundingBox": {"Left": 0.5, "Top": 0.5, "Width": 0.25, "Height": 0.25}},
    }
    assert input_predictions(doc) == boxes  # A2I inputs with Geometry read back the same


def test_the_hook_works_in_the_background(world: World) -> None:
    world.flow(min_confidence=50.0)
    hook = ReviewHook(world.svc, ttl=60)
    try:
        hook(Detection("logos", "v1", world.image(), {"cat": 0.3}))
        hook(Detection("nope", "v1", b"x", {"cat": 0.3}))  # an unknown project is ignored
        hook.flush()
        assert len(hook.started) == 1
        make_project(world.svc, "plain")
        hook(Detection("plain", "v1", world.image(), {"cat": 0.3}))
        hook.flush()
        plain = Detection("plain", "v1", world.image(), {"cat": 0.3})
        assert hook.rules.decide(plain) == (False, None)  # remembered: the next detection is not even queued
        hook(plain)
        assert hook.pending == 0
        hook(Detection("logos", "v1", world.image(), {"cat": 0.9}))  # confident: decided on the spot
        assert hook.pending == 0
        hook(Detection("logos", "v1", world.image(), {"cat": 0.1}))
        hook.flush()
        assert len(hook.started) == 2
    finally:
        hook.stop()


def test_flow_by_arn(world: World) -> None:
    make_project(world.svc, "plain")
    other = "arn:aws:sagemaker:eu-west-3:123456789012:flow-definition/plain"
    with pytest.raises(NotFound, match="region and account"):
        review.flow_by_arn(world.svc, other, region=REGION, account=ACCOUNT)
    assert review.find_flow(world.svc, "plain") is None  # nothing created on the way
    arn = flow_arn(REGION, ACCOUNT, "plain")
    assert review.flow_by_arn(world.svc, arn, region=REGION, account=ACCOUNT, create=False) is None
    flow = review.flow_by_arn(world.svc, arn, region=REGION, account=ACCOUNT)
    assert flow is not None and flow.arn == arn
    with pytest.raises(NotFound):
        review.flow_by_arn(world.svc, flow_arn(REGION, ACCOUNT, "nope"), region=REGION, account=ACCOUNT)
    with pytest.raises(InvalidInput):
        review.flow_by_arn(world.svc, "arn:aws:sagemaker:x", region=REGION, account=ACCOUNT)
