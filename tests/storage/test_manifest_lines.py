"""The storage of manifest lines (SQLite and PostgreSQL): an entry keeps the Ground Truth line it was
imported from, and a dataset keeps the lines an import rejected until they are replaced or deleted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from visionloop.core.entities import DatasetType, EntrySource, ImageInfo, NewEntry, TaskType
from visionloop.core.records.rejected_lines import LineError, NewRejectedLine
from visionloop.errors import NotFound
from visionloop.storage.sql import SqlRepository

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LINE = '{"source-ref":"s3://b/1.jpg","logo":0,"logo-metadata":{"class-name":"a","job-name":"mine"}}'


def _rejected(ref: str | None, code: str = "ERROR_INVALID_IMAGE") -> NewRejectedLine:
    return NewRejectedLine(ref, f'{{"source-ref":"{ref}"}}', (LineError(code, f"{ref} is bad"),))


def test_an_entry_keeps_its_line_as_given_and_the_line_can_be_replaced(repo: SqlRepository) -> None:
    ds = repo.create_dataset(
        repo.create_project("p", TaskType.CLASSIFICATION, NOW).id, DatasetType.TRAIN, NOW
    )
    info = ImageInfo("JPEG", 100, 80, 1234, "a" * 64)
    plain = ImageInfo("JPEG", 100, 80, 1234, "b" * 64)
    ids = repo.add_entries(
        ds.id,
        [
            NewEntry(info, "s3://b/1.jpg", ("a",), (), EntrySource.IMPORT, manifest_line=LINE),
            NewEntry(plain, "upload:2.jpg", ("a",), (), EntrySource.UPLOAD),
        ],
        NOW,
    )
    assert [e.manifest_line for e in repo.list_entries(ds.id)] == [LINE, None]
    repo.set_entry_manifest_lines({ids[0]: None, ids[1]: "{}"})
    assert [repo.get_entry(i).manifest_line for i in ids] == [None, "{}"]


def test_rejected_lines_are_kept_replaced_by_source_ref_filtered_and_deleted(repo: SqlRepository) -> None:
    project = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    ds = repo.create_dataset(project.id, DatasetType.TRAIN, NOW)
    other = repo.create_dataset(project.id, DatasetType.TEST, NOW)
    repo.replace_rejected_lines(
        ds.id, [], [_rejected("s3://b/1.jpg"), _rejected(None), _rejected("s3://b/2%")], NOW
    )
    repo.replace_rejected_lines(other.id, [], [_rejected("s3://b/1.jpg")], NOW)
    kept = repo.list_rejected_lines(ds.id)
    assert [r.source_ref for r in kept] == ["s3://b/1.jpg", None, "s3://b/2%"]
    assert kept[0].errors == (LineError("ERROR_INVALID_IMAGE", "s3://b/1.jpg is bad"),)
    assert kept[0].line == '{"source-ref":"s3://b/1.jpg"}' and kept[0].created_at == NOW
    assert repo.count_rejected_lines(ds.id) == 3
    assert [r.source_ref for r in repo.list_rejected_lines(ds.id, "2%")] == ["s3://b/2%"]
    assert repo.count_rejected_lines(ds.id, "b/") == 2
    assert [r.source_ref for r in repo.list_rejected_lines(ds.id, offset=1, limit=1)] == [None]

    # a later import naming s3://b/1.jpg again replaces its rejected line, in this dataset only
    repo.replace_rejected_lines(
        ds.id, ["s3://b/1.jpg"], [_rejected("s3://b/1.jpg", "ERROR_INVALID_BOUNDING_BOX")], NOW
    )
    assert [r.errors[0].code for r in repo.list_rejected_lines(ds.id)] == [
        "ERROR_INVALID_IMAGE",
        "ERROR_INVALID_IMAGE",
        "ERROR_INVALID_BOUNDING_BOX",
    ]
    repo.replace_rejected_lines(ds.id, ["s3://b/1.jpg"], [], NOW)
    assert repo.count_rejected_lines(ds.id) == 2 and repo.count_rejected_lines(other.id) == 1

    first = repo.list_rejected_lines(ds.id)[0]
    with pytest.raises(NotFound):
        repo.delete_rejected_line(other.id, first.id)
    repo.delete_rejected_line(ds.id, first.id)
    assert repo.count_rejected_lines(ds.id) == 1
    repo.delete_dataset(ds.id)  # its rejected lines go with it
    assert repo.count_rejected_lines(ds.id) == 0


def test_migration_0013_keeps_the_entries_stored_before_with_no_line(repo_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import DateTime, bindparam, text

    from visionloop.storage.connections import create_db_engine
    from visionloop.storage.sql import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    engine = create_db_engine(repo_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0012")
        for sql in (
            "INSERT INTO projects (id, name, task, created_at) VALUES (1, 'p', 'classification', :ts)",
            "INSERT INTO datasets (id, project_id, type, created_at, updated_at) "
            "VALUES (1, 1, 'train', :ts, :ts)",
            "INSERT INTO entries (id, dataset_id, content_hash, source_ref, format, width, height, "
            "size_bytes, labels, boxes, source, created_at, updated_at) "
            f"VALUES (1, 1, '{'e' * 64}', 's3://bkt/a.jpg', 'JPEG', 10, 10, 5, '[\"x\"]', '[]', 'import', "
            ":ts, :ts)",
        ):
            conn.execute(text(sql).bindparams(bindparam("ts", type_=DateTime)), {"ts": datetime(2024, 5, 1)})
    engine.dispose()

    repo = SqlRepository(repo_url)  # migrates to the head
    try:
        (entry,) = repo.list_entries(1)
        assert (entry.source_ref, entry.labels, entry.manifest_line) == ("s3://bkt/a.jpg", ("x",), None)
        assert repo.count_rejected_lines(1) == 0
    finally:
        repo.close()
