"""A cache of embeddings, so that retraining only embeds the images it has not seen.

Vectors are keyed by (content hash, backbone name, backbone fingerprint, variant) in one SQLite
file in WAL mode: any number of readers, in threads or processes, and one writer at a time.
It is an engine-level cache, not the metadata database: deleting it only costs time.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from visionloop.engines.backbones import Backbone

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    backbone TEXT NOT NULL,
    version TEXT NOT NULL,
    variant TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (backbone, version, variant, content_hash)
) WITHOUT ROWID
"""
_CHUNK = 500  # keys per SELECT … IN (…), under SQLite's parameter limit
FLIP = "hflip"


def content_hash(data: bytes) -> str:
    """SHA-256 hex of an image's bytes."""
    return hashlib.sha256(data).hexdigest()


class EmbeddingCache:
    """float32 vectors in a SQLite file; ``hits`` and ``misses`` count lookups since opening."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self.hits = 0
        self.misses = 0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        with self._connect() as conn:
            conn.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        # One connection per thread: readers never wait for each other.
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.timeout, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def get_many(
        self, hashes: Sequence[str], backbone: str, version: str, variant: str = ""
    ) -> dict[str, np.ndarray]:
        """The cached vectors among ``hashes`` (a missing hash is absent from the result)."""
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        conn = self._connect()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                "SELECT content_hash, vector FROM embeddings WHERE backbone = ? AND version = ?"
                f" AND variant = ? AND content_hash IN ({marks})",
                (backbone, version, variant, *chunk),
            )
            for key, blob in rows:
                found[key] = np.frombuffer(blob, dtype="<f4").astype(np.float32)
        with self._lock:
            self.hits += len(found)
            self.misses += len(wanted) - len(found)
        return found

    def put_many(
        self, hashes: Sequence[str], vectors: np.ndarray, backbone: str, version: str, variant: str = ""
    ) -> None:
        """Store one vector per hash, replacing any already there, in one transaction."""
        if len(hashes) != len(vectors):
            raise ValueError(f"{len(hashes)} hashes for {len(vectors)} vectors")
        data = np.ascontiguousarray(vectors, dtype="<f4")
        rows = [(backbone, version, variant, h, data[i].tobytes()) for i, h in enumerate(hashes)]
        conn = self._connect()
        with conn:
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings (backbone, version, variant, content_hash, vector)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def count(self, backbone: str | None = None) -> int:
        """Number of stored vectors, for one backbone or all."""
        conn = self._connect()
        if backbone is None:
            row = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()
        else:
            row = conn.execute("SELECT COUNT(*) FROM embeddings WHERE backbone = ?", (backbone,)).fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close every connection this cache opened."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


Item = tuple[str, Callable[[], bytes]]


def _chunks(items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def embed_with_cache(
    backbone: Backbone,
    cache: EmbeddingCache,
    items: Sequence[Item],
    *,
    batch_size: int = 32,
    flip: bool = False,
) -> np.ndarray:
    """Embeddings ``(len(items), dim)`` for ``(content_hash, load_bytes)`` items, in order.

    Only images missing from ``cache`` are loaded and embedded; ``flip`` embeds the mirrored image
    (a test-time augmentation variant, cached separately).
    """
    spec = backbone.spec
    variant = FLIP if flip else ""
    hashes = [h for h, _ in items]
    vectors = cache.get_many(hashes, spec.name, spec.fingerprint, variant)
    vectors = {h: v for h, v in vectors.items() if v.shape == (spec.embedding_dim,)}
    missing = list({h: load for h, load in items if h not in vectors}.items())
    # Bounded chunks keep memory flat for large photos while batches still overlap decoding.
    for chunk in _chunks(missing, batch_size * 8):
        embedded = backbone.embed([load() for _, load in chunk], batch_size=batch_size, flip=flip)
        chunk_hashes = [h for h, _ in chunk]
        cache.put_many(chunk_hashes, embedded, spec.name, spec.fingerprint, variant)
        vectors.update(zip(chunk_hashes, embedded, strict=True))
    out = np.empty((len(items), spec.embedding_dim), dtype=np.float32)
    for i, h in enumerate(hashes):
        out[i] = vectors[h]
    return out
