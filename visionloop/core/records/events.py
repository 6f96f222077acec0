"""Event records: the event types, a stored event, and the in-process bus (Services.bus)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from visionloop.errors import InvalidInput

log = logging.getLogger("visionloop.events")


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
