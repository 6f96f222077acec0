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
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from visionloop.core.entities import Project
from visionloop.core.records.events import (
    Event,
    EventType,
    event_type,
)
from visionloop.core.records.parameters import parameters_from
from visionloop.core.services import Services
from visionloop.errors import InvalidInput

log = logging.getLogger("visionloop.events")

MAX_PAYLOAD_CHARS = 65_536  # an event is a notice, not a document: refer to big things by name
MAX_LIST = 1000  # events listed at once


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
    return parameters_from(svc.repo.get_parameter_values(project.id)).detection_events_enabled


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


__all__ = ["Event", "EventType", "event_type", "list_events", "publish"]
