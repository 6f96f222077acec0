"""Projects and what they hold in the SQL repository (core.ports.ProjectRepository): datasets, their
entries (with one entry_labels row per label, for filtering in SQL), the manifest lines an import
rejected, the project's labels, splits."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from visionloop.core.entities import (
    Box,
    Dataset,
    DatasetEntry,
    DatasetStatus,
    DatasetType,
    EntrySource,
    NewEntry,
    Project,
    SplitRecord,
    TaskType,
)
from visionloop.core.ports import EntryFilter
from visionloop.core.records.rejected_lines import LineError, NewRejectedLine, RejectedLine
from visionloop.errors import AlreadyExists, NotFound
from visionloop.storage import schema as t
from visionloop.storage.base import SqlStore, boxes_json, insert_or_skip, naive, utc


class ProjectStore(SqlStore):
    """Mixin of SqlRepository: projects, datasets, entries, labels and splits."""

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
                            boxes=boxes_json(e.boxes),
                            source=e.source.value,
                            review_ref=e.review_ref,
                            created_at=ts,
                            updated_at=ts,
                            phash=e.phash or e.image.phash,
                            group_name=e.group,
                            manifest_line=e.manifest_line,
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
                .values(labels=json.dumps(list(labels)), boxes=boxes_json(boxes), updated_at=naive(now))
            )
            if done.rowcount == 0:
                raise NotFound(f"dataset entry {entry_id} does not exist")
            conn.execute(delete(t.entry_labels).where(t.entry_labels.c.entry_id == entry_id))
            rows = [{"entry_id": entry_id, "label": lab} for lab in _all_labels(labels, boxes)]
            if rows:
                conn.execute(insert(t.entry_labels), rows)

    def rename_label(self, project_id: int, old: str, new: str, now: datetime) -> int:
        """In one transaction: every entry of the project carrying ``old`` (image-level or on a box)
        carries ``new`` instead (once, where it had both), and the project knows ``new`` but not ``old``.
        Returns how many entries changed."""
        datasets = select(t.datasets.c.id).where(t.datasets.c.project_id == project_id)
        carrying = select(t.entry_labels.c.entry_id).where(t.entry_labels.c.label == old)
        with self._write() as conn:
            rows = conn.execute(  # locked (PostgreSQL): a label saved meanwhile is not overwritten
                select(t.entries.c.id, t.entries.c.labels, t.entries.c.boxes)
                .where(t.entries.c.dataset_id.in_(datasets), t.entries.c.id.in_(carrying))
                .with_for_update()
            ).all()
            for entry_id, labels_text, boxes_text in rows:
                labels = list(dict.fromkeys(new if x == old else x for x in json.loads(labels_text)))
                boxes = [Box(**b) for b in json.loads(boxes_text)]
                boxes = [Box(new, b.left, b.top, b.width, b.height) if b.label == old else b for b in boxes]
                conn.execute(
                    update(t.entries)
                    .where(t.entries.c.id == entry_id)
                    .values(labels=json.dumps(labels), boxes=boxes_json(boxes), updated_at=naive(now))
                )
                conn.execute(delete(t.entry_labels).where(t.entry_labels.c.entry_id == entry_id))
                conn.execute(
                    insert(t.entry_labels),
                    [{"entry_id": entry_id, "label": lab} for lab in _all_labels(labels, boxes)],
                )
            conn.execute(delete(t.labels).where(t.labels.c.project_id == project_id, t.labels.c.name == old))
            conn.execute(insert_or_skip(conn, t.labels), [{"project_id": project_id, "name": new}])
        return len(rows)

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

    def set_entry_manifest_lines(self, lines: Mapping[int, str | None]) -> None:
        with self._write() as conn:
            for entry_id, line in lines.items():
                conn.execute(update(t.entries).where(t.entries.c.id == entry_id).values(manifest_line=line))

    # --- rejected manifest lines ---------------------------------------------------------------------

    def replace_rejected_lines(
        self, dataset_id: int, source_refs: Sequence[str], lines: Sequence[NewRejectedLine], now: datetime
    ) -> None:
        refs = list(dict.fromkeys(source_refs))
        rows = [
            {
                "dataset_id": dataset_id,
                "source_ref": r.source_ref,
                "line": r.line,
                "errors": json.dumps([{"code": e.code, "message": e.message} for e in r.errors]),
                "created_at": naive(now),
            }
            for r in lines
        ]
        with self._write() as conn:
            for start in range(0, len(refs), 500):
                conn.execute(
                    delete(t.rejected_lines).where(
                        t.rejected_lines.c.dataset_id == dataset_id,
                        t.rejected_lines.c.source_ref.in_(refs[start : start + 500]),
                    )
                )
            if rows:
                conn.execute(insert(t.rejected_lines), rows)

    def _rejected_query(self, dataset_id: int, source_ref_contains: str | None) -> Select[Any]:
        q = select(t.rejected_lines).where(t.rejected_lines.c.dataset_id == dataset_id)
        if source_ref_contains:
            q = q.where(t.rejected_lines.c.source_ref.contains(source_ref_contains, autoescape=True))
        return q

    def list_rejected_lines(
        self,
        dataset_id: int,
        source_ref_contains: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[RejectedLine]:
        q = (
            self._rejected_query(dataset_id, source_ref_contains)
            .order_by(t.rejected_lines.c.id)
            .offset(offset)
        )
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [_rejected(r._mapping) for r in rows]

    def count_rejected_lines(self, dataset_id: int, source_ref_contains: str | None = None) -> int:
        sub = self._rejected_query(dataset_id, source_ref_contains).subquery()
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(sub)).scalar_one())

    def delete_rejected_line(self, dataset_id: int, line_id: int) -> None:
        with self._write() as conn:
            done = conn.execute(
                delete(t.rejected_lines).where(
                    t.rejected_lines.c.dataset_id == dataset_id, t.rejected_lines.c.id == line_id
                )
            )
        if done.rowcount == 0:
            raise NotFound(f"the dataset has no rejected line {line_id}")

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


def _all_labels(labels: Sequence[str], boxes: Sequence[Box]) -> list[str]:
    return sorted(set(labels) | {b.label for b in boxes})


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
        manifest_line=m["manifest_line"],
    )


def _rejected(m: Any) -> RejectedLine:
    errors = tuple(LineError(e["code"], e["message"]) for e in json.loads(m["errors"]))
    return RejectedLine(m["id"], m["dataset_id"], m["source_ref"], m["line"], errors, utc(m["created_at"]))
