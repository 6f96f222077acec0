"""The workflow half of the SQL repository: runs and their steps (core.runs), the checks' schedules
(core.schedules) and the deployment log (core.deployments). SqlRepository inherits it; migration 0008
creates the tables."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from visionloop.core.records.deployments import Deployment
from visionloop.core.records.runs import ACTIVE, Run, RunStatus, RunStep, StepStatus
from visionloop.core.records.schedules import Schedule
from visionloop.errors import AlreadyExists, NotFound
from visionloop.storage import schema as t
from visionloop.storage.base import SqlStore, insert_or_skip, naive, one_at_a_time, utc
from visionloop.storage.schema import deployments, workflow_runs, workflow_schedules, workflow_steps

_RUN_FIELDS = {
    "status",
    "current_step",
    "outcome",
    "reason",
    "error",
    "output",
    "resumed",
    "started_at",
    "ended_at",
}
_STEP_FIELDS = {"status", "output", "error", "ended_at"}
_SCHEDULE_FIELDS = {
    "enabled",
    "interval_minutes",
    "params",
    "next_run_at",
    "last_run_at",
    "last_result",
    "updated_at",
}
_JSON = {"input", "output", "params"}


def _maybe_utc(ts: datetime | None) -> datetime | None:
    return None if ts is None else utc(ts)


def _encode(changes: Mapping[str, object], allowed: set[str]) -> dict[str, object]:
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    out: dict[str, object] = {}
    for key, value in changes.items():
        if key in _JSON:
            out[key] = json.dumps(value)
        elif isinstance(value, datetime):
            out[key] = naive(value)
        elif hasattr(value, "value"):  # enums
            out[key] = value.value
        else:
            out[key] = value
    return out


class WorkflowStore(SqlStore):
    """Mixin of SqlRepository: the workflow tables."""

    # --- runs ----------------------------------------------------------------------------------------

    def _runs(self) -> Any:
        return select(workflow_runs, t.projects.c.name.label("project")).join(
            t.projects, t.projects.c.id == workflow_runs.c.project_id
        )

    def create_run(
        self, project_id: int, kind: str, trigger: str, inputs: Mapping[str, Any], now: datetime
    ) -> Run:
        values = {
            "project_id": project_id,
            "kind": kind,
            "status": RunStatus.QUEUED.value,
            "trigger": trigger,
            "input": json.dumps(dict(inputs)),
            "output": "{}",
            "created_at": naive(now),
        }
        with self._write() as conn:
            key = conn.execute(insert(workflow_runs).values(**values)).inserted_primary_key
        assert key is not None
        return self.get_run(int(key[0]))

    def get_run(self, run_id: int) -> Run:
        with self._read() as conn:
            row = conn.execute(self._runs().where(workflow_runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"run {run_id} does not exist")
        return _run(row._mapping)

    def list_runs(
        self,
        project_id: int,
        *,
        status: RunStatus | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[Run]:
        q = self._runs().where(workflow_runs.c.project_id == project_id)
        if status is not None:
            q = q.where(workflow_runs.c.status == status.value)
        if kind is not None:
            q = q.where(workflow_runs.c.kind == kind)
        q = q.order_by(workflow_runs.c.id.desc()).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return [_run(r._mapping) for r in conn.execute(q).all()]

    def active_runs(self, project_id: int | None) -> list[Run]:
        q = self._runs().where(workflow_runs.c.status.in_([s.value for s in ACTIVE]))
        if project_id is not None:
            q = q.where(workflow_runs.c.project_id == project_id)
        with self._read() as conn:
            return [_run(r._mapping) for r in conn.execute(q.order_by(workflow_runs.c.id)).all()]

    def update_run(self, run_id: int, **changes: object) -> Run:
        values = _encode(changes, _RUN_FIELDS)
        with self._write() as conn:
            done = conn.execute(update(workflow_runs).where(workflow_runs.c.id == run_id).values(**values))
        if done.rowcount == 0:
            raise NotFound(f"run {run_id} does not exist")
        return self.get_run(run_id)

    def transition_run(
        self, run_id: int, from_statuses: Sequence[RunStatus], **changes: object
    ) -> Run | None:
        values = _encode(changes, _RUN_FIELDS)
        with self._write() as conn:
            done = conn.execute(
                update(workflow_runs)
                .where(
                    workflow_runs.c.id == run_id, workflow_runs.c.status.in_([s.value for s in from_statuses])
                )
                .values(**values)
            )
        return self.get_run(run_id) if done.rowcount else None

    @contextmanager
    def run_held(self, run_id: int) -> Iterator[bool]:
        """Whether this process may advance run ``run_id`` now: True while it holds the run, False when
        another server on the same PostgreSQL database is advancing it (base._session_lock). SQLite:
        always True; its one server's workflow runner is the one thread that advances runs."""
        with self._session_lock(f"run:{run_id}") as held:
            yield held

    # --- steps ---------------------------------------------------------------------------------------

    def add_step(self, run_id: int, name: str, inputs: Mapping[str, Any], now: datetime) -> RunStep:
        try:
            with self._write() as conn:
                seq = conn.execute(
                    select(func.coalesce(func.max(workflow_steps.c.seq), 0)).where(
                        workflow_steps.c.run_id == run_id
                    )
                ).scalar_one()
                values = {
                    "run_id": run_id,
                    "seq": int(seq) + 1,
                    "name": name,
                    "status": StepStatus.RUNNING.value,
                    "input": json.dumps(dict(inputs)),
                    "output": "{}",
                    "started_at": naive(now),
                }
                key = conn.execute(insert(workflow_steps).values(**values)).inserted_primary_key
        except IntegrityError as e:
            raise AlreadyExists(f"run {run_id} could not record step {name}: {e.orig}") from None
        assert key is not None
        return self._step(int(key[0]))

    def _step(self, step_id: int) -> RunStep:
        with self._read() as conn:
            row = conn.execute(select(workflow_steps).where(workflow_steps.c.id == step_id)).first()
        if row is None:
            raise NotFound(f"run step {step_id} does not exist")
        return _step(row._mapping)

    def update_step(self, step_id: int, **changes: object) -> RunStep:
        values = _encode(changes, _STEP_FIELDS)
        with self._write() as conn:
            conn.execute(update(workflow_steps).where(workflow_steps.c.id == step_id).values(**values))
        return self._step(step_id)

    def finish_step(
        self,
        step_id: int,
        status: StepStatus,
        output: Mapping[str, Any],
        error: str | None,
        now: datetime,
        run_id: int,
        run_changes: Mapping[str, object],
    ) -> None:
        """End a step and apply ``run_changes`` to its run, in one transaction."""
        step_values = _encode(
            {"status": status, "output": dict(output), "error": error, "ended_at": now}, _STEP_FIELDS
        )
        run_values = _encode(run_changes, _RUN_FIELDS)
        with self._write() as conn:
            conn.execute(update(workflow_steps).where(workflow_steps.c.id == step_id).values(**step_values))
            conn.execute(update(workflow_runs).where(workflow_runs.c.id == run_id).values(**run_values))

    def list_steps(self, run_id: int) -> list[RunStep]:
        with self._read() as conn:
            rows = conn.execute(
                select(workflow_steps).where(workflow_steps.c.run_id == run_id).order_by(workflow_steps.c.seq)
            ).all()
        return [_step(r._mapping) for r in rows]

    # --- schedules -----------------------------------------------------------------------------------

    def list_schedules(self, project_id: int) -> list[Schedule]:
        with self._read() as conn:
            rows = conn.execute(
                select(workflow_schedules)
                .where(workflow_schedules.c.project_id == project_id)
                .order_by(workflow_schedules.c.kind)
            ).all()
        return [_schedule(r._mapping) for r in rows]

    def create_schedule(self, project_id: int, kind: str, now: datetime, **values: object) -> Schedule:
        """Create the project's schedule of ``kind`` with ``values`` unless it exists; returns it as stored.
        One another server created meanwhile stays as that server armed it (and maybe re-armed it, firing
        it): overwriting it would arm it again and fire it twice."""
        encoded = _encode({**values, "updated_at": now}, _SCHEDULE_FIELDS)
        where = (workflow_schedules.c.project_id == project_id, workflow_schedules.c.kind == kind)
        defaults = {"enabled": False, "interval_minutes": 60.0, "params": "{}"}
        with self._write() as conn:
            new = {"project_id": project_id, "kind": kind, **defaults, **encoded}
            conn.execute(insert_or_skip(conn, workflow_schedules).values(**new))
            row = conn.execute(select(workflow_schedules).where(*where)).one()
        return _schedule(row._mapping)

    def update_schedule(self, schedule_id: int, **changes: object) -> Schedule:
        values = _encode(changes, _SCHEDULE_FIELDS)
        with self._write() as conn:
            conn.execute(
                update(workflow_schedules).where(workflow_schedules.c.id == schedule_id).values(**values)
            )
            row = conn.execute(
                select(workflow_schedules).where(workflow_schedules.c.id == schedule_id)
            ).first()
        if row is None:
            raise NotFound(f"schedule {schedule_id} does not exist")
        return _schedule(row._mapping)

    def rearm_schedule(self, expected: Schedule, **changes: object) -> Schedule | None:
        """Apply ``changes`` only if the schedule is still armed as ``expected`` (enabled, interval,
        watched parameters, next run) when this transaction holds the schedules' lock; None when another
        writer (a second server on the same database) re-armed it first and so fires it instead."""
        values = _encode(changes, _SCHEDULE_FIELDS)
        where = workflow_schedules.c.id == expected.id
        with self._write() as conn:
            one_at_a_time(conn, "schedules")  # the read below stays true until the update commits
            row = conn.execute(select(workflow_schedules).where(where)).first()
            if row is None:
                raise NotFound(f"schedule {expected.id} does not exist")
            now = _schedule(row._mapping)
            armed = (now.enabled, now.interval_minutes, now.params, now.next_run_at)
            if armed != (expected.enabled, expected.interval_minutes, expected.params, expected.next_run_at):
                return None
            conn.execute(update(workflow_schedules).where(where).values(**values))
            row = conn.execute(select(workflow_schedules).where(where)).one()
        return _schedule(row._mapping)

    # --- deployments ---------------------------------------------------------------------------------

    def add_deployment(
        self,
        project_id: int,
        version_id: int,
        version_name: str,
        previous_name: str | None,
        run_id: int | None,
        reason: str,
        now: datetime,
    ) -> Deployment:
        values = {
            "project_id": project_id,
            "version_id": version_id,
            "version_name": version_name,
            "previous_name": previous_name,
            "run_id": run_id,
            "reason": reason,
            "deployed_at": naive(now),
        }
        with self._write() as conn:
            key = conn.execute(insert(deployments).values(**values)).inserted_primary_key
            assert key is not None
            row = conn.execute(select(deployments).where(deployments.c.id == key[0])).one()
        return _deployment(row._mapping)

    def list_deployments(self, project_id: int, limit: int | None = None) -> list[Deployment]:
        """Newest first."""
        q = (
            select(deployments)
            .where(deployments.c.project_id == project_id)
            .order_by(deployments.c.id.desc())
        )
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return [_deployment(r._mapping) for r in conn.execute(q).all()]


def _run(m: Any) -> Run:
    return Run(
        id=m["id"],
        project_id=m["project_id"],
        project=m["project"],
        kind=m["kind"],
        status=RunStatus(m["status"]),
        trigger=m["trigger"],
        created_at=utc(m["created_at"]),
        input=json.loads(m["input"]),
        output=json.loads(m["output"]),
        current_step=m["current_step"],
        outcome=m["outcome"],
        reason=m["reason"],
        error=m["error"],
        resumed=m["resumed"],
        started_at=_maybe_utc(m["started_at"]),
        ended_at=_maybe_utc(m["ended_at"]),
    )


def _step(m: Any) -> RunStep:
    return RunStep(
        id=m["id"],
        run_id=m["run_id"],
        seq=m["seq"],
        name=m["name"],
        status=StepStatus(m["status"]),
        started_at=utc(m["started_at"]),
        input=json.loads(m["input"]),
        output=json.loads(m["output"]),
        error=m["error"],
        ended_at=_maybe_utc(m["ended_at"]),
    )


def _schedule(m: Any) -> Schedule:
    return Schedule(
        id=m["id"],
        project_id=m["project_id"],
        kind=m["kind"],
        enabled=bool(m["enabled"]),
        interval_minutes=m["interval_minutes"],
        updated_at=utc(m["updated_at"]),
        params=json.loads(m["params"]),
        next_run_at=_maybe_utc(m["next_run_at"]),
        last_run_at=_maybe_utc(m["last_run_at"]),
        last_result=m["last_result"],
    )


def _deployment(m: Any) -> Deployment:
    return Deployment(
        id=m["id"],
        project_id=m["project_id"],
        version_id=m["version_id"],
        version=m["version_name"],
        previous=m["previous_name"],
        run_id=m["run_id"],
        reason=m["reason"],
        deployed_at=utc(m["deployed_at"]),
    )


__all__ = ["WorkflowStore"]
