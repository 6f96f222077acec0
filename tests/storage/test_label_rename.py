"""Renaming a label in storage (SQLite and PostgreSQL): image-level labels, box labels, the label index
used for filtering and the project's known labels change together; other projects are untouched."""

from __future__ import annotations

from datetime import UTC, datetime

from visionloop.core.entities import Box, DatasetType, EntrySource, ImageInfo, NewEntry, TaskType
from visionloop.core.ports import EntryFilter
from visionloop.storage.sql import SqlRepository

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LATER = datetime(2026, 1, 3, 3, 4, 5, tzinfo=UTC)


def _info(i: int) -> ImageInfo:
    return ImageInfo("JPEG", 100, 80, 1234, f"{i:064x}")


def test_a_rename_rewrites_labels_boxes_and_the_label_index(repo: SqlRepository) -> None:
    project = repo.create_project("p", TaskType.MULTI_LABEL, NOW)
    train = repo.create_dataset(project.id, DatasetType.TRAIN, NOW)
    test = repo.create_dataset(project.id, DatasetType.TEST, NOW)
    box = Box("kitten", 0.1, 0.2, 0.3, 0.4)
    ids = repo.add_entries(
        train.id,
        [
            NewEntry(_info(1), "a.jpg", ("kitten",), (), EntrySource.UPLOAD),
            NewEntry(_info(2), "b.jpg", ("kitten", "cat"), (), EntrySource.UPLOAD),
            NewEntry(_info(3), "c.jpg", ("dog",), (), EntrySource.UPLOAD),
        ],
        NOW,
    )
    (test_id,) = repo.add_entries(test.id, [NewEntry(_info(4), "d.jpg", (), (box,), EntrySource.UPLOAD)], NOW)
    other = repo.create_project("q", TaskType.MULTI_LABEL, NOW)
    other_ds = repo.create_dataset(other.id, DatasetType.TRAIN, NOW)
    repo.add_entries(other_ds.id, [NewEntry(_info(1), "a.jpg", ("kitten",), (), EntrySource.UPLOAD)], NOW)
    repo.add_labels(project.id, ["kitten", "cat", "dog"])
    repo.add_labels(other.id, ["kitten"])

    assert repo.rename_label(project.id, "kitten", "cat", LATER) == 3

    assert [repo.get_entry(i).labels for i in ids] == [("cat",), ("cat",), ("dog",)]
    assert repo.get_entry(test_id).boxes == (Box("cat", 0.1, 0.2, 0.3, 0.4),)
    assert repo.count_entries(train.id, EntryFilter(label="cat")) == 2
    assert repo.count_entries(train.id, EntryFilter(label="kitten")) == 0
    assert repo.count_entries(test.id, EntryFilter(label="cat")) == 1
    assert repo.list_labels(project.id) == ["cat", "dog"]
    assert repo.count_entries(train.id) == 3 and repo.count_entries(test.id) == 1  # nothing lost
    # the other project keeps its label
    assert repo.list_entries(other_ds.id)[0].labels == ("kitten",)
    assert repo.list_labels(other.id) == ["kitten"]


def test_a_rename_of_a_label_no_image_carries_only_renames_the_known_label(repo: SqlRepository) -> None:
    project = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    repo.create_dataset(project.id, DatasetType.TRAIN, NOW)
    repo.add_labels(project.id, ["unused"])
    assert repo.rename_label(project.id, "unused", "spare", LATER) == 0
    assert repo.list_labels(project.id) == ["spare"]
