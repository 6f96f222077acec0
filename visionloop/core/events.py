"""The event bus of continuous improvement: what happened in a project, stored and handed to subscribers.

Publishing (every module that wants to tell the world something)::

    from visionloop.core import events
    from visionloop.core.events import EventType

    events.publish(svc, "logos", EventType.TRAINING_STARTED, {"run_id": 7, "version": "v3"})

``publish(svc, project, type, payload=None, *, now=None) -> Event | None``

- ``project``: the project's name (or a core.entities.Project); NotFound when it does not exist.
- ``type``: an EventType (or its string value); anything else is InvalidInput.
- ``payload``: a JSON object (a mapping with string keys and JSON values: str, int, float, bool,
  None, lists and mappings of them); InvalidInput otherwise. Keep it small and self-describing: ids and
  names the receiver can look up (``version``, ``run_id``, ``loop``), numbers it can act on (``f1``).
- The event is stored (table ``events``) in one transaction with one pending notification delivery
  per channel of the project that wants its type (core.notifications); the in-process subscribers
  (``svc.bus``) are then called on the publisher's thread. A failing subscriber is logged and never
  reaches the publisher; a failing store raises StorageError like any other write.
- ``EventType.DETECTION`` is optional and off by default: it is stored and delivered only while the
  project's ``detection_events_enabled`` parameter (core.parameters) is on; otherwise publish returns
  None and stores nothing. Every other type is always stored.

Event types and the payload members their publishers put in (others may be added; receivers must
ignore members they do not know):

    parameter_changed       key, old, new, changed_by (one event per changed key)
    training_started        version, run_id (when a run started it), trigger ("manual" | "schedule" | ...)
    training_completed      version, f1, run_id
    training_failed         version, error, run_id
    version_deployed        version, previous (the version it replaced, or None), f1, run_id
    version_rejected        version, reason, f1, run_id
    version_rolled_back     version (now serving), from_version (the one stopped), run_id
    detection               detection_id, version, labels [{name, confidence}], source, image (its
                            content hash), source_ref
    human_loop_created      loop, purpose, model_answer, version
    human_loop_completed    loop, purpose, human_answer, agrees, result
    images_added            dataset, count, labels {label: count}, source ("inbox": core.inbox)

Reading: list_events(svc, project, type=None, since=None, after_id=None, limit=100) is the stored
history, oldest first (``GET /api/v1/projects/{project}/events?type=&since=&after_id=&limit=``).

Subscribing (in-process only; other processes read the table): ``svc.bus.subscribe(fn, types=None)``
returns a function that unsubscribes. ``fn(event)`` runs on the publisher's thread, so it must be
quick (hand the work to a queue); the notification worker uses it only to wake up.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from visionloop.core.entities import Project
from visionloop.errors import InvalidInput

if TYPE_CHECKING:
    from visionloop.core.services import Services

log = logging.getLogger("visionloop.events")

MAX_PAYLOAD_CHARS = 65_536  # an event is a notice, not a document: refer to big things by name
MAX_LIST = 1000  # events listed at once


class EventType(StrEnum):
    PARAMETER_CHANGED = "parameter_changed"
    TRAINING_STARTED = "training_started"
    TRAINING_COMPLETED = "training_completed"
    TRAINING_FAILED = "training_failed"
    VERSION_DEPLOYED = "version_deployed"
    VERSION_REJECTED = "version_rejected"
    VERSION_ROLLED_BACK = "version_rolled_back"
    DETECTION = "detection"
    HUMAN_LOOP_CREATED = "human_loop_created"
    HUMAN_LOOP_COMPLETED = "human_loop_completed"
    IMAGES_ADDED = "images_added"


@dataclass(frozen=True)
class Event:
    id: int
    project_id: int
    project: str
    type: EventType
    payload: Mapping[str, Any]
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "type": self.type.value,
            "payload": dict(self.payload),
            "created_at": self.created_at.isoformat(),
        }


Subscriber = Callable[[Event], None]


@dataclass
class EventBus:
    """In-process subscribers of published events (Services.bus)."""

    _subscribers: list[tuple[Subscriber, frozenset[EventType] | None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(
        self, fn: Subscriber, types: Collection[EventType | str] | None = None
    ) -> Callable[[], None]:
        """Call ``fn(event)`` for each published event (of ``types``, default all); returns the
        function that unsubscribes it."""
        wanted = None if types is None else frozenset(event_type(t) for t in types)
        entry = (fn, wanted)
        with self._lock:
            self._subscribers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._subscribers:
                    self._subscribers.remove(entry)

        return unsubscribe

    def deliver(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for fn, wanted in subscribers:
            if wanted is not None and event.type not in wanted:
                continue
            try:
                fn(event)
            except Exception:  # a subscriber never breaks the publisher
                log.exception("event subscriber %r failed on %s event %d", fn, event.type.value, event.id)


def event_type(value: EventType | str) -> EventType:
    """The EventType named ``value``; InvalidInput lists the known ones."""
    try:
        return EventType(value)
    except ValueError:
        known = ", ".join(t.value for t in EventType)
        raise InvalidInput(f"unknown event type {str(value)[:80]!r}: use one of {known}") from None


def check_payload(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """The payload as a plain dict, checked to be a small JSON object."""
    if payload is None:
        return {}
    if not isinstance(payload, Mapping) or not all(isinstance(k, str) for k in payload):
        raise InvalidInput("an event payload must be a JSON object (a mapping with string keys)")
    try:
        text = json.dumps(payload, allow_nan=False, default=_refuse)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"an event payload must be JSON: {e}") from None
    if len(text) > MAX_PAYLOAD_CHARS:
        raise InvalidInput(f"an event payload is at most {MAX_PAYLOAD_CHARS} characters as JSON")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _refuse(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON ({value!r:.80})")


def publish(
    svc: Services,
    project: str | Project,
    type: EventType | str,
    payload: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> Event | None:
    """Store the event (with its pending notification deliveries) and hand it to the subscribers.
    None only for a DETECTION event of a project whose ``detection_events_enabled`` is off."""
    kind = event_type(type)
    body = check_payload(payload)
    found = project if isinstance(project, Project) else svc.repo.get_project(project)
    if kind is EventType.DETECTION and not _detection_events_on(svc, found):
        return None
    event = svc.repo.add_event(found.id, kind, body, now or svc.clock.now())
    svc.bus.deliver(event)
    return event


def _detection_events_on(svc: Services, project: Project) -> bool:
    from visionloop.core.parameters import get_parameters

    return get_parameters(svc, project).detection_events_enabled


def list_events(
    svc: Services,
    project: str,
    *,
    type: EventType | str | None = None,
    since: datetime | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[Event]:
    """The project's events, oldest first: of ``type``, created at or after ``since``, with an id
    greater than ``after_id`` (to page on: pass the last id seen), at most ``limit`` (1-1000)."""
    kind = None if type is None or type == "" else event_type(type)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit must be an integer between 1 and {MAX_LIST}")
    if after_id is not None and (isinstance(after_id, bool) or not isinstance(after_id, int) or after_id < 0):
        raise InvalidInput("after_id must be a non-negative integer")
    found = svc.repo.get_project(project)
    return svc.repo.list_events(found.id, type=kind, since=since, after_id=after_id, limit=limit)


__all__ = ["Event", "EventBus", "EventType", "Subscriber", "event_type", "list_events", "publish"]
