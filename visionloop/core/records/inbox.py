"""Inbox records: the ledger of objects the watched inboxes took (ports.py, storage, inbox.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class InboxKind(StrEnum):
    DETECT = "detect"  # images_for_detection
    LABEL = "label"  # images_labeled_by_folder


class ItemStatus(StrEnum):
    CLAIMED = "claimed"  # a scanner is working on it
    DONE = "done"  # detected (result written) or added to TRAIN (or already there)
    FAILED = "failed"  # could not be used (moved to errors/), or left for the next scan


@dataclass(frozen=True)
class InboxItem:
    """One object an inbox took (the ledger)."""

    id: int
    project_id: int
    kind: InboxKind
    key: str
    content_hash: str
    status: ItemStatus
    claimed_at: datetime
    finished_at: datetime | None = None
    result: Mapping[str, Any] = field(default_factory=dict)
    message: str | None = None
    moved_to: str | None = None
    open: bool = True  # not moved away yet

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "key": self.key,
            "content_hash": self.content_hash,
            "status": self.status.value,
            "claimed_at": self.claimed_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "result": dict(self.result),
            "message": self.message,
            "moved_to": self.moved_to,
        }
