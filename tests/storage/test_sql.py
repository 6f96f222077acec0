"""The SQLite repository against a real database file."""

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from visionloop.core.entities import Box, DatasetType, EntrySource, ImageInfo, NewEntry, TaskType
from visionloop.core.ports import EntryFilter
from visionloop.errors import AlreadyExists, NotFound
from visionloop.storage.sql import SqlRepository

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def new_entry(i: int, labels: tuple[str, ...] = (), boxes: tuple[Box, ...] = ()) -> NewEntry:
    info = ImageInfo("JPEG", 100, 80, 1234, f"{i:064x}")
    return NewEntry(info, f"s3://bkt/{i}.jpg", labels, boxes, EntrySource.IMPORT)


def _head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from visionloop.storage.sql import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


@pytest.fixture
def repo(tmp_path: Path) -> SqlRepository:
    return SqlRepository(f"sqlite:///{tmp_path / 'meta.db'}")


def test_wal_mode_and_schema_from_migrations(repo: SqlRepository, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "meta.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == _head_revision()
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    expected = {"projects", "datasets", "entries", "entry_labels", "labels", "splits", "model_versions"}
    assert expected | {"jobs"} <= tables
    # migrating again is a no-op and keeps data
    repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    again = SqlRepository(repo.url)
    assert [p.name for p in again.list_projects()] == ["p"]


def test_projects(repo: SqlRepository) -> None:
    p = repo.create_project("p1", TaskType.DETECTION, NOW)
    assert repo.get_project("p1") == p
    assert p.created_at == NOW
    with pytest.raises(AlreadyExists):
        repo.create_project("p1", TaskType.CLASSIFICATION, NOW)
    with pytest.raises(NotFound):
        repo.get_project("nope")


def test_entries_labels_filters_and_cascade(repo: SqlRepository) -> None:
    p = repo.create_project("p", TaskType.MULTI_LABEL, NOW)
    train = repo.create_dataset(p.id, DatasetType.TRAIN, NOW)
    test = repo.create_dataset(p.id, DatasetType.TEST, NOW)
    with pytest.raises(AlreadyExists):
        repo.create_dataset(p.id, DatasetType.TRAIN, NOW)
    box = Box("dog", 0.1, 0.2, 0.3, 0.4)
    ids = repo.add_entries(
        train.id,
        [new_entry(1, ("cat",)), new_entry(2, ("cat", "dog")), new_entry(3), new_entry(4, (), (box,))],
        NOW,
    )
    assert len(ids) == 4
    with pytest.raises(AlreadyExists):
        repo.add_entries(train.id, [new_entry(1)], NOW)
    assert repo.count_entries(train.id) == 4
    assert [e.id for e in repo.list_entries(train.id, EntryFilter(label="dog"))] == [ids[1], ids[3]]
    assert repo.count_entries(train.id, EntryFilter(labeled=False)) == 1
    assert repo.get_entry(ids[3]).boxes == (box,)
    assert repo.get_entry(ids[1]).labels == ("cat", "dog")
    assert repo.list_entries(train.id, offset=1, limit=2)[0].id == ids[1]

    repo.set_entry_labels(ids[2], ["bird"], [], NOW)
    assert repo.count_entries(train.id, EntryFilter(label="bird")) == 1
    repo.move_entries([ids[0]], test.id, NOW)
    assert repo.entry_hashes(test.id) == {f"{1:064x}"}

    repo.add_labels(p.id, ["cat", "dog", "cat"])
    repo.add_labels(p.id, ["bird"])
    assert repo.list_labels(p.id) == ["bird", "cat", "dog"]

    repo.delete_project(p.id)
    assert repo.count_entries(train.id) == 0
    assert repo.find_dataset(p.id, DatasetType.TRAIN) is None


def test_splits_are_recorded(repo: SqlRepository) -> None:
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    rec = repo.record_split(p.id, 42, 0.2, ["a", "b"], 8, NOW)
    assert repo.list_splits(p.id) == [rec]
    assert rec.test_count == 2 and rec.test_hashes == ("a", "b")


def test_concurrent_writers_from_threads(repo: SqlRepository) -> None:
    from concurrent.futures import ThreadPoolExecutor

    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    ds = repo.create_dataset(p.id, DatasetType.TRAIN, NOW)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: repo.add_entries(ds.id, [new_entry(i, ("x",))], NOW), range(200)))
    assert repo.count_entries(ds.id) == 200
