"""The detection log and the inboxes' ledger in the SQL repository (core.ports.DetectionRepository:
core.detections, core.inbox). SqlRepository inherits it; the tables are created by the migration named
in storage/migrations/versions (detections)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    delete,
    insert,
    select,
    update,
)

from visionloop.core.entities import Box, Prediction
from visionloop.core.records.detections import DetectionFilter, DetectionRecord, DetectionSource, NewDetection
from visionloop.core.records.inbox import InboxItem, InboxKind, ItemStatus
from visionloop.errors import NotFound
from visionloop.storage import schema as t
from visionloop.storage.base import SqlStore, insert_or_skip, naive, utc
from visionloop.storage.schema import detection_labels, detections, inbox_items

_ITEM_FIELDS = {"status", "finished_at", "result", "message", "moved_to", "open_key"}


class DetectionStore(SqlStore):
    """Mixin of SqlRepository: the detection log and the inboxes' ledger."""

    # --- the detection log ---------------------------------------------------------------------------

    def add_detections(self, rows: Sequence[NewDetection]) -> list[DetectionRecord]:
        """Insert the rows (one transaction); rows of a project deleted meanwhile are left out."""
        if not rows:
            return []
        with self._write() as conn:
            live = set(
                conn.execute(
                    select(t.projects.c.id).where(t.projects.c.id.in_({r.project_id for r in rows}))
                ).scalars()
            )
            kept = [r for r in rows if r.project_id in live]
            ids = [_insert(conn, detections, _detection_values(r)) for r in kept]
            labels = [
                {"detection_id": i, "label": p.label, "project_id": r.project_id, "confidence": p.confidence}
                for i, r in zip(ids, kept, strict=True)
                for p in {p.label: p for p in reversed(r.labels)}.values()  # a label's best box
            ]
            if labels:
                conn.execute(insert(detection_labels), labels)
            names = dict(
                conn.execute(
                    select(t.projects.c.id, t.projects.c.name).where(t.projects.c.id.in_(live))
                ).all()
            )
        return [_record_of(i, r, names[r.project_id]) for i, r in zip(ids, kept, strict=True)]

    def list_detections(
        self, project_id: int, where: DetectionFilter, *, before_id: int | None = None, limit: int = 100
    ) -> list[DetectionRecord]:
        d = detections.c
        q = select(detections, t.projects.c.name.label("project")).join(
            t.projects, t.projects.c.id == d.project_id
        )
        conds: list[Any] = [d.project_id == project_id]
        if where.label is not None:
            dl = detection_labels.c
            q = q.join(detection_labels, dl.detection_id == d.id)
            conds += [dl.project_id == project_id, dl.label == where.label]
            confidence: Any = dl.confidence
            key: Any = dl.detection_id
        else:
            confidence, key = d.top_confidence, d.id
        if where.min_confidence is not None:
            conds.append(confidence >= where.min_confidence)
        if where.max_confidence is not None:
            conds.append(confidence <= where.max_confidence)
        if before_id is not None:
            conds.append(key < before_id)
        if where.since is not None:
            conds.append(d.detected_at >= naive(where.since))
        if where.until is not None:
            conds.append(d.detected_at < naive(where.until))
        if where.source is not None:
            conds.append(d.source == where.source.value)
        if where.version is not None:
            conds.append(d.version == where.version)
        with self._read() as conn:
            rows = conn.execute(q.where(*conds).order_by(key.desc()).limit(limit)).all()
        return [_record(r._mapping) for r in rows]

    def get_detection(self, detection_id: int) -> DetectionRecord:
        d = detections.c
        q = (
            select(detections, t.projects.c.name.label("project"))
            .join(t.projects, t.projects.c.id == d.project_id)
            .where(d.id == detection_id)
        )
        with self._read() as conn:
            row = conn.execute(q).first()
        if row is None:
            raise NotFound(f"detection {detection_id} does not exist")
        return _record(row._mapping)

    def find_detection(self, ref: str) -> DetectionRecord | None:
        d = detections.c
        q = (
            select(detections, t.projects.c.name.label("project"))
            .join(t.projects, t.projects.c.id == d.project_id)
            .where(d.ref == ref)
            .order_by(d.id.desc())
            .limit(1)
        )
        with self._read() as conn:
            row = conn.execute(q).first()
        return None if row is None else _record(row._mapping)

    def detection_loops(self, project_id: int, ref: str) -> list[dict[str, object]]:
        """The human loops a detection started (their detection_ref is its ref), oldest first."""
        c = t.human_loops.c
        with self._read() as conn:
            rows = conn.execute(
                select(c.name, c.purpose, c.status, c.human_answer, c.agrees)
                .where(c.project_id == project_id, c.detection_ref == ref)
                .order_by(c.id)
            ).all()
        return [
            {
                "name": r.name,
                "purpose": r.purpose,
                "status": r.status,
                "human_answer": r.human_answer,
                "agrees": r.agrees,
            }
            for r in rows
        ]

    def prune_detections(self, *, before: datetime | None = None, keep_per_project: int | None = None) -> int:
        d = detections.c
        removed = 0
        with self._write() as conn:
            if before is not None:
                removed += conn.execute(delete(detections).where(d.detected_at < naive(before))).rowcount
            if keep_per_project is not None:
                for (pid,) in conn.execute(select(t.projects.c.id)).all():
                    cut = conn.execute(
                        select(d.id)
                        .where(d.project_id == pid)
                        .order_by(d.id.desc())
                        .offset(keep_per_project)
                        .limit(1)
                    ).scalar()
                    if cut is not None:
                        removed += conn.execute(
                            delete(detections).where(d.project_id == pid, d.id <= cut)
                        ).rowcount
        return int(removed)

    # --- the inboxes' ledger -------------------------------------------------------------------------

    def claim_inbox_item(
        self,
        project_id: int,
        kind: InboxKind,
        key: str,
        content_hash: str,
        now: datetime,
        stale_before: datetime,
    ) -> InboxItem | None:
        """Take the object for this caller: a new claim; the open item of an object that was already
        processed but not yet moved (status done/failed: the caller only moves it); a claim left by a
        caller that stopped before ``stale_before``. None while another caller's claim is fresh."""
        c = inbox_items.c
        with self._write() as conn:
            row = conn.execute(
                select(inbox_items).where(c.project_id == project_id, c.kind == kind.value, c.open_key == key)
            ).first()
            if row is not None and row.content_hash != content_hash:  # another object under that name now
                conn.execute(update(inbox_items).where(c.id == row.id).values(open_key=None))
                row = None
            if row is None:
                values = {
                    "project_id": project_id,
                    "kind": kind.value,
                    "key": key,
                    "content_hash": content_hash,
                    "status": ItemStatus.CLAIMED.value,
                    "claimed_at": naive(now),
                    "open_key": key,
                }
                # a claim another caller made meanwhile (PostgreSQL runs writers side by side) is skipped
                made = conn.execute(insert_or_skip(conn, inbox_items).values(**values).returning(c.id))
                item_id = made.scalar()
                return None if item_id is None else self._item(conn, int(item_id))
            if row.status == ItemStatus.CLAIMED.value:
                if utc(row.claimed_at) > stale_before:
                    return None
                conn.execute(update(inbox_items).where(c.id == row.id).values(claimed_at=naive(now)))
            return self._item(conn, int(row.id))

    def update_inbox_item(self, item_id: int, **changes: object) -> InboxItem:
        unknown = set(changes) - _ITEM_FIELDS
        if unknown:
            raise ValueError(f"not inbox item fields: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if isinstance(value, datetime):
                value = naive(value)
            elif isinstance(value, ItemStatus):
                value = value.value
            elif name == "result" and value is not None:
                value = json.dumps(value)
            values[name] = value
        with self._write() as conn:
            done = conn.execute(update(inbox_items).where(inbox_items.c.id == item_id).values(**values))
            if done.rowcount == 0:
                raise NotFound(f"inbox item {item_id} does not exist")
            return self._item(conn, item_id)

    def list_inbox_items(self, project_id: int, *, limit: int = 100) -> list[InboxItem]:
        c = inbox_items.c
        with self._read() as conn:
            rows = conn.execute(
                select(inbox_items).where(c.project_id == project_id).order_by(c.id.desc()).limit(limit)
            ).all()
        return [_item(r._mapping) for r in rows]

    @staticmethod
    def _item(conn: Connection, item_id: int) -> InboxItem:
        row = conn.execute(select(inbox_items).where(inbox_items.c.id == item_id)).one()
        return _item(row._mapping)


def _insert(conn: Connection, table: Table, values: Mapping[str, Any]) -> int:
    key = conn.execute(insert(table).values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def _detection_values(r: NewDetection) -> dict[str, Any]:
    top = r.top
    return {
        "project_id": r.project_id,
        "ref": r.ref,
        "version": r.version,
        "content_hash": r.content_hash,
        "source": r.source.value,
        "source_ref": r.source_ref,
        "detected_at": naive(r.detected_at),
        "labels": json.dumps([_label_row(p) for p in r.labels]),
        "top_label": None if top is None else top[0],
        "top_confidence": None if top is None else round(100 * top[1], 3),
        "probabilities": json.dumps([list(p) for p in r.probabilities]),
    }


def _label_row(p: Prediction) -> list[Any]:
    """A returned label as stored: [name, confidence], with [left, top, width, height] for a box."""
    if p.box is None:
        return [p.label, p.confidence]
    return [p.label, p.confidence, [p.box.left, p.box.top, p.box.width, p.box.height]]


def _prediction(row: list[Any]) -> Prediction:
    label, confidence = str(row[0]), float(row[1])
    box = Box(label, *(float(v) for v in row[2])) if len(row) > 2 else None
    return Prediction(label, confidence, box)


def _record_of(detection_id: int, r: NewDetection, project: str) -> DetectionRecord:
    top = r.top
    return DetectionRecord(
        id=detection_id,
        ref=r.ref,
        project_id=r.project_id,
        project=project,
        version=r.version,
        content_hash=r.content_hash,
        source=r.source,
        source_ref=r.source_ref,
        detected_at=utc(r.detected_at),
        labels=r.labels,
        top_label=None if top is None else top[0],
        top_confidence=None if top is None else round(100 * top[1], 3),
        probabilities=r.probabilities,
    )


def _record(m: Any) -> DetectionRecord:
    return DetectionRecord(
        id=int(m["id"]),
        ref=m["ref"],
        project_id=int(m["project_id"]),
        project=m["project"],
        version=m["version"],
        content_hash=m["content_hash"],
        source=DetectionSource(m["source"]),
        source_ref=m["source_ref"],
        detected_at=utc(m["detected_at"]),
        labels=tuple(_prediction(row) for row in json.loads(m["labels"])),
        top_label=m["top_label"],
        top_confidence=m["top_confidence"],
        probabilities=tuple((str(label), float(p)) for label, p in json.loads(m["probabilities"])),
    )


def _item(m: Any) -> InboxItem:
    return InboxItem(
        id=int(m["id"]),
        project_id=int(m["project_id"]),
        kind=InboxKind(m["kind"]),
        key=m["key"],
        content_hash=m["content_hash"],
        status=ItemStatus(m["status"]),
        claimed_at=utc(m["claimed_at"]),
        finished_at=utc(m["finished_at"]) if m["finished_at"] else None,
        result=json.loads(m["result"]) if m["result"] else {},
        message=m["message"],
        moved_to=m["moved_to"],
        open=m["open_key"] is not None,
    )
