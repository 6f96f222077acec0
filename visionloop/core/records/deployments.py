"""Deployment records: one switch of a project's serving version (ports.py, storage, deployments.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from visionloop.core.entities import Prediction


@dataclass(frozen=True)
class Deployment:
    id: int
    project_id: int
    version_id: int | None  # None once the version was deleted
    version: str
    previous: str | None
    run_id: int | None
    reason: str
    deployed_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "previous": self.previous,
            "run_id": self.run_id,
            "reason": self.reason,
            "deployed_at": self.deployed_at.isoformat(),
            "deleted": self.version_id is None,
        }


@dataclass(frozen=True)
class ProjectDetection:
    """What a detection addressed to a project answers: the version that served it and its labels."""

    version: str
    labels: list[Prediction]
