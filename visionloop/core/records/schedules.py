"""Periodic check records: a stored schedule, what one pass fired (ports.py, storage, schedules.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Schedule:
    id: int
    project_id: int
    kind: str
    enabled: bool
    interval_minutes: float
    updated_at: datetime
    params: dict[str, Any] = field(default_factory=dict)
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_result: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "enabled": self.enabled,
            "interval_minutes": self.interval_minutes,
            "next_run_at": self.next_run_at.isoformat() if self.next_run_at and self.enabled else None,
            "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
            "last_result": self.last_result,
            "params": self.params,
        }


@dataclass(frozen=True)
class Fired:
    """One check a pass of run_schedules fired."""

    project: str
    kind: str
    trigger: str
    result: str
    changed: tuple[str, ...] = ()
