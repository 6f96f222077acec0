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
from datetime import datetime
from typing import Any

from sqlalchemy import (
    RowMapping,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from visionloop.core.records.events import Event, EventType
from visionloop.core.records.notifications import (
    Attempt,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryStatus,
    NewChannel,
)
from visionloop.errors import AlreadyExists, NotFound
from visionloop.storage import schema as t
from visionloop.storage.base import SqlStore, naive, utc
from visionloop.storage.schema import (
    events,
    notification_attempts,
    notification_channels,
    notification_deliveries,
)

PENDING = "pending"


class EventStore(SqlStore):
    """Mixin of SqlRepository: events, notification channels and deliveries."""

    # --- events --------------------------------------------------------------------------------------

    def add_event(
        self, project_id: int, type: EventType, payload: Mapping[str, object], now: datetime
    ) -> Event:
        ts = naive(now)
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
        return Event(event_id, project_id, str(name), type, dict(payload), utc(ts))

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
            q = q.where(events.c.created_at >= naive(since))
        if after_id is not None:
            q = q.where(events.c.id > after_id)
        with self._read() as conn:
            return [_event(r._mapping) for r in conn.execute(q).all()]

    # --- channels ------------------------------------------------------------------------------------

    def create_channel(self, new: NewChannel, now: datetime) -> Channel:
        ts = naive(now)
        values = {
            "project_id": new.project_id,
            "name": new.name,
            "kind": new.kind.value,
            "target": new.url if new.kind is ChannelKind.WEBHOOK else json.dumps(list(new.addresses)),
            "secret": new.secret,
            "event_types": json.dumps([e.value for e in new.events]),
            "enabled": new.enabled,
            "created_at": ts,
            "updated_at": ts,
        }
        try:
            with self._write() as conn:
                key = conn.execute(insert(notification_channels).values(**values)).inserted_primary_key
        except IntegrityError:
            raise AlreadyExists(
                f"the project already has a notification channel named {new.name!r}"
            ) from None
        assert key is not None
        return self._channels(notification_channels.c.id == int(key[0]))[0]

    def _channels(self, *where: Any) -> list[Channel]:
        c = notification_channels
        q = (
            select(c, t.projects.c.name.label("project"))
            .join(t.projects, t.projects.c.id == c.c.project_id)
            .where(*where)
            .order_by(c.c.name)
        )
        with self._read() as conn:
            return [_channel(r._mapping) for r in conn.execute(q).all()]

    def list_channels(self, project_id: int) -> list[Channel]:
        return self._channels(notification_channels.c.project_id == project_id)

    def find_channel(self, project_id: int, name: str) -> Channel | None:
        c = notification_channels
        found = self._channels(c.c.project_id == project_id, c.c.name == name)
        return found[0] if found else None

    def update_channel(self, channel_id: int, now: datetime, **changes: object) -> Channel:
        values: dict[str, object] = {"updated_at": naive(now)}
        if "enabled" in changes:
            values["enabled"] = bool(changes["enabled"])
        if "events" in changes:
            events_ = changes["events"]
            assert isinstance(events_, tuple)
            values["event_types"] = json.dumps([EventType(e).value for e in events_])
        with self._write() as conn:
            done = conn.execute(
                update(notification_channels).where(notification_channels.c.id == channel_id).values(**values)
            )
        if done.rowcount == 0:
            raise NotFound(f"notification channel {channel_id} does not exist")
        return self._channels(notification_channels.c.id == channel_id)[0]

    def delete_channel(self, channel_id: int) -> None:
        with self._write() as conn:
            conn.execute(delete(notification_channels).where(notification_channels.c.id == channel_id))

    # --- deliveries ----------------------------------------------------------------------------------

    def _deliveries(self, *where: Any, order: Any = None, limit: int | None = None) -> list[Delivery]:
        d, c, e = notification_deliveries, notification_channels, events
        q = (
            select(
                d,
                c.c.name.label("channel"),
                e.c.project_id,
                e.c.type,
                e.c.payload,
                e.c.created_at.label("event_created_at"),
                t.projects.c.name.label("project"),
            )
            .join(c, c.c.id == d.c.channel_id)
            .join(e, e.c.id == d.c.event_id)
            .join(t.projects, t.projects.c.id == e.c.project_id)
            .where(*where)
            .order_by(*(order if order is not None else [d.c.id.desc()]))
        )
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return [_delivery(r._mapping) for r in conn.execute(q).all()]

    def list_deliveries(
        self,
        project_id: int,
        *,
        channel_id: int | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        d = notification_deliveries
        where: list[Any] = [events.c.project_id == project_id]
        if channel_id is not None:
            where.append(d.c.channel_id == channel_id)
        if status is not None:
            where.append(d.c.status == status.value)
        return self._deliveries(*where, limit=limit)

    def get_delivery(self, delivery_id: int) -> Delivery:
        found = self._deliveries(notification_deliveries.c.id == delivery_id)
        if not found:
            raise NotFound(f"delivery {delivery_id} does not exist")
        return found[0]

    def list_attempts(self, delivery_id: int) -> list[Attempt]:
        a = notification_attempts
        with self._read() as conn:
            rows = conn.execute(select(a).where(a.c.delivery_id == delivery_id).order_by(a.c.number)).all()
        return [
            Attempt(
                delivery_id=r.delivery_id,
                number=r.number,
                started_at=utc(r.started_at),
                duration_ms=r.duration_ms,
                ok=r.ok,
                status_code=r.status_code,
                error=r.error,
            )
            for r in rows
        ]

    def claim_deliveries(self, now: datetime, until: datetime, limit: int) -> list[tuple[Delivery, Channel]]:
        """Pending deliveries to enabled channels due at ``now``, each leased until ``until`` (a
        conditional update: a delivery another worker claimed meanwhile is skipped)."""
        d, c = notification_deliveries, notification_channels
        due = self._deliveries(
            d.c.status == DeliveryStatus.PENDING.value,
            d.c.next_attempt_at <= naive(now),
            c.c.enabled,
            order=[d.c.next_attempt_at, d.c.id],
            limit=limit,
        )
        claimed: list[Delivery] = []
        with self._write() as conn:
            for delivery in due:
                done = conn.execute(
                    update(d)
                    .where(
                        d.c.id == delivery.id,
                        d.c.status == DeliveryStatus.PENDING.value,
                        d.c.next_attempt_at <= naive(now),
                    )
                    .values(next_attempt_at=naive(until))
                )
                if done.rowcount == 1:
                    claimed.append(delivery)
        channels = {ch.id: ch for ch in self._channels(c.c.id.in_({x.channel_id for x in claimed}))}
        return [(x, channels[x.channel_id]) for x in claimed if x.channel_id in channels]

    def record_attempt(
        self, attempt: Attempt, status: DeliveryStatus, next_attempt_at: datetime, now: datetime
    ) -> Delivery:
        d = notification_deliveries
        with self._write() as conn:
            conn.execute(
                insert(notification_attempts).values(
                    delivery_id=attempt.delivery_id,
                    number=attempt.number,
                    started_at=naive(attempt.started_at),
                    duration_ms=attempt.duration_ms,
                    ok=attempt.ok,
                    status_code=attempt.status_code,
                    error=attempt.error,
                )
            )
            conn.execute(
                update(d)
                .where(d.c.id == attempt.delivery_id)
                .values(
                    status=status.value,
                    attempts=attempt.number,
                    next_attempt_at=naive(next_attempt_at),
                    last_error=None if attempt.ok else attempt.error,
                    finished_at=None if status is DeliveryStatus.PENDING else naive(now),
                )
            )
        return self.get_delivery(attempt.delivery_id)

    def next_delivery_due(self) -> datetime | None:
        d, c = notification_deliveries, notification_channels
        q = (
            select(func.min(d.c.next_attempt_at))
            .join(c, c.c.id == d.c.channel_id)
            .where(d.c.status == DeliveryStatus.PENDING.value, c.c.enabled)
        )
        with self._read() as conn:
            found = conn.execute(q).scalar()
        return None if found is None else utc(found)


def _channel(row: RowMapping) -> Channel:
    kind = ChannelKind(row["kind"])
    webhook = kind is ChannelKind.WEBHOOK
    return Channel(
        id=row["id"],
        project_id=row["project_id"],
        project=row["project"],
        name=row["name"],
        kind=kind,
        url=row["target"] if webhook else None,
        addresses=() if webhook else tuple(json.loads(row["target"])),
        secret=row["secret"],
        events=tuple(EventType(e) for e in json.loads(row["event_types"]) if e in _EVENT_NAMES),
        enabled=bool(row["enabled"]),
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
    )


_EVENT_NAMES = {e.value for e in EventType}


def _delivery(row: RowMapping) -> Delivery:
    event = Event(
        id=row["event_id"],
        project_id=row["project_id"],
        project=row["project"],
        type=EventType(row["type"]),
        payload=json.loads(row["payload"]),
        created_at=utc(row["event_created_at"]),
    )
    return Delivery(
        id=row["id"],
        channel_id=row["channel_id"],
        channel=row["channel"],
        event=event,
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=utc(row["next_attempt_at"]),
        last_error=row["last_error"],
        created_at=utc(row["created_at"]),
        finished_at=None if row["finished_at"] is None else utc(row["finished_at"]),
    )


def _event(row: RowMapping) -> Event:
    return Event(
        id=row["id"],
        project_id=row["project_id"],
        project=row["project"],
        type=EventType(row["type"]),
        payload=json.loads(row["payload"]),
        created_at=utc(row["created_at"]),
    )
