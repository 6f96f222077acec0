from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from visionloop.engines.backbones import Backbone
from visionloop.engines.embeddings import EmbeddingCache, content_hash, embed_with_cache

JpegFactory = Callable[..., bytes]


class Loader:
    """Image bytes by content hash, counting how often each is loaded."""

    def __init__(self, images: list[bytes]) -> None:
        self.images = {content_hash(data): data for data in images}
        self.loads: list[str] = []

    def items(self) -> list[tuple[str, Callable[[], bytes]]]:
        return [(h, self._loader(h)) for h in self.images]

    def _loader(self, key: str) -> Callable[[], bytes]:
        def load() -> bytes:
            self.loads.append(key)
            return self.images[key]

        return load


def test_only_missing_images_are_embedded(lite0: Backbone, tmp_path: Path, make_jpeg: JpegFactory) -> None:
    loader = Loader([make_jpeg(seed) for seed in range(6)])
    items = loader.items()
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache:
        first = embed_with_cache(lite0, cache, items[:4], batch_size=3)
        assert (cache.hits, cache.misses) == (0, 4)
        assert len(loader.loads) == 4

        loader.loads.clear()
        second = embed_with_cache(lite0, cache, items, batch_size=3)
        assert (cache.hits, cache.misses) == (4, 6)
        assert loader.loads == [h for h, _ in items[4:]]  # only the two new images were read
        assert cache.count() == 6 and cache.count(lite0.spec.name) == 6

    np.testing.assert_array_equal(second[:4], first)
    direct = lite0.embed(list(loader.images.values()))
    np.testing.assert_allclose(second, direct, atol=1e-5, rtol=0)
    assert second.dtype == np.float32 and second.shape == (6, 1280)


def test_cache_survives_reopening_and_keys_by_backbone_version_and_variant(
    lite0: Backbone, tmp_path: Path, make_jpeg: JpegFactory
) -> None:
    loader = Loader([make_jpeg(10), make_jpeg(11)])
    path = tmp_path / "emb.sqlite"
    with EmbeddingCache(path) as cache:
        plain = embed_with_cache(lite0, cache, loader.items())
        flipped = embed_with_cache(lite0, cache, loader.items(), flip=True)
    assert not np.allclose(plain, flipped)
    np.testing.assert_allclose(flipped, lite0.embed(list(loader.images.values()), flip=True), atol=1e-5)

    loader.loads.clear()
    with EmbeddingCache(path) as cache:
        np.testing.assert_array_equal(embed_with_cache(lite0, cache, loader.items()), plain)
        np.testing.assert_array_equal(embed_with_cache(lite0, cache, loader.items(), flip=True), flipped)
        assert loader.loads == [] and cache.hits == 4
        hashes = list(loader.images)
        assert cache.get_many(hashes, lite0.spec.name, "another-version") == {}
        assert cache.get_many(hashes, "another-backbone", lite0.spec.fingerprint) == {}


def test_repeated_content_is_embedded_once(lite0: Backbone, tmp_path: Path, make_jpeg: JpegFactory) -> None:
    loader = Loader([make_jpeg(20), make_jpeg(21)])
    a, b = loader.items()
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache:
        out = embed_with_cache(lite0, cache, [a, b, a, a])
    assert sorted(loader.loads) == sorted([a[0], b[0]])
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[0], out[3])
    with EmbeddingCache(tmp_path / "empty.sqlite") as empty:
        assert embed_with_cache(lite0, empty, []).shape == (0, 1280)


def test_thousands_of_vectors_round_trip_quickly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((5000, 1280)).astype(np.float32)
    hashes = [f"{i:064x}" for i in range(5000)]
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache:
        start = time.perf_counter()
        cache.put_many(hashes, vectors, "bb", "v1")
        found = cache.get_many(hashes, "bb", "v1")
        elapsed = time.perf_counter() - start
    assert len(found) == 5000
    np.testing.assert_array_equal(np.stack([found[h] for h in hashes]), vectors)
    assert elapsed < 10, f"5000 vectors took {elapsed:.1f} s"  # about 0.3 s here; generous for CI


def test_concurrent_readers_and_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "emb.sqlite"
    rng = np.random.default_rng(1)
    base = rng.standard_normal((200, 16)).astype(np.float32)
    hashes = [f"h{i}" for i in range(200)]
    with EmbeddingCache(path) as setup:
        setup.put_many(hashes, base, "bb", "v1")
    errors: list[BaseException] = []
    shared, own = EmbeddingCache(path), EmbeddingCache(path)

    def read(cache: EmbeddingCache) -> None:
        try:
            for _ in range(20):
                found = cache.get_many(hashes, "bb", "v1")
                assert len(found) == 200
                np.testing.assert_array_equal(found["h7"], base[7])
        except BaseException as exc:  # reported below
            errors.append(exc)

    def write() -> None:
        try:
            writer = EmbeddingCache(path)
            for i in range(20):
                writer.put_many([f"new{i}"], base[:1], "bb", "v1")
            writer.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(shared,)) for _ in range(3)]
    threads += [threading.Thread(target=read, args=(own,)), threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shared.close()
    own.close()
    assert errors == []
    with EmbeddingCache(path) as cache:
        assert cache.count() == 220
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_put_many_checks_lengths(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache, pytest.raises(ValueError):
        cache.put_many(["a", "b"], np.zeros((1, 4), np.float32), "bb", "v1")


def test_content_hash_is_sha256_hex() -> None:
    assert content_hash(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
