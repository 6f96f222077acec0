"""The human-review half of the SQL repository (core.ports.ReviewRepository): flows, loops, the
reviewers' leases and answers, and the completed loops over time (core.sampling's drift signal).
SqlRepository inherits it.

Leasing and answering each run in one write transaction, one at a time (SQLite's writer; on PostgreSQL
an advisory lock on REVIEW, see base.one_at_a_time): no other writer, in this process or another, can
read the same free slot before this one has taken it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, delete, exists, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from visionloop.core.entities import Box, ImageInfo, Prediction, TaskType
from visionloop.core.records.review import (
    OPEN_STATUSES,
    FailureCode,
    FlowDefinition,
    FlowSettings,
    HumanLoop,
    Lease,
    LoopPurpose,
    LoopResult,
    LoopStatus,
    NewLoop,
    QueueOrder,
    ReviewAnswer,
)
from visionloop.errors import AlreadyExists, Conflict, NotFound
from visionloop.storage import schema as t
from visionloop.storage.base import SqlStore, boxes_json, naive, one_at_a_time, utc

LEASED, ANSWERED, SKIPPED = "leased", "answered", "skipped"
REVIEW = "review"  # the topic of the leasing and answering transactions (base.one_at_a_time)
_OPEN = [s.value for s in OPEN_STATUSES]
_LOOP_FIELDS = {
    "status",
    "answers_needed",
    "failure_code",
    "failure_reason",
    "completed_at",
    "human_answer",
    "agrees",
    "disagreement",
    "result",
    "entry_id",
    "output_uri",
}


class ReviewStore(SqlStore):
    """Mixin of SqlRepository: the review tables."""

    # --- flows ---------------------------------------------------------------------------------------

    def create_flow(
        self, project_id: int, name: str, arn: str, settings: FlowSettings, now: datetime
    ) -> FlowDefinition:
        values = {
            "project_id": project_id,
            "name": name,
            "arn": arn,
            "settings": _settings_json(settings),
            "created_at": naive(now),
            "updated_at": naive(now),
        }
        try:
            with self._write() as conn:
                key = conn.execute(insert(t.review_flows).values(**values)).inserted_primary_key
        except IntegrityError:
            raise AlreadyExists(f"the project already has a flow, or a flow is named {name!r}") from None
        assert key is not None
        return self.get_flow_by_id(int(key[0]))

    def update_flow(self, flow_id: int, settings: FlowSettings, now: datetime) -> FlowDefinition:
        with self._write() as conn:
            done = conn.execute(
                update(t.review_flows)
                .where(t.review_flows.c.id == flow_id)
                .values(settings=_settings_json(settings), updated_at=naive(now))
            )
        if done.rowcount == 0:
            raise NotFound(f"flow {flow_id} does not exist")
        return self.get_flow_by_id(flow_id)

    def _flows(self, *where: Any) -> list[FlowDefinition]:
        q = (
            select(t.review_flows, t.projects.c.name.label("project"), t.projects.c.task)
            .join(t.projects, t.projects.c.id == t.review_flows.c.project_id)
            .where(*where)
            .order_by(t.review_flows.c.id)
        )
        with self._read() as conn:
            return [_flow(r._mapping) for r in conn.execute(q).all()]

    def find_flow(self, project_id: int) -> FlowDefinition | None:
        found = self._flows(t.review_flows.c.project_id == project_id)
        return found[0] if found else None

    def get_flow_by_id(self, flow_id: int) -> FlowDefinition:
        found = self._flows(t.review_flows.c.id == flow_id)
        if not found:
            raise NotFound(f"flow {flow_id} does not exist")
        return found[0]

    def get_flow_by_name(self, name: str) -> FlowDefinition | None:
        found = self._flows(t.review_flows.c.name == name)
        return found[0] if found else None

    # --- loops ---------------------------------------------------------------------------------------

    def create_loop(self, loop: NewLoop, now: datetime) -> HumanLoop:
        try:
            with self._write() as conn:
                project_id = conn.execute(
                    select(t.review_flows.c.project_id).where(t.review_flows.c.id == loop.flow_id)
                ).scalar()
                if project_id is None:
                    raise NotFound(f"flow {loop.flow_id} does not exist")
                key = conn.execute(
                    insert(t.human_loops).values(**_new_loop_values(loop, int(project_id), now))
                ).inserted_primary_key
        except IntegrityError:
            if self.find_loop(loop.name) is not None:
                raise AlreadyExists(f"a human loop named {loop.name!r} already exists") from None
            raise Conflict(
                "the image already has an open human loop in this project",
                content_hash=loop.image.content_hash,
            ) from None
        assert key is not None
        return self.get_loop_by_id(int(key[0]))

    def _loops(self, conn: Connection, *where: Any) -> list[HumanLoop]:
        q = (
            select(t.human_loops, t.review_flows.c.arn.label("flow_arn"))
            .join(t.review_flows, t.review_flows.c.id == t.human_loops.c.flow_id)
            .where(*where)
        )
        return [_loop(r._mapping) for r in conn.execute(q).all()]

    def find_loop(self, name: str) -> HumanLoop | None:
        with self._read() as conn:
            found = self._loops(conn, t.human_loops.c.name == name)
        return found[0] if found else None

    def get_loop_by_id(self, loop_id: int) -> HumanLoop:
        with self._read() as conn:
            found = self._loops(conn, t.human_loops.c.id == loop_id)
        if not found:
            raise NotFound(f"human loop {loop_id} does not exist")
        return found[0]

    def loop_input_hash(self, loop_id: int) -> str:
        with self._read() as conn:
            found = conn.execute(
                select(t.human_loops.c.input_hash).where(t.human_loops.c.id == loop_id)
            ).scalar()
        if found is None:
            raise NotFound(f"human loop {loop_id} does not exist")
        return str(found)

    def open_loop_for_image(self, project_id: int, content_hash: str) -> HumanLoop | None:
        with self._read() as conn:
            found = self._loops(
                conn,
                t.human_loops.c.project_id == project_id,
                t.human_loops.c.open_hash == content_hash,
            )
        return found[0] if found else None

    def list_loops(
        self,
        flow_id: int,
        *,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        ascending: bool = False,
        status: LoopStatus | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[HumanLoop]:
        c = t.human_loops.c
        where = [c.flow_id == flow_id]
        if created_after is not None:
            where.append(c.created_at >= naive(created_after))
        if created_before is not None:
            where.append(c.created_at <= naive(created_before))
        if status is not None:
            where.append(c.status == LoopStatus(status).value)
        order = (c.created_at, c.id) if ascending else (c.created_at.desc(), c.id.desc())
        q = (
            select(t.human_loops, t.review_flows.c.arn.label("flow_arn"))
            .join(t.review_flows, t.review_flows.c.id == c.flow_id)
            .where(*where)
            .order_by(*order)
            .offset(offset)
        )
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return [_loop(r._mapping) for r in conn.execute(q).all()]

    def count_loops(self, flow_id: int, statuses: Sequence[LoopStatus]) -> int:
        c = t.human_loops.c
        with self._read() as conn:
            found = conn.execute(
                select(func.count()).where(
                    c.flow_id == flow_id, c.status.in_([LoopStatus(s).value for s in statuses])
                )
            ).scalar_one()
        return int(found)

    def transition_loop(
        self, loop_id: int, from_statuses: Sequence[LoopStatus], **changes: object
    ) -> HumanLoop | None:
        values = _loop_changes(changes)
        with self._write() as conn:
            done = conn.execute(
                update(t.human_loops)
                .where(
                    t.human_loops.c.id == loop_id,
                    t.human_loops.c.status.in_([LoopStatus(s).value for s in from_statuses]),
                )
                .values(**values)
            )
        return self.get_loop_by_id(loop_id) if done.rowcount else None

    def update_loop(self, loop_id: int, **changes: object) -> HumanLoop:
        values = _loop_changes(changes)
        with self._write() as conn:
            done = conn.execute(update(t.human_loops).where(t.human_loops.c.id == loop_id).values(**values))
        if done.rowcount == 0:
            raise NotFound(f"human loop {loop_id} does not exist")
        return self.get_loop_by_id(loop_id)

    def delete_loop(self, loop_id: int, from_statuses: Sequence[LoopStatus]) -> bool:
        with self._write() as conn:
            done = conn.execute(
                delete(t.human_loops).where(
                    t.human_loops.c.id == loop_id,
                    t.human_loops.c.status.in_([LoopStatus(s).value for s in from_statuses]),
                )
            )
        return bool(done.rowcount)

    def expire_loops(self, now: datetime) -> int:
        ts, c = naive(now), t.human_loops.c
        due = or_(
            and_(c.status == LoopStatus.IN_PROGRESS.value, c.expires_at <= ts),
            c.status == LoopStatus.STOPPING.value,
        )
        with self._read() as conn:  # most calls find nothing to do: no write transaction for them
            if conn.execute(select(c.id).where(due).limit(1)).first() is None:
                return 0
        with self._write() as conn:
            return _expire(conn, ts)

    # --- leases and answers --------------------------------------------------------------------------

    def list_leases(self, loop_id: int) -> list[Lease]:
        a = t.review_assignments.c
        with self._read() as conn:
            rows = conn.execute(
                select(t.review_assignments).where(a.loop_id == loop_id, a.state == LEASED).order_by(a.id)
            ).all()
        return [Lease(r.loop_id, r.reviewer, utc(r.leased_at), utc(r.expires_at)) for r in rows]

    def lease_next_loop(
        self, reviewer: str, now: datetime, day_start: datetime, project_id: int | None = None
    ) -> tuple[HumanLoop, Lease] | None:
        ts = naive(now)
        a, lp = t.review_assignments.c, t.human_loops.c
        with self._write() as conn:
            one_at_a_time(conn, REVIEW)
            _expire(conn, ts)
            scope = [lp.status == LoopStatus.IN_PROGRESS.value, lp.expires_at > ts]
            if project_id is not None:
                scope.append(lp.project_id == project_id)
            held = conn.execute(
                select(t.review_assignments)
                .join(t.human_loops, lp.id == a.loop_id)
                .where(a.reviewer == reviewer, a.state == LEASED, a.expires_at > ts, *scope)
                .order_by(a.leased_at)
                .limit(1)
            ).first()
            if held is not None:
                lease = Lease(held.loop_id, reviewer, utc(held.leased_at), utc(held.expires_at))
                return self._loops(conn, lp.id == held.loop_id)[0], lease
            flows = {f.id: f for f in self._flows_in(conn, project_id)}
            open_flows = [fid for fid, f in flows.items() if self._within_budget(conn, f, ts, day_start)]
            if not open_flows:
                return None
            found = conn.execute(_candidates(reviewer, ts, scope, open_flows, flows).limit(1)).scalar()
            if found is None:
                return None
            flow = flows[conn.execute(select(lp.flow_id).where(lp.id == found)).scalar_one()]
            until = ts + timedelta(seconds=flow.settings.lease_seconds)
            mine = and_(a.loop_id == found, a.reviewer == reviewer)
            values = {"state": LEASED, "leased_at": ts, "expires_at": until, "label": None, "boxes": "[]"}
            if conn.execute(update(t.review_assignments).where(mine).values(**values)).rowcount == 0:
                conn.execute(insert(t.review_assignments).values(loop_id=found, reviewer=reviewer, **values))
            loop = self._loops(conn, lp.id == found)[0]
        return loop, Lease(found, reviewer, utc(ts), utc(until))

    def _flows_in(self, conn: Connection, project_id: int | None) -> list[FlowDefinition]:
        q = select(t.review_flows, t.projects.c.name.label("project"), t.projects.c.task).join(
            t.projects, t.projects.c.id == t.review_flows.c.project_id
        )
        if project_id is not None:
            q = q.where(t.review_flows.c.project_id == project_id)
        return [_flow(r._mapping) for r in conn.execute(q).all()]

    @staticmethod
    def _within_budget(conn: Connection, flow: FlowDefinition, ts: datetime, day_start: datetime) -> bool:
        budget = flow.settings.daily_budget
        if budget is None:
            return True
        a, lp = t.review_assignments.c, t.human_loops.c
        handed = conn.execute(
            select(func.count())
            .select_from(t.review_assignments.join(t.human_loops, lp.id == a.loop_id))
            .where(
                lp.flow_id == flow.id,
                or_(
                    and_(a.state == ANSWERED, a.submitted_at >= naive(day_start)),
                    and_(a.state == LEASED, a.expires_at > ts),
                ),
            )
        ).scalar_one()
        return int(handed) < budget

    def release_lease(self, loop_id: int, reviewer: str, skip: bool) -> None:
        a = t.review_assignments.c
        mine = and_(a.loop_id == loop_id, a.reviewer == reviewer)
        with self._write() as conn:
            one_at_a_time(conn, REVIEW)
            if not skip:
                conn.execute(delete(t.review_assignments).where(mine, a.state == LEASED))
                return
            done = conn.execute(
                update(t.review_assignments).where(mine, a.state == LEASED).values(state=SKIPPED)
            )
            if done.rowcount == 0 and conn.execute(select(a.id).where(mine)).first() is None:
                now = datetime.now(UTC).replace(tzinfo=None)
                conn.execute(
                    insert(t.review_assignments).values(
                        loop_id=loop_id,
                        reviewer=reviewer,
                        state=SKIPPED,
                        leased_at=now,
                        expires_at=now,
                        boxes="[]",
                    )
                )

    def record_answer(
        self, loop_id: int, reviewer: str, label: str | None, boxes: Sequence[Box], now: datetime
    ) -> list[ReviewAnswer]:
        ts = naive(now)
        a = t.review_assignments.c
        with self._write() as conn:
            one_at_a_time(conn, REVIEW)
            _expire(conn, ts)
            loop = conn.execute(
                select(t.human_loops.c.status, t.human_loops.c.answers_needed).where(
                    t.human_loops.c.id == loop_id
                )
            ).first()
            if loop is None:
                raise NotFound(f"human loop {loop_id} does not exist")
            if loop.status != LoopStatus.IN_PROGRESS.value:
                raise Conflict(
                    f"the human loop is {loop.status}; it takes no more answers", status=loop.status
                )
            mine = conn.execute(
                select(t.review_assignments).where(a.loop_id == loop_id, a.reviewer == reviewer)
            ).first()
            if mine is None or mine.state != LEASED:
                state = "answered" if mine is not None and mine.state == ANSWERED else "no lease on"
                raise Conflict(f"reviewer {reviewer!r} has {state} this item")
            answered, others = _slots(conn, loop_id, ts, reviewer)
            taken = answered + (others if mine.expires_at <= ts else 0)
            if answered >= loop.answers_needed or taken >= loop.answers_needed:
                raise Conflict("the lease expired and the item was given to another reviewer")
            conn.execute(
                update(t.review_assignments)
                .where(a.id == mine.id)
                .values(state=ANSWERED, label=label, boxes=boxes_json(boxes), submitted_at=ts)
            )
            return _answers(conn, loop_id)

    def list_answers(self, loop_id: int) -> list[ReviewAnswer]:
        with self._read() as conn:
            return _answers(conn, loop_id)

    def loop_answers_pairs(self, project_id: int) -> list[tuple[str | None, str]]:
        c = t.human_loops.c
        with self._read() as conn:
            rows = conn.execute(
                select(c.model_answer, c.human_answer).where(
                    c.project_id == project_id,
                    c.status == LoopStatus.COMPLETED.value,
                    c.human_answer.is_not(None),
                )
            ).all()
        return [(r.model_answer, r.human_answer) for r in rows]

    # --- human loops: the drift signal and sampling --------------------------------------------------

    def newest_loop_at(self, project_id: int, purpose: str) -> datetime | None:
        """When the project's newest loop of ``purpose`` (core.review.LoopPurpose) was created."""
        c = t.human_loops.c
        with self._read() as conn:
            found = conn.execute(
                select(func.max(c.created_at)).where(c.project_id == project_id, c.purpose == purpose)
            ).scalar()
        return None if found is None else utc(found)

    def loop_outcomes(
        self, project_id: int, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[tuple[datetime, str | None, str, str]]:
        """(completed at, model answer, human answer, purpose) of the project's Completed loops with a
        human answer, oldest first."""
        c = t.human_loops.c
        conds: list[Any] = [
            c.project_id == project_id,
            c.status == LoopStatus.COMPLETED.value,
            c.human_answer.is_not(None),
            c.completed_at.is_not(None),
        ]
        if since is not None:
            conds.append(c.completed_at >= naive(since))
        if until is not None:
            conds.append(c.completed_at < naive(until))
        with self._read() as conn:
            rows = conn.execute(
                select(c.completed_at, c.model_answer, c.human_answer, c.purpose)
                .where(*conds)
                .order_by(c.completed_at, c.id)
            ).all()
        return [(utc(r.completed_at), r.model_answer, r.human_answer, r.purpose) for r in rows]


# --- queries -------------------------------------------------------------------------------------------


def _expire(conn: Connection, ts: datetime) -> int:
    """InProgress loops past their time limit Fail; Stopping loops with no live lease are Stopped."""
    lp, a = t.human_loops.c, t.review_assignments.c
    failed = conn.execute(
        update(t.human_loops)
        .where(lp.status == LoopStatus.IN_PROGRESS.value, lp.expires_at <= ts)
        .values(
            status=LoopStatus.FAILED.value,
            failure_code=FailureCode.EXPIRED.value,
            failure_reason="The human loop expired before it got its answers (the flow's time limit).",
            open_hash=None,
        )
    ).rowcount
    live = exists().where(a.loop_id == lp.id, a.state == LEASED, a.expires_at > ts)
    stopped = conn.execute(
        update(t.human_loops)
        .where(lp.status == LoopStatus.STOPPING.value, ~live)
        .values(status=LoopStatus.STOPPED.value, open_hash=None)
    ).rowcount
    return int(failed) + int(stopped)


def _slots(conn: Connection, loop_id: int, ts: datetime, reviewer: str) -> tuple[int, int]:
    """(answers given, live leases of other reviewers) of a loop."""
    a = t.review_assignments.c
    answered = conn.execute(
        select(func.count()).where(a.loop_id == loop_id, a.state == ANSWERED)
    ).scalar_one()
    others = conn.execute(
        select(func.count()).where(
            a.loop_id == loop_id, a.state == LEASED, a.expires_at > ts, a.reviewer != reviewer
        )
    ).scalar_one()
    return int(answered), int(others)


def _candidates(
    reviewer: str, ts: datetime, scope: list[Any], flow_ids: list[int], flows: dict[int, FlowDefinition]
) -> Any:
    """The ids of the loops ``reviewer`` may lease, best first."""
    lp, a = t.human_loops.c, t.review_assignments.c
    used = (
        select(func.count())
        .where(
            a.loop_id == lp.id,
            or_(a.state == ANSWERED, and_(a.state == LEASED, a.expires_at > ts, a.reviewer != reviewer)),
        )
        .scalar_subquery()
    )
    seen = exists().where(a.loop_id == lp.id, a.reviewer == reviewer, a.state.in_([ANSWERED, SKIPPED]))
    by_margin = [fid for fid in flow_ids if flows[fid].settings.queue_order is QueueOrder.LOWEST_MARGIN]
    margin_key = (
        case((lp.flow_id.in_(by_margin), func.coalesce(lp.margin, 2.0)), else_=literal(2.0))
        if by_margin
        else literal(2.0)
    )
    return (
        select(lp.id)
        .where(*scope, lp.flow_id.in_(flow_ids), used < lp.answers_needed, ~seen)
        .order_by(margin_key, lp.created_at, lp.id)
    )


def _answers(conn: Connection, loop_id: int) -> list[ReviewAnswer]:
    a = t.review_assignments.c
    rows = conn.execute(
        select(t.review_assignments)
        .where(a.loop_id == loop_id, a.state == ANSWERED)
        .order_by(a.submitted_at, a.id)
    ).all()
    return [
        ReviewAnswer(
            loop_id=r.loop_id,
            reviewer=r.reviewer,
            label=r.label,
            boxes=tuple(Box(**b) for b in json.loads(r.boxes)),
            accepted_at=utc(r.leased_at),
            submitted_at=utc(r.submitted_at),
        )
        for r in rows
    ]


# --- rows to records and back ------------------------------------------------------------------------------


def _settings_json(s: FlowSettings) -> str:
    doc = asdict(s)
    doc["labels"] = list(s.labels)
    doc["queue_order"] = QueueOrder(s.queue_order).value
    return json.dumps(doc)


def _flow(m: Any) -> FlowDefinition:
    doc = json.loads(m["settings"])
    doc["labels"] = tuple(doc.get("labels", ()))
    doc["queue_order"] = QueueOrder(doc.get("queue_order", QueueOrder.OLDEST.value))
    known = set(FlowSettings.__dataclass_fields__)
    settings = FlowSettings(**{k: v for k, v in doc.items() if k in known})
    return FlowDefinition(
        id=m["id"],
        project_id=m["project_id"],
        project=m["project"],
        name=m["name"],
        arn=m["arn"],
        boxes=m["task"] == TaskType.DETECTION.value,
        settings=settings,
        created_at=utc(m["created_at"]),
        updated_at=utc(m["updated_at"]),
    )


def _new_loop_values(loop: NewLoop, project_id: int, now: datetime) -> dict[str, Any]:
    return {
        "name": loop.name,
        "flow_id": loop.flow_id,
        "project_id": project_id,
        "status": LoopStatus.IN_PROGRESS.value,
        "purpose": LoopPurpose(loop.purpose).value,
        "created_at": naive(now),
        "expires_at": naive(loop.expires_at),
        "content_hash": loop.image.content_hash,
        "format": loop.image.format,
        "width": loop.image.width,
        "height": loop.image.height,
        "size_bytes": loop.image.size_bytes,
        "source_ref": loop.source_ref,
        "input_content": loop.input_content,
        "input_hash": loop.input_hash,
        "answers_needed": loop.answers_needed,
        "predictions": json.dumps([_prediction_row(p) for p in loop.predictions]),
        "model_answer": loop.model_answer,
        "margin": loop.margin,
        "model_version": loop.model_version,
        "detection_ref": loop.detection_ref,
        "data_attributes": json.dumps(list(loop.data_attributes)),
        "disagreement": False,
        "open_hash": loop.image.content_hash,
    }


def _prediction_row(p: Prediction) -> dict[str, Any]:
    """A model guess as stored: label and confidence, with a detector's box (ratios)."""
    row: dict[str, Any] = {"label": p.label, "confidence": p.confidence}
    if p.box is not None:
        row["box"] = [p.box.left, p.box.top, p.box.width, p.box.height]
    return row


def _prediction(row: dict[str, Any]) -> Prediction:
    box = Box(row["label"], *row["box"]) if row.get("box") else None
    return Prediction(row["label"], row["confidence"], box)


def _loop_changes(changes: dict[str, object]) -> dict[str, object]:
    unknown = set(changes) - _LOOP_FIELDS
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    out: dict[str, object] = {}
    for k, v in changes.items():
        if isinstance(v, datetime):
            out[k] = naive(v)
        elif hasattr(v, "value"):  # enums
            out[k] = v.value
        else:
            out[k] = v
    if "status" in changes and LoopStatus(str(out["status"])) not in OPEN_STATUSES:
        out["open_hash"] = None
    return out


def _loop(m: Any) -> HumanLoop:
    return HumanLoop(
        id=m["id"],
        name=m["name"],
        flow_id=m["flow_id"],
        flow_arn=m["flow_arn"],
        project_id=m["project_id"],
        status=LoopStatus(m["status"]),
        purpose=LoopPurpose(m["purpose"]),
        created_at=utc(m["created_at"]),
        expires_at=utc(m["expires_at"]),
        image=ImageInfo(m["format"], m["width"], m["height"], m["size_bytes"], m["content_hash"]),
        source_ref=m["source_ref"],
        input_content=m["input_content"],
        answers_needed=m["answers_needed"],
        predictions=tuple(_prediction(p) for p in json.loads(m["predictions"])),
        model_answer=m["model_answer"],
        margin=m["margin"],
        model_version=m["model_version"],
        detection_ref=m["detection_ref"],
        data_attributes=tuple(json.loads(m["data_attributes"])),
        failure_code=m["failure_code"],
        failure_reason=m["failure_reason"],
        completed_at=utc(m["completed_at"]) if m["completed_at"] else None,
        human_answer=m["human_answer"],
        agrees=None if m["agrees"] is None else bool(m["agrees"]),
        disagreement=bool(m["disagreement"]),
        result=LoopResult(m["result"]) if m["result"] else None,
        entry_id=m["entry_id"],
        output_uri=m["output_uri"],
    )


__all__ = ["ReviewStore"]
