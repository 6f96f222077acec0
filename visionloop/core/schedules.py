"""Schedules of the periodic checks, persisted, on the injectable clock (``svc.clock``).

Check kinds (CHECKS; register_check adds one): each has a parameter that turns it on, a parameter that
gives its period in minutes, the parameters whose change runs it at once, and the function it calls,
``fire(svc, project_name, trigger) -> str`` (a line saying what happened, kept as ``last_result``):

    training   auto_training_enabled, every training_poll_minutes → queue a training check run
               (core.retraining.scheduled_check)
    sampling   human_sampling_enabled, every human_sampling_minutes → the sampling check,
               (core.sampling.run_sampling_check)

Records
    Schedule   one per project and check kind: ``enabled``, ``interval_minutes``, the watched
               parameters' values it was armed with (``params``), ``next_run_at``, ``last_run_at``,
               ``last_result``.

run_schedules(svc, now) is one pass (the workflow runner calls it every few seconds and whenever a
parameter_changed event is published in the server): for every project and check kind it compares the
parameters with the schedule's ``params``. A schedule seen for the first time is armed and, when
enabled, due at once. A changed watched parameter re-arms it (next run one period from now, so a new
frequency takes effect at once) and, when enabled, fires it at once. An enabled schedule whose
``next_run_at`` has passed fires and is re-armed one period after ``now``: runs a stopped server missed
are not caught up one by one, the check runs once. Because the comparison is against stored values, a
change made by another process (the CLI) is seen too, and a server restart re-fires nothing. Re-arming
is a compare-and-set (repo.rearm_schedule), so when several servers share one database a due check
fires on one of them only.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from visionloop.core import parameters
from visionloop.core.entities import Project
from visionloop.core.projects import get_project
from visionloop.core.records.parameters import SPECS, Parameters
from visionloop.core.records.runs import Trigger
from visionloop.core.records.schedules import (
    Fired,
    Schedule,
)
from visionloop.core.retraining import scheduled_check
from visionloop.core.sampling import run_sampling_check
from visionloop.core.services import Services
from visionloop.errors import InvalidInput

log = logging.getLogger("visionloop.schedules")

MAX_RESULT_CHARS = 500
FireFn = Callable[[Services, str, str], object]


@dataclass(frozen=True)
class CheckKind:
    name: str
    enabled_by: str  # parameter (bool) that turns the check on
    every: str  # parameter: minutes between two checks
    watched: tuple[str, ...]  # parameters whose change fires the check at once
    fire: FireFn
    description: str = ""


CHECKS: dict[str, CheckKind] = {}


def register_check(kind: CheckKind) -> CheckKind:
    """Add (or replace) a check kind; its parameters must exist in core.parameters."""
    for key in (kind.enabled_by, kind.every, *kind.watched):
        if key not in SPECS:
            raise ValueError(f"check {kind.name!r}: unknown parameter {key!r}")
    CHECKS[kind.name] = kind
    return kind


def by_name(target: str) -> FireFn:
    """A fire function for ``module:function`` called as ``function(svc, project)``, imported when it
    runs, so a check can be scheduled before its module exists (the built-in checks import theirs)."""
    module_name, _, attr = target.partition(":")

    def fire(svc: Services, project: str, trigger: str) -> object:
        try:
            fn = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            return f"not available: {target} does not exist"
        return fn(svc, project)

    return fire


def _training(svc: Services, project: str, trigger: str) -> object:
    return scheduled_check(svc, project, trigger)


def _sampling(svc: Services, project: str, trigger: str) -> object:
    return run_sampling_check(svc, project)


register_check(
    CheckKind(
        "training",
        "auto_training_enabled",
        "training_poll_minutes",
        (
            "auto_training_enabled",
            "training_poll_minutes",
            "min_untrained_images",
            "min_f1",
            "max_f1_drop",
            "min_inference_units",
        ),
        _training,
        "queue a training check run",
    )
)
register_check(
    CheckKind(
        "sampling",
        "human_sampling_enabled",
        "human_sampling_minutes",
        ("human_sampling_enabled", "human_sampling_minutes", "human_sampling_interval"),
        _sampling,
        "send every n-th detection since the last sample to an audit loop",
    )
)


def _watched(kind: CheckKind, params: Parameters) -> dict[str, Any]:
    return {key: getattr(params, key) for key in dict.fromkeys((kind.enabled_by, kind.every, *kind.watched))}


def run_schedules(
    svc: Services, now: datetime | None = None, projects: list[Project] | None = None
) -> list[Fired]:
    """One pass over every project's schedules (see the module docstring); returns what it fired."""
    now = now or svc.clock.now()
    fired = []
    for project in projects if projects is not None else svc.repo.list_projects():
        try:
            fired.extend(_project_pass(svc, project, now))
        except Exception:  # one project's trouble (e.g. deleted meanwhile) must not stop the others
            log.exception("the schedules of project %s could not be checked", project.name)
    return fired


def _project_pass(svc: Services, project: Project, now: datetime) -> list[Fired]:
    params = parameters.get_parameters(svc, project)
    stored = {s.kind: s for s in svc.repo.list_schedules(project.id)}
    fired = []
    for kind in list(CHECKS.values()):
        watched = _watched(kind, params)
        enabled = bool(watched[kind.enabled_by])
        minutes = float(watched[kind.every])
        period = timedelta(minutes=minutes)
        row = stored.get(kind.name)
        if row is None:  # as stored if another server on this database created it meanwhile
            values = {"enabled": enabled, "interval_minutes": minutes, "params": watched}
            row = svc.repo.create_schedule(
                project.id, kind.name, now, next_run_at=now if enabled else None, **values
            )
        if row.params != watched:
            changed = tuple(k for k in watched if row.params.get(k) != watched[k])
            rearmed = svc.repo.rearm_schedule(
                row,
                enabled=enabled,
                interval_minutes=minutes,
                params=watched,
                next_run_at=now + period if enabled else None,
                updated_at=now,
            )
            if rearmed is None:  # another server on this database saw the change first and fires it
                continue
            log.info("%s: %s check re-armed (%s changed)", project.name, kind.name, ", ".join(changed))
            if enabled:
                fired.append(_fire(svc, project, kind, row.id, Trigger.PARAMETER_CHANGE, now, changed))
        elif enabled and (row.next_run_at is None or row.next_run_at <= now):
            if svc.repo.rearm_schedule(row, next_run_at=now + period, updated_at=now) is None:
                continue  # another server on this database fired it
            fired.append(_fire(svc, project, kind, row.id, Trigger.SCHEDULE, now))
    return fired


def _fire(
    svc: Services,
    project: Project,
    kind: CheckKind,
    schedule_id: int,
    trigger: Trigger,
    now: datetime,
    changed: tuple[str, ...] = (),
) -> Fired:
    try:
        result = kind.fire(svc, project.name, trigger.value)
        text = result if isinstance(result, str) else _summary(result)
    except Exception as e:
        log.exception("%s check of project %s failed", kind.name, project.name)
        text = f"failed: {type(e).__name__}: {e}"
    text = text[:MAX_RESULT_CHARS]
    svc.repo.update_schedule(schedule_id, last_run_at=now, last_result=text)
    return Fired(project.name, kind.name, trigger.value, text, changed)


def _summary(result: object) -> str:
    if result is None:
        return "done"
    to_dict = getattr(result, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
    if isinstance(result, Mapping):
        return ", ".join(f"{k}={v}" for k, v in result.items())
    return str(result)


def list_schedules(svc: Services, project_name: str) -> list[Schedule]:
    """The project's schedules as armed (run_schedules creates them on its first pass)."""
    return svc.repo.list_schedules(get_project(svc, project_name).id)


def check_kind(name: str) -> CheckKind:
    try:
        return CHECKS[name]
    except KeyError:
        raise InvalidInput(f"unknown check {name!r}; known: {', '.join(sorted(CHECKS))}") from None


__all__ = [
    "by_name",
    "CHECKS",
    "CheckKind",
    "Fired",
    "Schedule",
    "check_kind",
    "list_schedules",
    "register_check",
    "run_schedules",
]
