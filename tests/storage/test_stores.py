"""The stores' contract on SQLite and PostgreSQL (tests/storage/conftest.py): what each stored type comes
back as (aware UTC times, booleans, JSON), and the claims and upserts the use cases rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from visionloop.core.entities import JobStatus, Prediction, TaskType, VersionStatus
from visionloop.core.records.accounts import ReviewerSession, Role
from visionloop.core.records.detections import DetectionFilter, DetectionSource, NewDetection
from visionloop.core.records.events import EventType
from visionloop.core.records.inbox import InboxKind, ItemStatus
from visionloop.core.records.notifications import Attempt, ChannelKind, DeliveryStatus, NewChannel
from visionloop.errors import AlreadyExists
from visionloop.storage.accounts import SqlAccountStore
from visionloop.storage.sql import SqlRepository

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def test_versions_keep_json_times_and_flags(repo: SqlRepository) -> None:
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    v = repo.create_version(p.id, "v1", "efficientnet", "fast", "snap", NOW)
    assert (v.status, v.thresholds, v.auto_start, v.started_at) == (
        VersionStatus.TRAINING_IN_PROGRESS,
        {},
        False,
        None,
    )
    with pytest.raises(AlreadyExists):
        repo.create_version(p.id, "v1", "efficientnet", "fast", "snap", NOW)
    evaluation = {"f1": 0.5, "labels": {"cat": [1, 2]}, "note": "ünïcode"}
    v = repo.update_version(
        v.id, thresholds={"cat": 0.25}, evaluation=evaluation, started_at=LATER, auto_start=True, f1=0.5
    )
    assert (v.thresholds, v.evaluation, v.started_at, v.auto_start, v.f1) == (
        {"cat": 0.25},
        evaluation,
        LATER,
        True,
        0.5,
    )
    assert v.started_at is not None and v.started_at.tzinfo is not None
    done = repo.transition_version(
        v.id, [VersionStatus.TRAINING_IN_PROGRESS], status=VersionStatus.TRAINING_FAILED
    )
    assert done is not None and done.status is VersionStatus.TRAINING_FAILED
    assert repo.transition_version(v.id, [VersionStatus.TRAINING_IN_PROGRESS], status="x") is None


def test_jobs_are_claimed_oldest_first_once(repo: SqlRepository) -> None:
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    first = repo.create_job("train", p.id, None, NOW, params={"epochs": 3})
    second = repo.create_job("train", p.id, None, NOW)
    claimed = repo.claim_job(LATER, worker="host:1")
    assert claimed is not None and (claimed.id, claimed.status, claimed.worker) == (
        first.id,
        JobStatus.RUNNING,
        "host:1",
    )
    assert claimed.started_at == LATER and claimed.params == {"epochs": 3}
    assert repo.claim_job(LATER, job_id=first.id) is None  # already running
    again = repo.claim_job(LATER)
    assert again is not None and again.id == second.id
    assert repo.claim_job(LATER) is None
    done = repo.update_job(first.id, status=JobStatus.SUCCEEDED, result={"ok": True}, finished_at=LATER)
    assert (done.result, done.finished_at) == ({"ok": True}, LATER)
    assert [j.id for j in repo.list_jobs(p.id, JobStatus.RUNNING)] == [second.id]


def test_events_become_deliveries_that_are_claimed_and_attempted(repo: SqlRepository) -> None:
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    hook = NewChannel(p.id, "hook", ChannelKind.WEBHOOK, "http://x", (), "s", (EventType.DETECTION,), True)
    channel = repo.create_channel(hook, NOW)
    assert (channel.enabled, channel.events, channel.secret) == (True, (EventType.DETECTION,), "s")
    off = NewChannel(p.id, "off", ChannelKind.EMAIL, None, ("a@b.c",), None, (EventType.DETECTION,), False)
    assert repo.create_channel(off, NOW).enabled is False
    with pytest.raises(AlreadyExists):
        repo.create_channel(hook, NOW)

    event = repo.add_event(p.id, EventType.DETECTION, {"labels": ["cat"], "n": 1}, NOW)
    assert (event.payload, event.created_at) == ({"labels": ["cat"], "n": 1}, NOW)
    repo.add_event(p.id, EventType.IMAGES_ADDED, {}, NOW)  # no channel wants it
    (delivery,) = repo.list_deliveries(p.id)
    assert (delivery.channel, delivery.status, delivery.event.id) == (
        "hook",
        DeliveryStatus.PENDING,
        event.id,
    )
    assert repo.next_delivery_due() == NOW

    (claimed,) = repo.claim_deliveries(NOW, until=LATER, limit=10)
    assert claimed[0].id == delivery.id and claimed[1].id == channel.id
    assert repo.claim_deliveries(NOW, until=LATER, limit=10) == []  # leased until LATER
    attempt = Attempt(delivery.id, 1, NOW, 12.5, ok=True, status_code=200)
    done = repo.record_attempt(attempt, DeliveryStatus.DELIVERED, LATER, LATER)
    assert (done.status, done.attempts, done.finished_at) == (DeliveryStatus.DELIVERED, 1, LATER)
    assert repo.list_attempts(delivery.id) == [attempt]
    assert repo.next_delivery_due() is None

    assert repo.update_channel(channel.id, LATER, enabled=False).enabled is False
    repo.add_event(p.id, EventType.DETECTION, {}, LATER)
    assert len(repo.list_deliveries(p.id)) == 1  # a disabled channel gets none


def test_parameters_keep_their_history_and_workflow_state_is_upserted(repo: SqlRepository) -> None:
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    changes = repo.update_parameter_values(p.id, {"a": 1, "b": [1, 2]}, {"a": 0}, "me", NOW)
    assert [(c.key, c.old, c.new) for c in changes] == [("a", 0, 1), ("b", None, [1, 2])]
    assert repo.update_parameter_values(p.id, {"a": 1}, {}, "me", LATER) == []  # unchanged
    repo.update_parameter_values(p.id, {"a": 2.5}, {}, "you", LATER)
    assert repo.get_parameter_values(p.id) == {"a": 2.5, "b": [1, 2]}
    history = repo.list_parameter_history(p.id, key="a")
    assert [(c.new, c.changed_by, c.changed_at) for c in history] == [(2.5, "you", LATER), (1, "me", NOW)]

    assert repo.update_workflow_state(p.id, lambda s: {"x": {"n": 1}, "y": True}, NOW) == {
        "x": {"n": 1},
        "y": True,
    }
    state = repo.update_workflow_state(p.id, lambda s: {"x": {"n": s["x"]["n"] + 1}, "y": None}, LATER)
    assert state == {"x": {"n": 2}} == repo.get_workflow_state(p.id)


def test_accounts_and_sessions(repo: SqlRepository) -> None:
    accounts = SqlAccountStore(repo.engine)
    assert not accounts.has_accounts()
    ada = accounts.add_reviewer("ada", "hash", NOW, Role.OPERATOR)
    with pytest.raises(AlreadyExists):
        accounts.add_reviewer("ada", "hash", NOW)
    assert (ada.role, ada.created_at, accounts.has_accounts()) == (Role.OPERATOR, NOW, True)
    session = ReviewerSession(
        "k" * 64, ada.id, "ada", "csrf", NOW, NOW, NOW + timedelta(hours=1), Role.OPERATOR
    )
    accounts.add_session(session)
    assert accounts.get_session(session.key) == session
    accounts.touch_session(session.key, LATER)
    got = accounts.get_session(session.key)
    assert got is not None and got.last_seen_at == LATER
    assert accounts.delete_expired_sessions(NOW + timedelta(hours=2), idle_since=NOW) == 1
    assert accounts.get_session(session.key) is None


def test_detections_are_filtered_and_pruned(repo: SqlRepository) -> None:
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)

    def detection(i: int, label: str, confidence: float) -> NewDetection:
        return NewDetection(
            p.id,
            "v1",
            f"ref{i}",
            f"{i:064x}",
            DetectionSource.API,
            None,
            NOW + timedelta(minutes=i),
            (Prediction(label, confidence),),
            ((label, confidence / 100),),
        )

    stored = repo.add_detections([detection(i, "cat" if i % 2 else "dog", 10.0 * i) for i in range(1, 7)])
    assert [d.detected_at for d in stored] == [NOW + timedelta(minutes=i) for i in range(1, 7)]
    cats = repo.list_detections(p.id, DetectionFilter(label="cat", min_confidence=30))
    assert [d.ref for d in cats] == ["ref5", "ref3"]
    assert repo.find_detection("ref2") == repo.get_detection(stored[1].id)
    assert repo.prune_detections(before=NOW + timedelta(minutes=3)) == 2
    assert repo.prune_detections(keep_per_project=2) == 2
    assert [d.ref for d in repo.list_detections(p.id, DetectionFilter())] == ["ref6", "ref5"]


def test_an_inbox_item_is_claimed_once_until_its_claim_is_stale(repo: SqlRepository) -> None:
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    stale_before = NOW - timedelta(hours=1)
    item = repo.claim_inbox_item(p.id, InboxKind.DETECT, "in/a.jpg", "a" * 64, NOW, stale_before)
    assert item is not None and (item.status, item.claimed_at) == (ItemStatus.CLAIMED, NOW)
    assert repo.claim_inbox_item(p.id, InboxKind.DETECT, "in/a.jpg", "a" * 64, NOW, stale_before) is None
    retaken = repo.claim_inbox_item(p.id, InboxKind.DETECT, "in/a.jpg", "a" * 64, LATER, LATER)
    assert retaken is not None and (retaken.id, retaken.claimed_at) == (item.id, LATER)
    other = repo.claim_inbox_item(p.id, InboxKind.DETECT, "in/a.jpg", "b" * 64, LATER, stale_before)
    assert other is not None and other.id != item.id  # another object under that name
    done = repo.update_inbox_item(other.id, status=ItemStatus.DONE, result={"key": "out/a.json"})
    assert (done.status, done.result) == (ItemStatus.DONE, {"key": "out/a.json"})
    assert [i.id for i in repo.list_inbox_items(p.id)] == [other.id, item.id]
