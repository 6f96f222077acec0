"""Buckets and keys that lead out of the buckets folder, and bucket entries that are no files, in the
local object store: nothing is read or written through them, and a FIFO never blocks a read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from visionloop.errors import InvalidKey, ObjectNotFound
from visionloop.storage.files import LocalObjectStore


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path / "buckets")
    store.create_bucket("real")
    store.put("real", "a", b"1")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(b"s")
    os.symlink(tmp_path / "outside", tmp_path / "buckets" / "escape")
    return store


def test_a_bucket_that_links_outside_is_neither_read_nor_written(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    for call in (
        lambda: store.get("escape", "secret"),
        lambda: store.exists("escape", "secret"),
        lambda: list(store.list_objects("escape")),
        lambda: store.put("escape", "new", b"x"),
        lambda: store.put_many("escape", [("n1", b"x"), ("n2", b"y")]),
        lambda: store.move("escape", "secret", "moved"),
        lambda: store.delete("escape", "secret"),
        lambda: store.create_bucket("escape"),
    ):
        with pytest.raises(InvalidKey, match="outside the buckets folder"):
            call()
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["secret"]
    assert store.list_buckets() == ["real"]


def test_a_bucket_linked_inside_the_root_is_another_name_for_it(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    os.symlink(tmp_path / "buckets" / "real", tmp_path / "buckets" / "alias")
    assert store.get("alias", "a") == b"1"


def test_fifos_devices_and_folders_are_no_objects(store: LocalObjectStore, tmp_path: Path) -> None:
    bucket = tmp_path / "buckets" / "real"
    os.mkfifo(bucket / "pipe")
    os.symlink("/dev/zero", bucket / "zero")
    (bucket / "dir").mkdir()
    for key in ("pipe", "dir"):
        with pytest.raises(ObjectNotFound):
            store.get("real", key)
    with pytest.raises(InvalidKey):  # the link leads out of the bucket
        store.get("real", "zero")
    assert [o.key for o in store.list_objects("real")] == ["a"]


def test_reads_stop_just_past_max_bytes(store: LocalObjectStore) -> None:
    store.put("real", "big", b"x" * 1000)
    assert store.get("real", "big", max_bytes=10) == b"x" * 11
    assert store.get("real", "big", max_bytes=1000) == b"x" * 1000
