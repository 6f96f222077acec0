"""Model versions and their jobs in the SQL repository (core.ports.VersionRepository)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from visionloop.core.entities import Job, JobStatus, ModelVersion, VersionStatus
from visionloop.errors import AlreadyExists, NotFound
from visionloop.storage import schema as t
from visionloop.storage.base import SqlStore, naive, utc


class VersionStore(SqlStore):
    """Mixin of SqlRepository: model versions and the jobs that train, evaluate and serve them."""

    # --- model versions ------------------------------------------------------------------------------

    def create_version(
        self, project_id: int, name: str, backbone: str, mode: str, snapshot_id: str, now: datetime
    ) -> ModelVersion:
        values = {
            "project_id": project_id,
            "name": name,
            "status": VersionStatus.TRAINING_IN_PROGRESS.value,
            "status_message": "The model is being trained.",
            "created_at": naive(now),
            "backbone": backbone,
            "mode": mode,
            "snapshot_id": snapshot_id,
            "thresholds": "{}",
            "params": "{}",
        }
        try:
            with self._write() as conn:
                key = conn.execute(insert(t.model_versions).values(**values)).inserted_primary_key
        except IntegrityError:
            raise AlreadyExists(f"the project already has a model version named {name!r}") from None
        assert key is not None
        return self.get_version_by_id(int(key[0]))

    def get_version(self, project_id: int, name: str) -> ModelVersion:
        with self._read() as conn:
            row = conn.execute(
                select(t.model_versions).where(
                    t.model_versions.c.project_id == project_id, t.model_versions.c.name == name
                )
            ).first()
        if row is None:
            raise NotFound(f"model version {name!r} does not exist")
        return _version(row._mapping)

    def get_version_by_id(self, version_id: int) -> ModelVersion:
        with self._read() as conn:
            row = conn.execute(select(t.model_versions).where(t.model_versions.c.id == version_id)).first()
        if row is None:
            raise NotFound(f"model version {version_id} does not exist")
        return _version(row._mapping)

    def list_versions(self, project_id: int) -> list[ModelVersion]:
        with self._read() as conn:
            rows = conn.execute(
                select(t.model_versions)
                .where(t.model_versions.c.project_id == project_id)
                .order_by(t.model_versions.c.id)
            ).all()
        return [_version(r._mapping) for r in rows]

    def update_version(self, version_id: int, **changes: object) -> ModelVersion:
        allowed = {c.name for c in t.model_versions.columns} - {"id", "project_id", "name", "created_at"}
        values = _encode_changes(changes, allowed)
        with self._write() as conn:
            done = conn.execute(
                update(t.model_versions).where(t.model_versions.c.id == version_id).values(**values)
            )
        if done.rowcount == 0:
            raise NotFound(f"model version {version_id} does not exist")
        return self.get_version_by_id(version_id)

    def transition_version(
        self, version_id: int, from_statuses: Sequence[VersionStatus], **changes: object
    ) -> ModelVersion | None:
        allowed = {c.name for c in t.model_versions.columns} - {"id", "project_id", "name", "created_at"}
        values = _encode_changes(changes, allowed)
        with self._write() as conn:
            done = conn.execute(
                update(t.model_versions)
                .where(
                    t.model_versions.c.id == version_id,
                    t.model_versions.c.status.in_([s.value for s in from_statuses]),
                )
                .values(**values)
            )
        return self.get_version_by_id(version_id) if done.rowcount else None

    def delete_version(self, version_id: int) -> None:
        with self._write() as conn:
            conn.execute(delete(t.model_versions).where(t.model_versions.c.id == version_id))

    # --- jobs ----------------------------------------------------------------------------------------

    def create_job(
        self,
        kind: str,
        project_id: int,
        version_id: int | None,
        now: datetime,
        params: dict[str, object] | None = None,
    ) -> Job:
        values = {
            "kind": kind,
            "project_id": project_id,
            "version_id": version_id,
            "status": JobStatus.QUEUED.value,
            "progress": 0.0,
            "stage": "queued",
            "message": "",
            "created_at": naive(now),
            "params": None if params is None else json.dumps(params),
        }
        with self._write() as conn:
            key = conn.execute(insert(t.jobs).values(**values)).inserted_primary_key
        assert key is not None
        return self.get_job(int(key[0]))

    def get_job(self, job_id: int) -> Job:
        with self._read() as conn:
            row = conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"job {job_id} does not exist")
        return _job(row._mapping)

    def list_jobs(self, project_id: int | None = None, status: JobStatus | None = None) -> list[Job]:
        q = select(t.jobs).order_by(t.jobs.c.id)
        if project_id is not None:
            q = q.where(t.jobs.c.project_id == project_id)
        if status is not None:
            q = q.where(t.jobs.c.status == status.value)
        with self._read() as conn:
            return [_job(r._mapping) for r in conn.execute(q).all()]

    def claim_job(self, now: datetime, job_id: int | None = None, worker: str | None = None) -> Job | None:
        """Atomically move the oldest queued job (or ``job_id``) to RUNNING, claimed by ``worker``
        (its "host:pid"); None when there is none."""
        with self._write() as conn:
            q = select(t.jobs.c.id).where(t.jobs.c.status == JobStatus.QUEUED.value)
            if job_id is not None:
                q = q.where(t.jobs.c.id == job_id)
            # PostgreSQL: a job another worker is claiming right now is skipped, not waited for (SQLite's
            # writer runs one claim at a time and has no FOR UPDATE)
            found = conn.execute(q.order_by(t.jobs.c.id).limit(1).with_for_update(skip_locked=True)).scalar()
            if found is None:
                return None
            done = conn.execute(
                update(t.jobs)
                .where(t.jobs.c.id == found, t.jobs.c.status == JobStatus.QUEUED.value)
                .values(
                    status=JobStatus.RUNNING.value, started_at=naive(now), stage="starting", worker=worker
                )
            )
            if done.rowcount == 0:
                return None
        return self.get_job(int(found))

    @contextmanager
    def worker_present(self, worker: str) -> Iterator[None]:
        """Show ``worker`` ("host:pid") as alive for the block: on PostgreSQL it holds a session advisory
        lock, which the database drops when the process dies, so that another server's start-up recovery
        (worker_alive) leaves its jobs alone. Held already (threads of one process sharing its name, in
        tests): shown by that holder. SQLite: nothing to show; one server per file."""
        with self._session_lock(f"worker:{worker}"):
            yield

    def worker_alive(self, worker: str) -> bool:
        """Whether ``worker`` is inside worker_present now, in any process on this PostgreSQL database.
        SQLite: False, as its one server recovers only while none of its workers runs."""
        if self.engine.dialect.name != "postgresql":
            return False
        with self._session_lock(f"worker:{worker}") as free:
            return not free

    def update_job(self, job_id: int, **changes: object) -> Job:
        allowed = {c.name for c in t.jobs.columns} - {"id", "kind", "project_id", "version_id", "created_at"}
        values = _encode_changes(changes, allowed)
        with self._write() as conn:
            done = conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(**values))
        if done.rowcount == 0:
            raise NotFound(f"job {job_id} does not exist")
        return self.get_job(job_id)


_JSON_VERSION_FIELDS = {"thresholds", "evaluation", "params", "result"}
_DATETIME_FIELDS = {
    "training_ended_at",
    "started_at",
    "finished_at",
    "stopped_at",
    "last_used_at",
    "idle_stopped_at",
}


def _encode_changes(changes: dict[str, object], allowed: set[str]) -> dict[str, object]:
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    out: dict[str, object] = {}
    for k, v in changes.items():
        if k in _JSON_VERSION_FIELDS:
            out[k] = None if v is None else json.dumps(v)
        elif k in _DATETIME_FIELDS and isinstance(v, datetime):
            out[k] = naive(v)
        elif hasattr(v, "value"):  # enums
            out[k] = v.value
        else:
            out[k] = v
    return out


def _version(m: Any) -> ModelVersion:
    return ModelVersion(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        status=VersionStatus(m["status"]),
        status_message=m["status_message"],
        created_at=utc(m["created_at"]),
        backbone=m["backbone"],
        mode=m["mode"],
        snapshot_id=m["snapshot_id"],
        training_ended_at=utc(m["training_ended_at"]) if m["training_ended_at"] else None,
        f1=m["f1"],
        thresholds=json.loads(m["thresholds"]),
        artifact_key=m["artifact_key"],
        artifact_checksum=m["artifact_checksum"],
        evaluation=json.loads(m["evaluation"]) if m["evaluation"] else None,
        params=json.loads(m["params"]),
        training_seconds=m["training_seconds"],
        min_inference_units=m["min_inference_units"],
        max_inference_units=m["max_inference_units"],
        inference_units=m["inference_units"],
        started_at=utc(m["started_at"]) if m["started_at"] else None,
        stopped_at=utc(m["stopped_at"]) if m["stopped_at"] else None,
        last_used_at=utc(m["last_used_at"]) if m["last_used_at"] else None,
        load_seconds=m["load_seconds"],
        idle_timeout_seconds=m["idle_timeout_seconds"],
        auto_start=bool(m["auto_start"]),
        idle_stopped_at=utc(m["idle_stopped_at"]) if m["idle_stopped_at"] else None,
    )


def _job(m: Any) -> Job:
    return Job(
        id=m["id"],
        kind=m["kind"],
        project_id=m["project_id"],
        version_id=m["version_id"],
        status=JobStatus(m["status"]),
        progress=m["progress"],
        stage=m["stage"],
        message=m["message"],
        created_at=utc(m["created_at"]),
        started_at=utc(m["started_at"]) if m["started_at"] else None,
        finished_at=utc(m["finished_at"]) if m["finished_at"] else None,
        eta_seconds=m["eta_seconds"],
        params=json.loads(m["params"]) if m["params"] else None,
        result=json.loads(m["result"]) if m["result"] else None,
        worker=m["worker"],
    )
