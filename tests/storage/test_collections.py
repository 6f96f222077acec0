"""The face collections' store on SQLite and PostgreSQL (tests/storage/conftest.py): counts, tags,
vectors as float32 bytes, the revision every change of the faces bumps, users and their faces, and
deleting a collection with all it holds."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import numpy as np
import pytest

from visionloop.core.records.analysis import BoundingBox
from visionloop.core.records.collections import Collection, NewFace, StoredFace, UserStatus
from visionloop.errors import AlreadyExists, NotFound, QuotaExceeded
from visionloop.storage.sql import SqlRepository

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def new_face(i: int, dim: int = 4) -> NewFace:
    vector = np.full(dim, i, dtype=np.float32).tobytes()
    box = BoundingBox(0.1 * i, 0.2, 0.3, 0.4)
    return NewFace(
        f"{i:08x}-0000-0000-0000-000000000000", "img", f"ext-{i}" if i % 2 else None, box, 99.5, vector
    )


def test_collections_are_created_listed_and_tagged(repo: SqlRepository) -> None:
    made = repo.create_collection("b", "dlib-1", 4, {"team": "x"}, NOW)
    repo.create_collection("a", "dlib-1", 4, {}, NOW)
    with pytest.raises(AlreadyExists):
        repo.create_collection("b", "dlib-1", 4, {}, NOW)
    got = repo.get_collection("b")
    assert got == made and got.created_at == NOW and got.tags == {"team": "x"}
    assert [c.name for c in repo.list_collections()] == ["a", "b"]
    repo.set_collection_tags(made.id, {"k": "v"})
    assert repo.get_collection("b").tags == {"k": "v"}
    with pytest.raises(NotFound):
        repo.get_collection("c")


def test_faces_keep_their_vectors_and_bump_the_revision(repo: SqlRepository) -> None:
    c = repo.create_collection("c", "dlib-1", 4, {}, NOW)
    stored = repo.add_faces(c.id, [new_face(1), new_face(2), new_face(3)], NOW)
    assert [f.external_image_id for f in stored] == ["ext-1", None, "ext-3"]
    got = repo.get_collection("c")
    assert (got.face_count, got.revision) == (3, 1)
    assert repo.get_collection("c", counts=False) == Collection(**{**got.__dict__, "face_count": 0})
    revision, listed, vectors = repo.collection_vectors(c.id)
    assert revision == 1 and listed == stored
    assert np.frombuffer(vectors[1], dtype=np.float32).tolist() == [2.0] * 4
    assert [f.face_id for f in repo.list_faces(c.id, offset=1, limit=1)] == [stored[1].face_id]
    assert repo.list_faces(c.id, face_ids=[stored[2].face_id]) == [stored[2]]
    missing = "ffffffff-0000-0000-0000-000000000000"
    assert repo.delete_faces(c.id, [missing, stored[0].face_id]) == [stored[0].face_id]
    assert repo.get_collection("c").revision == 2
    assert repo.delete_faces(c.id, [missing]) == [] and repo.get_collection("c").revision == 2


def test_users_hold_faces_up_to_a_limit(repo: SqlRepository) -> None:
    c = repo.create_collection("c", "dlib-1", 4, {}, NOW)
    a, b, d = (f.face_id for f in repo.add_faces(c.id, [new_face(1), new_face(2), new_face(3)], NOW))
    user = repo.create_user(c.id, "ann", NOW)
    assert (user.status, user.face_count) == (UserStatus.CREATED, 0)
    with pytest.raises(AlreadyExists):
        repo.create_user(c.id, "ann", NOW)
    repo.create_user(c.id, "bob", NOW, token="t1")
    assert repo.create_user(c.id, "bob", NOW, token="t1").user_id == "bob"  # a retry
    with pytest.raises(AlreadyExists):
        repo.create_user(c.id, "bob", NOW, token="t2")
    assert repo.associate_faces(c.id, "ann", [a, b], max_faces=2) == [a, b]
    assert repo.associate_faces(c.id, "bob", [a], max_faces=2) == []  # held by ann
    with pytest.raises(QuotaExceeded):
        repo.associate_faces(c.id, "ann", [d], max_faces=2)
    with pytest.raises(NotFound):
        repo.associate_faces(c.id, "nobody", [d], max_faces=2)
    ann = repo.get_user(c.id, "ann")
    assert (ann.status, ann.face_count) == (UserStatus.ACTIVE, 2)
    assert [f.face_id for f in repo.list_faces(c.id, user_id="ann")] == [a, b]
    assert repo.disassociate_faces(c.id, "ann", [b, d]) == [b]
    assert [(u.user_id, u.face_count) for u in repo.list_users(c.id)] == [("ann", 1), ("bob", 0)]
    assert repo.get_collection("c").user_count == 2
    repo.delete_user(c.id, "ann")
    assert [f.user_id for f in repo.list_faces(c.id)] == [None, None, None]
    with pytest.raises(NotFound):
        repo.delete_user(c.id, "ann")


def test_deleting_a_collection_deletes_its_faces_and_users(repo: SqlRepository) -> None:
    c = repo.create_collection("c", "dlib-1", 4, {}, NOW)
    repo.add_faces(c.id, [new_face(1)], NOW)
    repo.create_user(c.id, "ann", NOW)
    repo.delete_collection(c.id)
    with pytest.raises(NotFound):
        repo.delete_collection(c.id)
    again = repo.create_collection("c", "dlib-1", 4, {}, NOW)
    assert (again.face_count, again.user_count) == (0, 0)
    assert repo.list_faces(again.id) == [] and repo.list_users(again.id) == []
    with pytest.raises(NotFound):
        repo.collection_vectors(c.id)


def unit(*values: float) -> bytes:
    v = np.array(values, dtype=np.float32)
    return (v / np.linalg.norm(v)).astype(np.float32).tobytes()


def test_the_nearest_faces_and_users_follow_every_change(repo: SqlRepository) -> None:
    c = repo.create_collection("c", "dlib-1", 2, {}, NOW)
    box = BoundingBox(0, 0, 1, 1)
    ids = [f"{i:08x}-0000-0000-0000-000000000000" for i in range(4)]
    vectors = [unit(1, 0), unit(1, 0.1), unit(0, 1), unit(-1, 0)]
    repo.add_faces(
        c.id, [NewFace(i, "img", None, box, 99.0, v) for i, v in zip(ids, vectors, strict=True)], NOW
    )
    near = repo.nearest_faces(c.id, unit(1, 0), limit=3)
    assert [f.face_id for f, _ in near] == ids[:3]
    assert near[0][1] == pytest.approx(0, abs=1e-3) and near[2][1] == pytest.approx(2**0.5, abs=1e-3)
    assert [f.face_id for f, _ in repo.nearest_faces(c.id, unit(1, 0), limit=2, exclude=ids[0])] == ids[1:3]
    assert repo.face_vectors(c.id, [ids[2], "nope"]) == {ids[2]: vectors[2]}
    repo.delete_faces(c.id, [ids[1]])  # the cached index is reloaded at the new revision
    assert [f.face_id for f, _ in repo.nearest_faces(c.id, unit(1, 0), limit=2)] == [ids[0], ids[2]]
    repo.create_user(c.id, "east", NOW)
    repo.create_user(c.id, "west", NOW)
    repo.associate_faces(c.id, "east", [ids[0]], max_faces=10)
    repo.associate_faces(c.id, "west", [ids[3]], max_faces=10)
    users = repo.nearest_users(c.id, unit(0.9, 0.1), limit=5)
    assert [u for u, _ in users] == ["east", "west"] and users[0][1] < users[1][1]
    assert [u for u, _ in repo.nearest_users(c.id, unit(1, 0), limit=5, exclude="east")] == ["west"]
    assert repo.user_vectors(c.id, "west") == [vectors[3]]
    other = SqlRepository(repo.url)  # another process's change is seen through the revision
    try:
        other.delete_faces(c.id, [ids[0]])
    finally:
        other.close()
    assert [f.face_id for f, _ in repo.nearest_faces(c.id, unit(1, 0), limit=1)] == [ids[2]]
    repo.delete_collection(c.id)
    with pytest.raises(NotFound):
        repo.nearest_faces(c.id, unit(1, 0), limit=1)


def test_changes_made_here_update_the_held_index_without_a_reload(repo: SqlRepository) -> None:
    c = repo.create_collection("c", "dlib-1", 2, {}, NOW)
    box = BoundingBox(0, 0, 1, 1)
    first = NewFace("00000000-0000-0000-0000-000000000001", "img", None, box, 99.0, unit(1, 0))
    repo.add_faces(c.id, [first], NOW)
    loads: list[int] = []
    load = repo.collection_vectors

    def counted(collection_id: int) -> tuple[int, list[StoredFace], list[bytes]]:
        loads.append(collection_id)
        return load(collection_id)

    repo.collection_vectors = counted  # type: ignore[method-assign]
    assert [f.face_id for f, _ in repo.nearest_faces(c.id, unit(0, 1), limit=5)] == [first.face_id]
    second = NewFace("00000000-0000-0000-0000-000000000002", "img", None, box, 99.0, unit(0, 1))
    repo.add_faces(c.id, [second], NOW)
    assert [f.face_id for f, _ in repo.nearest_faces(c.id, unit(0, 1), limit=5)] == [
        second.face_id,
        first.face_id,
    ]
    repo.create_user(c.id, "u", NOW)
    repo.associate_faces(c.id, "u", [second.face_id], max_faces=5)
    assert repo.nearest_users(c.id, unit(0, 1), limit=5)[0][0] == "u"
    repo.disassociate_faces(c.id, "u", [second.face_id])
    assert repo.nearest_users(c.id, unit(0, 1), limit=5) == []
    repo.delete_faces(c.id, [first.face_id])
    assert [f.face_id for f, _ in repo.nearest_faces(c.id, unit(1, 0), limit=5)] == [second.face_id]
    assert loads == [c.id]  # loaded once; every change since was applied to the matrix held


def test_faces_added_from_threads_are_all_found(repo: SqlRepository) -> None:
    c = repo.create_collection("c", "dlib-1", 4, {}, NOW)
    repo.add_faces(c.id, [new_face(0)], NOW)
    repo.nearest_faces(c.id, unit(1, 1, 1, 1), limit=1)  # an index held while the threads add faces

    def add(start: int) -> None:
        for i in range(start, start + 10):
            repo.add_faces(c.id, [new_face(i)], NOW)
            repo.nearest_faces(c.id, unit(1, 1, 1, 1), limit=1)

    threads = [threading.Thread(target=add, args=(1 + 10 * k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    found = [f.face_id for f, _ in repo.nearest_faces(c.id, unit(1, 1, 1, 1), limit=100)]
    assert len(found) == len(set(found)) == 41 and repo.get_collection("c").revision == 41
