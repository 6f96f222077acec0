"""The in-memory face index: exact nearest faces and users, and the changes applied to it (appended into
spare rows, removed, given to users) leaving every earlier index as it was."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from visionloop.core.records.analysis import BoundingBox
from visionloop.core.records.collections import StoredFace
from visionloop.storage.face_index import FaceIndex, FaceIndexCache

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def stored(i: int, user: str | None = None) -> StoredFace:
    return StoredFace(f"face-{i}", "img", None, BoundingBox(0, 0, 1, 1), 99.0, user, NOW)


def vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def test_nearest_is_exact_and_excludes() -> None:
    v = vectors(50)
    index = FaceIndex.build(1, [stored(i) for i in range(50)], [r.tobytes() for r in v], 8)
    q = v[7]
    expected = np.argsort(np.linalg.norm(v - q, axis=1), kind="stable")[:5]
    got = index.nearest(q.tobytes(), 5)
    assert [f.face_id for f, _ in got] == [f"face-{i}" for i in expected]
    assert abs(got[0][1]) < 1e-3
    assert [f.face_id for f, _ in index.nearest(q.tobytes(), 1, exclude="face-7")] == [f"face-{expected[1]}"]
    assert index.nearest(q.tobytes(), 0) == [] and len(index.nearest(q.tobytes(), 99)) == 50


def test_changes_leave_earlier_indexes_as_they_were() -> None:
    v = vectors(30)
    first = FaceIndex.build(1, [stored(i) for i in range(10)], [r.tobytes() for r in v[:10]], 8)
    grown = first
    for i in range(10, 30):  # into spare rows after the first append
        grown = grown.added([stored(i)], [v[i].tobytes()])
    assert grown.spare is not None and grown.spare.shape[0] >= 30
    assert np.array_equal(grown.matrix, v) and first.matrix.shape == (10, 8)
    assert grown.added([stored(3)], [v[0].tobytes()]) is grown  # a face it has is not added twice
    branch = grown.with_user(["face-29"], "ann")
    later = branch.added([stored(30)], [v[0].tobytes()])
    assert grown.matrix.shape[0] == branch.matrix.shape[0] == 30 and later.matrix.shape[0] == 31
    assert [u for u, _ in later.nearest_users(v[29].tobytes(), 5)] == ["ann"] and grown.faces[
        29
    ].user_id is None
    smaller = later.removed(["face-0", "face-30"])
    assert [f.face_id for f in smaller.faces] == [f"face-{i}" for i in range(1, 30)]
    assert np.array_equal(smaller.matrix, v[1:30]) and smaller.positions["face-1"] == 0
    assert later.matrix.shape[0] == 31 and later.vector("face-30") == v[0].tobytes()


def test_the_cache_drops_the_indexes_searched_longest_ago() -> None:
    v = vectors(10)
    loads: list[int] = []

    def loader(collection_id: int) -> Any:
        def load() -> tuple[int, list[StoredFace], list[bytes]]:
            loads.append(collection_id)
            return 1, [stored(i) for i in range(10)], [r.tobytes() for r in v]

        return load

    cache = FaceIndexCache(max_bytes=2 * v.nbytes)  # room for two collections' matrices
    for collection_id in (1, 2, 1, 3, 1, 2):
        assert cache.get(collection_id, 1, 8, loader(collection_id)).matrix.shape == (10, 8)
    assert loads == [1, 2, 3, 2]  # 2 was dropped for 3, 1 was searched since
    cache.changed(1, 2, lambda index: index.removed(["face-0"]))
    assert cache.get(1, 2, 8, loader(1)).matrix.shape == (9, 8) and loads == [1, 2, 3, 2]
    cache.changed(1, 4, lambda index: index)  # another process changed it meanwhile: dropped
    cache.get(1, 4, 8, loader(1))
    assert loads[-1] == 1
