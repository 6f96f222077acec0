"""The parameters half of continuous improvement in the SQL repository (core.parameters): a project's
parameter values (only those set; the others are the defaults), the history of every change, and the
system's own bookkeeping (workflow_state). SqlRepository inherits it; migration 0006 creates the tables."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    delete,
    insert,
    select,
    update,
)

from visionloop.core.records.parameters import ParameterChange
from visionloop.errors import NotFound
from visionloop.storage import schema as t
from visionloop.storage.base import SqlStore, naive, utc
from visionloop.storage.schema import parameter_history, project_parameters, workflow_state


def _lock_project(conn: Connection, project_id: int) -> None:
    """Take the write lock first (SQLite) and the project's row (PostgreSQL), so that a read-modify-write
    that follows sees no concurrent writer; NotFound when the project is gone."""
    done = conn.execute(update(t.projects).where(t.projects.c.id == project_id).values(id=t.projects.c.id))
    if done.rowcount == 0:
        raise NotFound(f"project {project_id} does not exist")


class ParameterStore(SqlStore):
    """Mixin of SqlRepository: parameter values, their history, and workflow state."""

    # --- parameters ----------------------------------------------------------------------------------

    def get_parameter_values(self, project_id: int) -> dict[str, Any]:
        p = project_parameters
        with self._read() as conn:
            rows = conn.execute(select(p.c.key, p.c.value).where(p.c.project_id == project_id)).all()
        return {key: json.loads(value) for key, value in rows}

    def update_parameter_values(
        self,
        project_id: int,
        values: Mapping[str, Any],
        defaults: Mapping[str, Any],
        changed_by: str,
        now: datetime,
    ) -> list[ParameterChange]:
        p, h = project_parameters, parameter_history
        ts = naive(now)
        changes: list[ParameterChange] = []
        with self._write() as conn:
            _lock_project(conn, project_id)
            stored = {
                key: json.loads(value)
                for key, value in conn.execute(
                    select(p.c.key, p.c.value).where(p.c.project_id == project_id)
                ).all()
            }
            for key, new in values.items():
                old = stored.get(key, defaults.get(key))
                if old == new and type(old) is type(new):
                    continue
                text = json.dumps(new)
                if key in stored:
                    conn.execute(
                        update(p)
                        .where(p.c.project_id == project_id, p.c.key == key)
                        .values(value=text, updated_at=ts, updated_by=changed_by)
                    )
                else:
                    conn.execute(
                        insert(p).values(
                            project_id=project_id, key=key, value=text, updated_at=ts, updated_by=changed_by
                        )
                    )
                row = {
                    "project_id": project_id,
                    "key": key,
                    "old_value": json.dumps(old),
                    "new_value": text,
                    "changed_by": changed_by,
                    "changed_at": ts,
                }
                key_id = conn.execute(insert(h).values(**row)).inserted_primary_key
                assert key_id is not None
                changes.append(
                    ParameterChange(int(key_id[0]), project_id, key, old, new, changed_by, utc(ts))
                )
        return changes

    def list_parameter_history(
        self, project_id: int, *, key: str | None = None, offset: int = 0, limit: int = 100
    ) -> list[ParameterChange]:
        h = parameter_history
        q = select(h).where(h.c.project_id == project_id).order_by(h.c.id.desc()).offset(offset).limit(limit)
        if key is not None:
            q = q.where(h.c.key == key)
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [
            ParameterChange(
                id=r.id,
                project_id=r.project_id,
                key=r.key,
                old=json.loads(r.old_value),
                new=json.loads(r.new_value),
                changed_by=r.changed_by,
                changed_at=utc(r.changed_at),
            )
            for r in rows
        ]

    # --- workflow state ------------------------------------------------------------------------------

    def get_workflow_state(self, project_id: int) -> dict[str, Any]:
        w = workflow_state
        with self._read() as conn:
            rows = conn.execute(select(w.c.key, w.c.value).where(w.c.project_id == project_id)).all()
        return {key: json.loads(value) for key, value in rows}

    def update_workflow_state(
        self,
        project_id: int,
        fn: Callable[[dict[str, Any]], Mapping[str, Any]],
        now: datetime,
    ) -> dict[str, Any]:
        w = workflow_state
        ts = naive(now)
        with self._write() as conn:
            _lock_project(conn, project_id)
            state = {
                key: json.loads(value)
                for key, value in conn.execute(
                    select(w.c.key, w.c.value).where(w.c.project_id == project_id)
                ).all()
            }
            changes = dict(fn(dict(state)))
            for key, value in changes.items():
                if value is None:
                    conn.execute(delete(w).where(w.c.project_id == project_id, w.c.key == key))
                    state.pop(key, None)
                    continue
                text = json.dumps(value)
                if key in state:
                    conn.execute(
                        update(w)
                        .where(w.c.project_id == project_id, w.c.key == key)
                        .values(value=text, updated_at=ts)
                    )
                else:
                    conn.execute(insert(w).values(project_id=project_id, key=key, value=text, updated_at=ts))
                state[key] = json.loads(text)
        return state
