"""core.events: publish stores and hands to subscribers; queries; detection events only when enabled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.factories import make_project
from visionloop.core import events, parameters
from visionloop.core.events import Event, EventType
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, NotFound

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "workflow.md"


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def svc(services: Services) -> Services:
    services.clock = Clock()
    make_project(services, "logos")
    return services


def test_publish_stores_and_delivers(svc: Services) -> None:
    seen: list[Event] = []
    unsubscribe = svc.bus.subscribe(seen.append)
    event = events.publish(svc, "logos", EventType.TRAINING_STARTED, {"version": "v1", "run_id": 3})
    assert event is not None and seen == [event]
    assert event.project == "logos" and event.type is EventType.TRAINING_STARTED
    assert event.payload == {"version": "v1", "run_id": 3} and event.created_at == T0
    assert events.list_events(svc, "logos") == [event]
    assert event.to_dict() == {
        "id": event.id,
        "project": "logos",
        "type": "training_started",
        "payload": {"version": "v1", "run_id": 3},
        "created_at": "2026-03-01T09:00:00+00:00",
    }
    unsubscribe()
    events.publish(svc, "logos", "training_completed", {"version": "v1", "f1": 0.9})
    assert len(seen) == 1
    assert len(events.list_events(svc, "logos")) == 2


def test_subscribers_filter_by_type_and_a_failing_one_is_contained(
    svc: Services, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[str] = []

    def broken(_: Event) -> None:
        raise RuntimeError("subscriber bug")

    svc.bus.subscribe(broken)
    svc.bus.subscribe(lambda e: got.append(e.type.value), ["version_deployed"])
    events.publish(svc, "logos", EventType.TRAINING_FAILED, {"error": "x"})
    events.publish(svc, "logos", EventType.VERSION_DEPLOYED, {"version": "v2"})
    assert got == ["version_deployed"]
    assert "subscriber bug" in caplog.text
    assert len(events.list_events(svc, "logos")) == 2


def test_queries_by_type_time_and_id(svc: Services) -> None:
    ids = []
    for i, kind in enumerate(["training_started", "training_completed", "version_deployed"]):
        svc.clock.at = T0 + timedelta(minutes=i)  # type: ignore[attr-defined]
        e = events.publish(svc, "logos", kind, {"i": i})
        assert e is not None
        ids.append(e.id)
    assert [e.id for e in events.list_events(svc, "logos", type="training_completed")] == [ids[1]]
    assert [e.id for e in events.list_events(svc, "logos", since=T0 + timedelta(minutes=1))] == ids[1:]
    assert [e.id for e in events.list_events(svc, "logos", after_id=ids[0], limit=1)] == [ids[1]]
    make_project(svc, "other")
    assert events.list_events(svc, "other") == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "trained"}, "unknown event type 'trained': use one of parameter_changed, "),
        ({"limit": 0}, "limit must be an integer between 1 and 1000"),
        ({"limit": 1001}, "limit must be"),
        ({"after_id": -1}, "after_id must be a non-negative integer"),
    ],
)
def test_bad_queries(svc: Services, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        events.list_events(svc, "logos", **kwargs)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (["a"], "must be a JSON object"),
        ({1: "a"}, "must be a JSON object"),
        ({"when": datetime.now()}, "datetime is not JSON"),
        ({"f1": float("nan")}, "must be JSON"),
        ({"big": "x" * 70_000}, "at most 65536 characters"),
    ],
)
def test_bad_payloads_are_refused(svc: Services, payload: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        events.publish(svc, "logos", EventType.TRAINING_FAILED, payload)
    assert events.list_events(svc, "logos") == []


def test_unknown_type_or_project(svc: Services) -> None:
    with pytest.raises(InvalidInput, match="unknown event type"):
        events.publish(svc, "logos", "trained", {})
    with pytest.raises(NotFound):
        events.publish(svc, "nope", EventType.TRAINING_FAILED, {})
    with pytest.raises(NotFound):
        events.list_events(svc, "nope")


def test_detection_events_only_when_the_project_wants_them(svc: Services) -> None:
    assert events.publish(svc, "logos", EventType.DETECTION, {"version": "v1"}) is None
    assert events.list_events(svc, "logos") == []
    parameters.update_parameters(svc, "logos", {"detection_events_enabled": True}, changed_by="t")
    stored = events.publish(svc, "logos", EventType.DETECTION, {"version": "v1"})
    assert stored is not None
    assert events.list_events(svc, "logos", type="detection") == [stored]


def test_every_event_type_is_documented() -> None:
    text = DOCS.read_text().split("## Events", 1)[1]
    for kind in EventType:
        assert f"`{kind.value}`" in text, kind
    module_doc = events.__doc__ or ""
    for kind in EventType:
        assert kind.value in module_doc, kind
