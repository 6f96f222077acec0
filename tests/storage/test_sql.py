"""The SQL repository's contract, on a SQLite file and on a real PostgreSQL (tests/storage/conftest.py)."""

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


def test_schema_comes_from_the_migrations(repo: SqlRepository) -> None:
    from sqlalchemy import inspect, text

    with repo.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == _head_revision()
    tables = set(inspect(repo.engine).get_table_names())
    expected = {"projects", "datasets", "entries", "entry_labels", "labels", "splits", "model_versions"}
    assert expected | {"jobs"} <= tables
    # migrating again is a no-op and keeps data
    repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    again = SqlRepository(repo.url)
    assert [p.name for p in again.list_projects()] == ["p"]
    again.close()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    SqlRepository(f"sqlite:///{tmp_path / 'meta.db'}").close()
    conn = sqlite3.connect(tmp_path / "meta.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


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


def test_entries_keep_their_perceptual_hash_and_group(repo: SqlRepository) -> None:
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    ds = repo.create_dataset(p.id, DatasetType.TRAIN, NOW)
    hashed = ImageInfo("JPEG", 100, 80, 1234, f"{1:064x}", phash="0123456789abcdef")
    ids = repo.add_entries(
        ds.id,
        [
            NewEntry(hashed, "s3://bkt/1.jpg", ("x",), group="monday"),
            NewEntry(  # the entry's own hash wins over the image's
                ImageInfo("JPEG", 100, 80, 1234, f"{2:064x}", phash="0000000000000000"),
                "s3://bkt/2.jpg",
                ("x",),
                phash="fedcba9876543210",
            ),
            new_entry(3),
        ],
        NOW,
    )
    one, two, three = (repo.get_entry(i) for i in ids)
    assert (one.phash, one.group) == ("0123456789abcdef", "monday")
    assert (two.phash, two.group) == ("fedcba9876543210", None)
    assert (three.phash, three.group) == (None, None)
    repo.set_entry_phashes({three.id: "00ff00ff00ff00ff"})
    assert repo.get_entry(three.id).phash == "00ff00ff00ff00ff"


def test_splits_record_their_groups_and_warnings(repo: SqlRepository) -> None:
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    rec = repo.record_split(p.id, 1, 0.2, ["a"], 4, NOW, n_groups=3, warnings=["careful"])
    assert (rec.n_groups, rec.warnings) == (3, ("careful",))
    assert repo.list_splits(p.id) == [rec]


def test_migration_0010_keeps_entries_and_splits_stored_before(repo_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import DateTime, bindparam, text

    from visionloop.storage.connections import create_db_engine
    from visionloop.storage.sql import MIGRATIONS

    url = repo_url
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    engine = create_db_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009")

    def insert(sql: str, **values: object) -> None:
        stamped = text(sql).bindparams(bindparam("ts", type_=DateTime))
        with engine.begin() as conn:
            conn.execute(stamped, {"ts": datetime(2024, 5, 1, 12, 0), **values})

    insert("INSERT INTO projects (id, name, task, created_at) VALUES (1, 'p', 'classification', :ts)")
    insert(
        "INSERT INTO datasets (id, project_id, type, created_at, updated_at) VALUES (1, 1, 'train', :ts, :ts)"
    )
    insert(
        "INSERT INTO entries (id, dataset_id, content_hash, source_ref, format, width, height, size_bytes, "
        "labels, boxes, source, created_at, updated_at) "
        "VALUES (1, 1, :hash, 'a/b_1.jpg', 'JPEG', 10, 10, 5, '[\"x\"]', '[]', 'import', :ts, :ts)",
        hash="e" * 64,
    )
    insert(
        "INSERT INTO splits (project_id, seed, test_fraction, test_hashes, train_count, test_count, "
        "created_at) VALUES (1, 42, 0.2, '[]', 1, 0, :ts)"
    )
    engine.dispose()

    repo = SqlRepository(url)  # migrates to the head
    try:
        (entry,) = repo.list_entries(1)
        assert (entry.source_ref, entry.labels, entry.phash, entry.group) == ("a/b_1.jpg", ("x",), None, None)
        (split,) = repo.list_splits(1)
        assert (split.train_count, split.n_groups, split.warnings) == (1, 0, ())
        repo.set_entry_phashes({entry.id: "0123456789abcdef"})
        assert repo.get_entry(1).phash == "0123456789abcdef"
    finally:
        repo.close()


def test_writers_in_several_threads_and_processes(repo: SqlRepository) -> None:
    """Read-then-write transactions from 3 processes × 4 threads at once: none fails (SQLite: one writer
    per process, transactions that take the write lock when they begin), no job and no inbox key is
    claimed twice."""
    import multiprocessing

    from tests.storage.writers import write_concurrently

    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    jobs = [repo.create_job("train", p.id, None, NOW).id for _ in range(60)]
    processes, threads, rounds = 3, 4, 20
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        claimed = pool.starmap(
            write_concurrently, [(repo.url, p.id, f"p{k}", threads, rounds) for k in range(processes)]
        )
    assert sorted(job for ids, _ in claimed for job in ids) == jobs
    assert len(repo.list_labels(p.id)) == processes * threads * rounds + rounds
    items = sorted(item for _, ids in claimed for item in ids)  # one claim per key
    assert items == sorted(i.id for i in repo.list_inbox_items(p.id)) and len(items) == rounds


def test_the_migrated_schema_matches_the_table_definitions(repo: SqlRepository) -> None:
    """The migrations (the source of DDL) and storage/schema.py (what the stores query) agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from visionloop.storage.schema import metadata

    with repo.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
