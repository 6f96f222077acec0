"""Workflow run records: a run, its steps and their statuses (used by ports.py, storage and runs.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


class StepStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class Trigger(StrEnum):
    SCHEDULE = "schedule"  # the periodic check (core.schedules)
    PARAMETER_CHANGE = "parameter_change"  # a watched parameter changed
    MANUAL = "manual"  # the CLI
    API = "api"  # the REST API


@dataclass(frozen=True)
class Run:
    id: int
    project_id: int
    project: str
    kind: str
    status: RunStatus
    trigger: str
    created_at: datetime
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    current_step: str | None = None
    outcome: str | None = None
    reason: str | None = None
    error: str | None = None
    resumed: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "kind": self.kind,
            "status": self.status.value,
            "trigger": self.trigger,
            "current_step": self.current_step,
            "outcome": self.outcome,
            "reason": self.reason,
            "error": self.error,
            "resumed": self.resumed,
            "input": self.input,
            "output": self.output,
            "created_at": self.created_at.isoformat(),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "seconds": _seconds(self.started_at, self.ended_at),
        }


@dataclass(frozen=True)
class RunStep:
    id: int
    run_id: int
    seq: int
    name: str
    status: StepStatus
    started_at: datetime
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    ended_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "name": self.name,
            "status": self.status.value,
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "ended_at": _iso(self.ended_at),
            "seconds": _seconds(self.started_at, self.ended_at),
        }


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else round((end - start).total_seconds(), 3)
