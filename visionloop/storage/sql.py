"""The metadata repository on SQLAlchemy Core: SQLite by default (WAL mode, one writer per process:
storage/connections.py),
PostgreSQL by URL. The schema is created and upgraded by Alembic migrations."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from visionloop.core.entities import (
    Box,
    Dataset,
    DatasetEntry,
    DatasetStatus,
    DatasetType,
    EntrySource,
    Job,
    JobStatus,
    ModelVersion,
    NewEntry,
    Project,
    SplitRecord,
    TaskType,
    VersionStatus,
)
from visionloop.core.ports import EntryFilter
from visionloop.errors import AlreadyExists, NotFound
from visionloop.storage import schema as t
from visionloop.storage.base import insert_or_skip, naive, utc
from visionloop.storage.connections import create_db_engine
from visionloop.storage.detections import DetectionStore
from visionloop.storage.events import EventStore
from visionloop.storage.parameters import ParameterStore
from visionloop.storage.review import ReviewStore
from visionloop.storage.workflow import WorkflowStore

MIGRATIONS = Path(__file__).with_name("migrations")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class SqlRepository(ReviewStore, ParameterStore, EventStore, DetectionStore, WorkflowStore):
    """Implements core.ports.Repository (the human-review tables: storage/review.py; parameters and
    workflow state: storage/parameters.py; events and notifications: storage/events.py)."""

    def __init__(self, url: str, *, auto_migrate: bool = True) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        if auto_migrate:
            migrate(self.engine)

    def close(self) -> None:
        self.writer.close()
        self.engine.dispose()

    # --- projects ------------------------------------------------------------------------------------

    def create_project(self, name: str, task: TaskType, now: datetime) -> Project:
        try:
            with self._write() as conn:
                pid = conn.execute(
                    insert(t.projects).values(name=name, task=task.value, created_at=naive(now))
                ).inserted_primary_key
        except IntegrityError:
            raise AlreadyExists(f"a project named {name!r} already exists") from None
        assert pid is not None
        return Project(int(pid[0]), name, task, utc(now))

    def get_project(self, name: str) -> Project:
        with self._read() as conn:
            row = conn.execute(select(t.projects).where(t.projects.c.name == name)).first()
        if row is None:
            raise NotFound(f"project {name!r} does not exist")
        return _project(row._mapping)

    def get_project_by_id(self, project_id: int) -> Project:
        with self._read() as conn:
            row = conn.execute(select(t.projects).where(t.projects.c.id == project_id)).first()
        if row is None:
            raise NotFound(f"project {project_id} does not exist")
        return _project(row._mapping)

    def list_projects(self) -> list[Project]:
        with self._read() as conn:
            rows = conn.execute(select(t.projects).order_by(t.projects.c.created_at, t.projects.c.id)).all()
        return [_project(r._mapping) for r in rows]

    def delete_project(self, project_id: int) -> None:
        with self._write() as conn:
            conn.execute(delete(t.projects).where(t.projects.c.id == project_id))

    def set_project_task(self, project_id: int, task: TaskType) -> Project:
        with self._write() as conn:
            done = conn.execute(
                update(t.projects).where(t.projects.c.id == project_id).values(task=task.value)
            )
            if done.rowcount == 0:
                raise NotFound(f"project {project_id} does not exist")
            row = conn.execute(select(t.projects).where(t.projects.c.id == project_id)).one()
        return _project(row._mapping)

    # --- datasets ------------------------------------------------------------------------------------

    def create_dataset(
        self,
        project_id: int,
        type: DatasetType,
        now: datetime,
        status: DatasetStatus = DatasetStatus.READY,
    ) -> Dataset:
        try:
            with self._write() as conn:
                values = {
                    "project_id": project_id,
                    "type": type.value,
                    "created_at": naive(now),
                    "updated_at": naive(now),
                    "status": status.value,
                }
                key = conn.execute(insert(t.datasets).values(**values)).inserted_primary_key
        except IntegrityError:
            raise AlreadyExists(f"the project already has a {type.value.upper()} dataset") from None
        assert key is not None
        return Dataset(int(key[0]), project_id, type, utc(now), utc(now), status)

    def set_dataset_status(
        self, dataset_id: int, status: DatasetStatus, message: str | None, now: datetime
    ) -> None:
        with self._write() as conn:
            conn.execute(
                update(t.datasets)
                .where(t.datasets.c.id == dataset_id)
                .values(status=status.value, status_message=message, updated_at=naive(now))
            )

    def datasets_with_status(self, status: DatasetStatus) -> list[Dataset]:
        with self._read() as conn:
            rows = conn.execute(
                select(t.datasets).where(t.datasets.c.status == status.value).order_by(t.datasets.c.id)
            ).all()
        return [_dataset(r._mapping) for r in rows]

    def find_dataset(self, project_id: int, type: DatasetType) -> Dataset | None:
        with self._read() as conn:
            row = conn.execute(
                select(t.datasets).where(
                    t.datasets.c.project_id == project_id, t.datasets.c.type == type.value
                )
            ).first()
        return None if row is None else _dataset(row._mapping)

    def list_datasets(self, project_id: int) -> list[Dataset]:
        with self._read() as conn:
            rows = conn.execute(
                select(t.datasets)
                .where(t.datasets.c.project_id == project_id)
                .order_by(t.datasets.c.type.desc())
            ).all()
        return [_dataset(r._mapping) for r in rows]

    def delete_dataset(self, dataset_id: int) -> None:
        with self._write() as conn:
            conn.execute(delete(t.datasets).where(t.datasets.c.id == dataset_id))

    # --- entries -------------------------------------------------------------------------------------

    def add_entries(self, dataset_id: int, entries: Sequence[NewEntry], now: datetime) -> list[int]:
        ts = naive(now)
        ids: list[int] = []
        try:
            with self._write() as conn:
                for e in entries:
                    key = conn.execute(
                        insert(t.entries).values(
                            dataset_id=dataset_id,
                            content_hash=e.image.content_hash,
                            source_ref=e.source_ref,
                            format=e.image.format,
                            width=e.image.width,
                            height=e.image.height,
                            size_bytes=e.image.size_bytes,
                            labels=json.dumps(list(e.labels)),
                            boxes=_boxes_json(e.boxes),
                            source=e.source.value,
                            review_ref=e.review_ref,
                            created_at=ts,
                            updated_at=ts,
                            phash=e.phash or e.image.phash,
                            group_name=e.group,
                        )
                    ).inserted_primary_key
                    assert key is not None
                    ids.append(int(key[0]))
                rows = [
                    {"entry_id": i, "label": lab}
                    for i, e in zip(ids, entries, strict=True)
                    for lab in _all_labels(e.labels, e.boxes)
                ]
                if rows:
                    conn.execute(insert(t.entry_labels), rows)
                conn.execute(update(t.datasets).where(t.datasets.c.id == dataset_id).values(updated_at=ts))
        except IntegrityError as e:
            raise AlreadyExists(f"an image is already in the dataset: {e.orig}") from None
        return ids

    def _entries_query(self, dataset_id: int, where: EntryFilter | None) -> Select[Any]:
        q = select(t.entries).where(t.entries.c.dataset_id == dataset_id)
        if where is None:
            return q
        if where.label is not None:
            q = q.where(
                t.entries.c.id.in_(
                    select(t.entry_labels.c.entry_id).where(t.entry_labels.c.label == where.label)
                )
            )
        if where.labeled is not None:
            has = t.entries.c.id.in_(select(t.entry_labels.c.entry_id))
            q = q.where(has if where.labeled else ~has)
        if where.source is not None:
            q = q.where(t.entries.c.source == where.source.value)
        if where.source_ref_contains:
            q = q.where(t.entries.c.source_ref.contains(where.source_ref_contains, autoescape=True))
        return q

    def list_entries(
        self, dataset_id: int, where: EntryFilter | None = None, offset: int = 0, limit: int | None = None
    ) -> list[DatasetEntry]:
        q = self._entries_query(dataset_id, where).order_by(t.entries.c.id).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [_entry(r._mapping) for r in rows]

    def count_entries(self, dataset_id: int, where: EntryFilter | None = None) -> int:
        sub = self._entries_query(dataset_id, where).subquery()
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(sub)).scalar_one())

    def entry_hashes(self, dataset_id: int) -> set[str]:
        with self._read() as conn:
            rows = conn.execute(
                select(t.entries.c.content_hash).where(t.entries.c.dataset_id == dataset_id)
            ).all()
        return {r[0] for r in rows}

    def get_entry(self, entry_id: int) -> DatasetEntry:
        with self._read() as conn:
            row = conn.execute(select(t.entries).where(t.entries.c.id == entry_id)).first()
        if row is None:
            raise NotFound(f"dataset entry {entry_id} does not exist")
        return _entry(row._mapping)

    def set_entry_labels(
        self, entry_id: int, labels: Sequence[str], boxes: Sequence[Box], now: datetime
    ) -> None:
        with self._write() as conn:
            done = conn.execute(
                update(t.entries)
                .where(t.entries.c.id == entry_id)
                .values(labels=json.dumps(list(labels)), boxes=_boxes_json(boxes), updated_at=naive(now))
            )
            if done.rowcount == 0:
                raise NotFound(f"dataset entry {entry_id} does not exist")
            conn.execute(delete(t.entry_labels).where(t.entry_labels.c.entry_id == entry_id))
            rows = [{"entry_id": entry_id, "label": lab} for lab in _all_labels(labels, boxes)]
            if rows:
                conn.execute(insert(t.entry_labels), rows)

    def set_entry_phashes(self, phashes: Mapping[int, str]) -> None:
        with self._write() as conn:
            for entry_id, phash in phashes.items():
                conn.execute(update(t.entries).where(t.entries.c.id == entry_id).values(phash=phash))

    def move_entries(self, entry_ids: Sequence[int], to_dataset_id: int, now: datetime) -> None:
        with self._write() as conn:
            for start in range(0, len(entry_ids), 500):
                chunk = list(entry_ids[start : start + 500])
                conn.execute(
                    update(t.entries)
                    .where(t.entries.c.id.in_(chunk))
                    .values(dataset_id=to_dataset_id, updated_at=naive(now))
                )

    def delete_entries(self, entry_ids: Sequence[int]) -> None:
        with self._write() as conn:
            for start in range(0, len(entry_ids), 500):
                conn.execute(
                    delete(t.entries).where(t.entries.c.id.in_(list(entry_ids[start : start + 500])))
                )

    # --- labels --------------------------------------------------------------------------------------

    def add_labels(self, project_id: int, names: Sequence[str]) -> None:
        rows = [{"project_id": project_id, "name": n} for n in dict.fromkeys(names)]
        if rows:
            with self._write() as conn:
                conn.execute(insert_or_skip(conn, t.labels), rows)

    def list_labels(self, project_id: int) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(
                select(t.labels.c.name).where(t.labels.c.project_id == project_id).order_by(t.labels.c.name)
            )
            return [r[0] for r in rows]

    # --- splits --------------------------------------------------------------------------------------

    def record_split(
        self,
        project_id: int,
        seed: int,
        test_fraction: float,
        test_hashes: Sequence[str],
        train_count: int,
        now: datetime,
        n_groups: int = 0,
        warnings: Sequence[str] = (),
    ) -> SplitRecord:
        values = {
            "project_id": project_id,
            "seed": seed,
            "test_fraction": test_fraction,
            "test_hashes": json.dumps(list(test_hashes)),
            "train_count": train_count,
            "test_count": len(test_hashes),
            "created_at": naive(now),
            "n_groups": n_groups,
            "warnings": json.dumps(list(warnings)),
        }
        with self._write() as conn:
            key = conn.execute(insert(t.splits).values(**values)).inserted_primary_key
        assert key is not None
        return SplitRecord(
            int(key[0]),
            project_id,
            seed,
            test_fraction,
            utc(now),
            tuple(test_hashes),
            train_count,
            len(test_hashes),
            n_groups,
            tuple(warnings),
        )

    def list_splits(self, project_id: int) -> list[SplitRecord]:
        with self._read() as conn:
            rows = conn.execute(
                select(t.splits).where(t.splits.c.project_id == project_id).order_by(t.splits.c.id)
            ).all()
        return [
            SplitRecord(
                r.id,
                r.project_id,
                r.seed,
                r.test_fraction,
                utc(r.created_at),
                tuple(json.loads(r.test_hashes)),
                r.train_count,
                r.test_count,
                r.n_groups or 0,
                tuple(json.loads(r.warnings or "[]")),
            )
            for r in rows
        ]

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


def _all_labels(labels: Sequence[str], boxes: Sequence[Box]) -> list[str]:
    return sorted(set(labels) | {b.label for b in boxes})


def _boxes_json(boxes: Sequence[Box]) -> str:
    return json.dumps(
        [
            {"label": b.label, "left": b.left, "top": b.top, "width": b.width, "height": b.height}
            for b in boxes
        ]
    )


def _project(m: Any) -> Project:
    return Project(m["id"], m["name"], TaskType(m["task"]), utc(m["created_at"]))


def _dataset(m: Any) -> Dataset:
    return Dataset(
        m["id"],
        m["project_id"],
        DatasetType(m["type"]),
        utc(m["created_at"]),
        utc(m["updated_at"]),
        DatasetStatus(m["status"]),
        m["status_message"],
    )


def _entry(m: Any) -> DatasetEntry:
    return DatasetEntry(
        id=m["id"],
        dataset_id=m["dataset_id"],
        content_hash=m["content_hash"],
        source_ref=m["source_ref"],
        format=m["format"],
        width=m["width"],
        height=m["height"],
        size_bytes=m["size_bytes"],
        labels=tuple(json.loads(m["labels"])),
        boxes=tuple(Box(**b) for b in json.loads(m["boxes"])),
        source=EntrySource(m["source"]),
        created_at=utc(m["created_at"]),
        review_ref=m["review_ref"],
        phash=m["phash"],
        group=m["group_name"],
    )
