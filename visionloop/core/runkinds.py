"""Run kinds: what a workflow run is made of (steps returning Wait or Next) and the registry of kinds.

The modules that define a kind (core.deployments: ROLLBACK, core.retraining: TRAINING_CHECK) import this
one; the composition root (visionloop.bootstrap.register_run_kinds) registers them, and core.runs executes
runs of every registered kind."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from visionloop.core.projects import get_project
from visionloop.core.records.runs import Run, Trigger
from visionloop.core.services import Services
from visionloop.core.serving import Serving
from visionloop.errors import InvalidInput, VisionloopError

DEFAULT_STEP_TIMEOUT = timedelta(hours=2)


@dataclass
class RunContext:
    """What steps work with: the services, the server's serving host, and how long a step may wait."""

    svc: Services
    serving: Serving
    step_timeout: timedelta = DEFAULT_STEP_TIMEOUT


@dataclass(frozen=True)
class Wait:
    """The step is not done: save ``state`` (its progress) and call it again on the next pass."""

    state: Mapping[str, Any]


@dataclass(frozen=True)
class Next:
    """The step is done: merge ``output`` into the run's state and go to step ``next`` (None: the run
    ends SUCCEEDED with ``outcome`` and ``reason``)."""

    output: Mapping[str, Any]
    next: str | None = None
    outcome: str | None = None
    reason: str | None = None


StepResult = Wait | Next
StepFn = Callable[[RunContext, Run, dict[str, Any]], StepResult]


class RunFailed(VisionloopError):
    """Raised by a step to fail its run with ``outcome`` (default "failed") and this message."""

    def __init__(self, message: str, outcome: str = "failed", **details: Any) -> None:
        super().__init__(message, **details)
        self.outcome = outcome


@dataclass(frozen=True)
class RunKind:
    name: str
    first: str
    steps: Mapping[str, StepFn]
    description: str = ""


KINDS: dict[str, RunKind] = {}


def register_kind(kind: RunKind) -> RunKind:
    if kind.first not in kind.steps:
        raise ValueError(f"run kind {kind.name!r}: first step {kind.first!r} is not one of its steps")
    KINDS[kind.name] = kind
    return kind


def run_kind(name: str) -> RunKind:
    """The registered kind ``name`` (bootstrap.register_run_kinds registers the product's kinds)."""
    try:
        return KINDS[name]
    except KeyError:
        raise InvalidInput(f"unknown run kind {name!r}; known: {', '.join(sorted(KINDS))}") from None


def queue_run(
    svc: Services,
    project_name: str,
    kind: str,
    trigger: Trigger | str,
    inputs: Mapping[str, Any] | None = None,
) -> Run:
    """A new QUEUED run; the server's workflow runner executes it."""
    run_kind(kind)
    project = get_project(svc, project_name)
    return svc.repo.create_run(project.id, kind, str(trigger), dict(inputs or {}), svc.clock.now())


def active_run(svc: Services, project_id: int, kind: str | None = None) -> Run | None:
    """The project's oldest QUEUED or RUNNING run (of ``kind``), if any."""
    for run in svc.repo.active_runs(project_id):
        if kind is None or run.kind == kind:
            return run
    return None


__all__ = [
    "KINDS",
    "Next",
    "RunContext",
    "RunFailed",
    "RunKind",
    "StepFn",
    "StepResult",
    "Wait",
    "active_run",
    "queue_run",
    "register_kind",
    "run_kind",
]
