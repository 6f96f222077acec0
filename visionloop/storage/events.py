"""The events half of continuous improvement in the SQL repository (core.events, core.notifications):
the events table, notification channels, and their deliveries with every attempt. SqlRepository
inherits it; migration 0006 creates the tables.

An event is stored with its pending deliveries (one per enabled channel of the project that wants its
type) in one transaction: a notification worker in any process finds them there, so an event published
by the CLI or a worker process is delivered too, and nothing is lost when the server stops before it
sent them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    RowMapping,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
)

from visionloop.core.events import Event, EventType
from visionloop.storage import schema as t

events = Table(
    "events",
    t.metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(32), nullable=False),
    Column("payload", Text, nullable=False),  # JSON object
    Column("created_at", DateTime, nullable=False),
    Index("ix_events_project_id", "project_id", "id"),
    Index("ix_events_project_type", "project_id", "type", "id"),
    Index("ix_events_project_created", "project_id", "created_at"),
)

notification_channels = Table(
    "notification_channels",
    t.metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # webhook | email
    Column("target", Text, nullable=False),  # the URL, or the JSON list of e-mail addresses
    Column("secret", Text, nullable=True),  # webhook: the HMAC-SHA256 key
    Column("event_types", Text, nullable=False),  # JSON list of event type names
    Column("enabled", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_notification_channels_project_name"),
)

notification_deliveries = Table(
    "notification_deliveries",
    t.metadata,
    Column("id", Integer, primary_key=True),
    Column("channel_id", Integer, ForeignKey("notification_channels.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Integer, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime, nullable=False),  # pending: due then (also a worker's lease)
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
    UniqueConstraint("channel_id", "event_id", name="uq_notification_deliveries_channel_event"),
    Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
)

notification_attempts = Table(
    "notification_attempts",
    t.metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "delivery_id",
        Integer,
        ForeignKey("notification_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("number", Integer, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status_code", Integer, nullable=True),  # webhook: the HTTP status, when one came back
    Column("error", Text, nullable=True),
    Index("ix_notification_attempts_delivery", "delivery_id", "number"),
)

PENDING = "pending"


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


class EventStore:
    """Mixin of SqlRepository: events, notification channels and deliveries."""

    def _write(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    # --- events --------------------------------------------------------------------------------------

    def add_event(
        self, project_id: int, type: EventType, payload: Mapping[str, object], now: datetime
    ) -> Event:
        ts = _naive(now)
        with self._write() as conn:
            key = conn.execute(
                insert(events).values(
                    project_id=project_id, type=type.value, payload=json.dumps(payload), created_at=ts
                )
            ).inserted_primary_key
            assert key is not None
            event_id = int(key[0])
            channels = conn.execute(
                select(notification_channels.c.id, notification_channels.c.event_types).where(
                    notification_channels.c.project_id == project_id, notification_channels.c.enabled
                )
            ).all()
            wanting = [cid for cid, types in channels if type.value in json.loads(types)]
            if wanting:
                conn.execute(
                    insert(notification_deliveries),
                    [
                        {
                            "channel_id": cid,
                            "event_id": event_id,
                            "status": PENDING,
                            "attempts": 0,
                            "next_attempt_at": ts,
                            "created_at": ts,
                        }
                        for cid in wanting
                    ],
                )
            name = conn.execute(select(t.projects.c.name).where(t.projects.c.id == project_id)).scalar_one()
        return Event(event_id, project_id, str(name), type, dict(payload), _utc(ts))

    def list_events(
        self,
        project_id: int,
        *,
        type: EventType | None = None,
        since: datetime | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[Event]:
        q = (
            select(events, t.projects.c.name.label("project"))
            .join(t.projects, t.projects.c.id == events.c.project_id)
            .where(events.c.project_id == project_id)
            .order_by(events.c.id)
            .limit(limit)
        )
        if type is not None:
            q = q.where(events.c.type == type.value)
        if since is not None:
            q = q.where(events.c.created_at >= _naive(since))
        if after_id is not None:
            q = q.where(events.c.id > after_id)
        with self._read() as conn:
            return [_event(r._mapping) for r in conn.execute(q).all()]


def _event(row: RowMapping) -> Event:
    return Event(
        id=row["id"],
        project_id=row["project_id"],
        project=row["project"],
        type=EventType(row["type"]),
        payload=json.loads(row["payload"]),
        created_at=_utc(row["created_at"]),
    )
