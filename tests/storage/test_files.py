import os
from pathlib import Path

import pytest

from visionloop.errors import InvalidKey, ObjectNotFound
from visionloop.storage.files import LocalObjectStore


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "buckets")


def test_bucket_is_a_plain_folder(store: LocalObjectStore, tmp_path: Path) -> None:
    store.put("photos", "2024/cat.jpg", b"abc")
    assert (tmp_path / "buckets" / "photos" / "2024" / "cat.jpg").read_bytes() == b"abc"
    # a file copied in with any tool is an object
    (tmp_path / "buckets" / "photos" / "dog.jpg").write_bytes(b"woof")
    assert store.get("photos", "dog.jpg") == b"woof"
    assert [o.key for o in store.list_objects("photos")] == ["2024/cat.jpg", "dog.jpg"]
    assert [o.key for o in store.list_objects("photos", "2024/")] == ["2024/cat.jpg"]
    assert [o.key for o in store.list_objects("photos", "do")] == ["dog.jpg"]
    assert store.list_buckets() == ["photos"]


def test_overwrite_is_atomic_and_leaves_no_temporary_files(store: LocalObjectStore, tmp_path: Path) -> None:
    store.put("bk1", "k", b"one")
    store.put("bk1", "k", b"two")
    store.put_many("bk1", [("x/1", b"1"), ("x/2", b"2"), ("k", b"three")])
    assert store.get("bk1", "k") == b"three"
    names = [n for _, _, files in os.walk(tmp_path) for n in files]
    assert not [n for n in names if n.startswith(".tmp-")]


def test_temporary_files_are_never_listed(store: LocalObjectStore, tmp_path: Path) -> None:
    store.put("bk1", "a", b"1")
    (tmp_path / "buckets" / "bk1" / ".tmp-abc").write_bytes(b"half")
    assert [o.key for o in store.list_objects("bk1")] == ["a"]


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "a/../../x", "a\x00b"])
def test_escaping_keys_are_refused_everywhere(store: LocalObjectStore, key: str) -> None:
    store.create_bucket("bk1")
    for call in (
        lambda: store.put("bk1", key, b"x"),
        lambda: store.get("bk1", key),
        lambda: store.exists("bk1", key),
        lambda: store.delete("bk1", key),
        lambda: list(store.list_objects("bk1", key)),
    ):
        with pytest.raises(InvalidKey):
            call()


def test_symlink_out_of_the_bucket_is_refused(store: LocalObjectStore, tmp_path: Path) -> None:
    store.create_bucket("bk1")
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    os.symlink(secret, tmp_path / "buckets" / "bk1" / "link")
    with pytest.raises(InvalidKey):
        store.get("bk1", "link")


def test_missing_objects_and_buckets(store: LocalObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.get("nobucket", "x")
    with pytest.raises(ObjectNotFound):
        list(store.list_objects("nobucket"))
    store.create_bucket("bk1")
    with pytest.raises(ObjectNotFound):
        store.delete("bk1", "x")
    assert not store.exists("bk1", "x")


def test_move_renames_within_the_bucket(store: LocalObjectStore, tmp_path: Path) -> None:
    store.put("bk1", "in/a.jpg", b"image")
    store.move("bk1", "in/a.jpg", "done/deep/a.jpg")
    assert store.get("bk1", "done/deep/a.jpg") == b"image" and not store.exists("bk1", "in/a.jpg")
    store.put("bk1", "b", b"new")
    store.move("bk1", "b", "done/deep/a.jpg")  # replaces
    assert store.get("bk1", "done/deep/a.jpg") == b"new"
    with pytest.raises(ObjectNotFound):
        store.move("bk1", "in/a.jpg", "x")
    with pytest.raises(ObjectNotFound):  # a folder is not an object
        store.move("bk1", "done", "elsewhere")
    for bad in ("../escape", "/abs", ".tmp-x"):
        with pytest.raises(InvalidKey):
            store.move("bk1", "done/deep/a.jpg", bad)
    assert store.get("bk1", "done/deep/a.jpg") == b"new"
