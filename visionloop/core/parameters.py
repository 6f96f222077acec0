"""A project's parameters: the knobs of continuous improvement's rules, editable at run time, every change
recorded; and the workflow's own bookkeeping (workflow state), which people do not edit.

Parameters (core.records.parameters.PARAMETERS lists each with its type, range, default and meaning;
docs/workflow.md shows the same table, and a test keeps the two equal)

    get_parameters(svc, project) -> Parameters      every key, the stored value or its default
    update_parameters(svc, project, changes, changed_by=...) -> ParameterUpdate
                                                    validates every change before storing any
                                                    (InvalidInput names each bad key); stores them,
                                                    a history row per changed key (who, when, old,
                                                    new) in one transaction; then publishes one
                                                    parameter_changed event per changed key
    parameter_history(svc, project, key=None, ...)  the recorded changes, newest first
    parse_value(key, text)                          a value typed on a command line ("true", "70")

Workflow state (the system's bookkeeping: images used by the last training, the last sampled detection,
...; a JSON value per key and project, written only by the workflow's own code)

    get_state(svc, project) -> dict                 every key
    set_state(svc, project, {key: value, ...})      writes the keys given (None deletes a key)
    update_state(svc, project, fn)                  read-modify-write in one write transaction: fn gets
                                                    the current state and returns the keys to write;
                                                    e.g. a counter that two threads bump without losing
                                                    a bump

Other modules read parameters with get_parameters (a small query; cache it only briefly) and learn of
changes from the parameter_changed event (core.events: svc.bus.subscribe).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from visionloop.core.entities import Project
from visionloop.core.events import publish
from visionloop.core.records.events import EventType
from visionloop.core.records.parameters import (
    SPECS,
    ParameterChange,
    Parameters,
    ParameterUpdate,
    check_value,
    parameters_from,
)
from visionloop.core.services import Services
from visionloop.errors import InvalidInput

MAX_HISTORY = 1000
MAX_STATE_CHARS = 1_048_576  # one state value as JSON
_STATE_KEY = re.compile(r"^[a-z0-9_.:\-]{1,128}$")
_WHO = re.compile(r"^[^\x00-\x1f]{1,128}$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


# --- validation ----------------------------------------------------------------------------------------


def check_changes(changes: object) -> dict[str, bool | int | float]:
    """Every change validated; one InvalidInput for all the bad keys (``details["errors"]``: key ->
    message), so nothing is stored when any is wrong."""
    if not isinstance(changes, Mapping):
        raise InvalidInput("parameters must be given as an object of key: value")
    if not changes:
        raise InvalidInput("no parameter given: name at least one key to change")
    checked: dict[str, bool | int | float] = {}
    errors: dict[str, str] = {}
    for key, value in changes.items():
        try:
            checked[key] = check_value(key, value)
        except InvalidInput as e:
            errors[str(key)[:80]] = e.message
    if errors:
        message = "; ".join(errors.values()) if len(errors) > 1 else next(iter(errors.values()))
        raise InvalidInput(message, errors=errors)
    return checked


def parse_value(key: str, text: str) -> bool | int | float:
    """A value typed on a command line, for parameter ``key`` (validated)."""
    spec = SPECS.get(key)
    if spec is None:
        return check_value(key, text)  # raises: unknown parameter
    word = text.strip().lower()
    value: object = text
    if spec.type is bool:
        value = True if word in _TRUE else False if word in _FALSE else text
    else:
        try:
            value = int(word) if spec.type is int and re.fullmatch(r"[+-]?\d+", word) else float(word)
        except ValueError:
            value = text
    return check_value(key, value)


def _check_who(changed_by: str) -> str:
    if not isinstance(changed_by, str) or not _WHO.match(changed_by):
        raise InvalidInput("changed_by must be 1-128 characters without control characters")
    return changed_by


# --- use cases -----------------------------------------------------------------------------------------


def _project(svc: Services, project: str | Project) -> Project:
    return project if isinstance(project, Project) else svc.repo.get_project(project)


def get_parameters(svc: Services, project: str | Project) -> Parameters:
    return parameters_from(svc.repo.get_parameter_values(_project(svc, project).id))


def update_parameters(
    svc: Services,
    project: str | Project,
    changes: Mapping[str, object],
    *,
    changed_by: str,
    now: datetime | None = None,
) -> ParameterUpdate:
    """Validate every change, then store them with their history in one transaction and publish a
    parameter_changed event per key whose value changed. ``changed_by``: who (an account, "cli", ...)."""
    checked = check_changes(changes)
    who = _check_who(changed_by)
    found = _project(svc, project)
    now = now or svc.clock.now()
    defaults = Parameters().to_dict()
    recorded = svc.repo.update_parameter_values(found.id, checked, defaults, who, now)
    for change in recorded:
        payload = {"key": change.key, "old": change.old, "new": change.new, "changed_by": who}
        publish(svc, found, EventType.PARAMETER_CHANGED, payload, now=now)
    return ParameterUpdate(get_parameters(svc, found), tuple(recorded))


def parameter_history(
    svc: Services, project: str | Project, *, key: str | None = None, offset: int = 0, limit: int = 100
) -> list[ParameterChange]:
    if key is not None and key not in SPECS:
        check_value(key, None)  # raises: unknown parameter
    _check_page(offset, limit, MAX_HISTORY)
    return svc.repo.list_parameter_history(_project(svc, project).id, key=key, offset=offset, limit=limit)


def _check_page(offset: int, limit: int, most: int) -> None:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput("offset must be a non-negative integer")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= most:
        raise InvalidInput(f"limit must be an integer between 1 and {most}")


# --- workflow state ------------------------------------------------------------------------------------

StateUpdate = Callable[[dict[str, Any]], Mapping[str, Any]]


def _check_state(values: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise InvalidInput("workflow state is written as a mapping of key: value")
    out: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not _STATE_KEY.match(key):
            raise InvalidInput(f"invalid workflow state key {str(key)[:80]!r}: 1-128 of a-z 0-9 _ . : -")
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise InvalidInput(f"workflow state {key!r} must be JSON: {e}") from None
        if len(text) > MAX_STATE_CHARS:
            raise InvalidInput(f"workflow state {key!r} is over {MAX_STATE_CHARS} characters as JSON")
        out[key] = json.loads(text)
    return out


def get_state(svc: Services, project: str | Project) -> dict[str, Any]:
    return svc.repo.get_workflow_state(_project(svc, project).id)


def set_state(
    svc: Services, project: str | Project, values: Mapping[str, Any], *, now: datetime | None = None
) -> None:
    """Write the keys given; a None value deletes its key."""
    checked = _check_state(values)
    svc.repo.update_workflow_state(_project(svc, project).id, lambda _: checked, now or svc.clock.now())


def update_state(
    svc: Services, project: str | Project, fn: StateUpdate, *, now: datetime | None = None
) -> dict[str, Any]:
    """Call ``fn(current state)`` inside one write transaction and write the keys it returns (None
    deletes a key); returns the state after. ``fn`` must be quick and do no I/O of its own."""

    def checked(current: dict[str, Any]) -> Mapping[str, Any]:
        return _check_state(fn(current))

    return svc.repo.update_workflow_state(_project(svc, project).id, checked, now or svc.clock.now())


__all__ = [
    "ParameterChange",
    "ParameterUpdate",
    "Parameters",
    "check_changes",
    "check_value",
    "get_parameters",
    "get_state",
    "parameter_history",
    "parse_value",
    "set_state",
    "update_parameters",
    "update_state",
]
