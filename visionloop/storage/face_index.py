"""Nearest faces of a collection by brute force: its vectors in one float32 matrix (rows of unit length),
loaded once per collection and kept in memory, searched with one matrix-vector product.

At 100,000 faces of 128 values the matrix is 51 MB and a search takes a few milliseconds on one core
(bench/face_search.py measures it), so no approximate index is needed at that scale; the exact answer
also keeps SearchFaces deterministic. The product is ``np.einsum`` (numpy's own loop, one thread), not
BLAS: a multi-threaded BLAS matrix-vector product was up to 30 times slower on a busy two-core machine.

The cache is per process and database. A change this process makes is applied to the matrix it holds
(faces appended, removed, given to a user), so IndexFaces does not cost the next search a reload; a
change made by another process bumps the collection's revision in the database, which the next search
reads before it trusts the matrix, and reloads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from visionloop.core.records.collections import StoredFace


@dataclass(frozen=True)
class FaceIndex:
    """A collection's faces at one revision: ``matrix[i]`` is the vector of ``faces[i]``.

    ``matrix`` is the first rows of ``spare``, which has room for more: adding faces writes them into
    the free rows and takes a longer view, instead of copying 51 MB at 100,000 faces each time. Only
    the index the cache holds is ever extended, and an older index's view ends before the rows written,
    so every index stays as it was made."""

    revision: int
    faces: tuple[StoredFace, ...]
    matrix: np.ndarray  # (n, dim) float32: spare[:n]
    positions: dict[str, int]  # face id → row
    spare: np.ndarray | None = None  # (capacity, dim) float32, None: no free rows

    @classmethod
    def build(
        cls, revision: int, faces: Sequence[StoredFace], vectors: Sequence[bytes], dim: int
    ) -> FaceIndex:
        matrix = np.frombuffer(b"".join(vectors), dtype=np.float32).reshape(len(vectors), dim)
        return cls(revision, tuple(faces), matrix, _positions(faces))

    def added(self, faces: Sequence[StoredFace], vectors: Sequence[bytes]) -> FaceIndex:
        new = [(f, v) for f, v in zip(faces, vectors, strict=True) if f.face_id not in self.positions]
        if not new:
            return self
        n, dim = self.matrix.shape
        rows = np.frombuffer(b"".join(v for _, v in new), dtype=np.float32).reshape(len(new), dim)
        spare = self.spare
        if spare is None or spare.shape[0] < n + len(new):
            spare = np.empty((max(1024, (n + len(new)) * 5 // 4), dim), dtype=np.float32)
            spare[:n] = self.matrix
        spare[n : n + len(new)] = rows
        positions = dict(self.positions)  # a copy is cheaper than numbering 100,000 faces again
        positions.update((f.face_id, n + i) for i, (f, _) in enumerate(new))
        grown = self.faces + tuple(f for f, _ in new)
        return FaceIndex(self.revision, grown, spare[: n + len(new)], positions, spare)

    def removed(self, face_ids: Sequence[str]) -> FaceIndex:
        rows = sorted(self.positions[f] for f in set(face_ids) if f in self.positions)
        if not rows:
            return self
        gone = set(rows)
        kept = tuple(f for i, f in enumerate(self.faces) if i not in gone)
        return FaceIndex(self.revision, kept, np.delete(self.matrix, rows, axis=0), _positions(kept), None)

    def with_user(self, face_ids: Sequence[str], user_id: str | None) -> FaceIndex:
        """The faces ``face_ids`` given to ``user_id`` (None: to nobody)."""
        faces = list(self.faces)
        for f in face_ids:
            i = self.positions.get(f)
            if i is not None:
                faces[i] = replace(faces[i], user_id=user_id)
        return replace(self, faces=tuple(faces))

    def vector(self, face_id: str) -> bytes | None:
        i = self.positions.get(face_id)
        return None if i is None else self.matrix[i].tobytes()

    def distances(self, vector: bytes) -> np.ndarray:
        """Euclidean distance from ``vector`` to every face (both of unit length: sqrt(2 - 2 cos))."""
        q = np.frombuffer(vector, dtype=np.float32)
        cos: np.ndarray = np.einsum("ij,j->i", self.matrix, q)
        out: np.ndarray = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * cos))
        return out

    def nearest(
        self, vector: bytes, limit: int, exclude: str | None = None
    ) -> list[tuple[StoredFace, float]]:
        """The ``limit`` nearest faces, nearest first (ties by age), without the face ``exclude``."""
        if not self.faces or limit <= 0:
            return []
        d = self.distances(vector)
        if exclude is not None and exclude in self.positions:
            d[self.positions[exclude]] = np.inf
        k = min(limit, len(d))
        top = np.argpartition(d, k - 1)[:k] if k < len(d) else np.arange(len(d))
        top = top[np.lexsort((top, d[top]))]
        return [(self.faces[i], float(d[i])) for i in top if np.isfinite(d[i])]

    def nearest_users(self, vector: bytes, limit: int, exclude: str | None = None) -> list[tuple[str, float]]:
        """Users by the distance of their nearest face, nearest first, without the user ``exclude``."""
        if not self.faces or limit <= 0:
            return []
        d = self.distances(vector)
        best: dict[str, float] = {}
        for i in np.argsort(d, kind="stable"):
            user = self.faces[i].user_id
            if user is not None and user != exclude and user not in best:
                best[user] = float(d[i])
                if len(best) == limit:
                    break
        return list(best.items())


def _bytes(index: FaceIndex) -> int:
    return int((index.spare if index.spare is not None else index.matrix).nbytes)


def _positions(faces: Sequence[StoredFace]) -> dict[str, int]:
    return {f.face_id: i for i, f in enumerate(faces)}


Loader = Callable[[], tuple[int, list[StoredFace], list[bytes]]]


MAX_HELD_BYTES = 1 << 30  # the matrices a process keeps at most (~2 million faces of 128 values)


class FaceIndexCache:
    """The indexes of one database's collections in this process, reloaded when the revision moves.
    Past ``max_bytes`` of matrices, the indexes searched longest ago are dropped (reloaded when needed)."""

    def __init__(self, max_bytes: int = MAX_HELD_BYTES) -> None:
        self._indexes: OrderedDict[int, FaceIndex] = OrderedDict()
        self._lock = threading.Lock()
        self.max_bytes = max_bytes

    def get(self, collection_id: int, revision: int, dim: int, load: Loader) -> FaceIndex:
        """The index at ``revision`` (the collection's current one) or newer; loaded when missing."""
        with self._lock:
            index = self._indexes.get(collection_id)
            if index is not None and index.revision >= revision:
                self._indexes.move_to_end(collection_id)
                return index
            loaded_revision, faces, vectors = load()
            index = FaceIndex.build(loaded_revision, faces, vectors, dim)
            self._indexes[collection_id] = index
            self._indexes.move_to_end(collection_id)
            self._trim()
            return index

    def _trim(self) -> None:
        """Drop the least recently used indexes while the matrices pass ``max_bytes`` (never the last)."""
        held = sum(_bytes(i) for i in self._indexes.values())
        while held > self.max_bytes and len(self._indexes) > 1:
            _, dropped = self._indexes.popitem(last=False)
            held -= _bytes(dropped)

    def changed(self, collection_id: int, revision: int, change: Callable[[FaceIndex], FaceIndex]) -> None:
        """Apply a change this process made, which took the collection to ``revision``, to the index it
        holds when that is the revision before; otherwise drop the index (the next search reloads)."""
        with self._lock:
            index = self._indexes.get(collection_id)
            if index is None:
                return
            if index.revision == revision - 1:
                self._indexes[collection_id] = replace(change(index), revision=revision)
                self._trim()
            elif index.revision < revision:
                del self._indexes[collection_id]

    def forget(self, collection_id: int) -> None:
        with self._lock:
            self._indexes.pop(collection_id, None)
