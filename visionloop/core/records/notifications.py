"""Notification records: channels, deliveries and their attempts (ports.py, storage, notifications.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from visionloop.core.records.events import Event, EventType


class ChannelKind(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Channel:
    id: int
    project_id: int
    project: str
    name: str
    kind: ChannelKind
    url: str | None  # WEBHOOK
    addresses: tuple[str, ...]  # EMAIL
    secret: str | None = field(repr=False)  # WEBHOOK: the HMAC key
    events: tuple[EventType, ...]
    enabled: bool
    created_at: datetime
    updated_at: datetime

    def to_dict(self, *, with_secret: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "project": self.project,
            "kind": self.kind.value,
            "url": self.url,
            "addresses": list(self.addresses),
            "events": [t.value for t in self.events],
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }
        if with_secret and self.secret is not None:
            out["secret"] = self.secret
        return out


@dataclass(frozen=True)
class NewChannel:
    project_id: int
    name: str
    kind: ChannelKind
    url: str | None
    addresses: tuple[str, ...]
    secret: str | None
    events: tuple[EventType, ...]
    enabled: bool


@dataclass(frozen=True)
class Delivery:
    id: int
    channel_id: int
    channel: str  # its name
    event: Event
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "event": self.event.to_dict(),
            "status": self.status.value,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat()
            if self.status is DeliveryStatus.PENDING
            else None,
            "last_error": self.last_error,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    number: int  # 1, 2, ...
    started_at: datetime
    duration_ms: float
    ok: bool
    status_code: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "started_at": self.started_at.isoformat(),
            "duration_ms": round(self.duration_ms, 3),
            "ok": self.ok,
            "status_code": self.status_code,
            "error": self.error,
        }
