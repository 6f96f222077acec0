"""engines.scenes: groups of similar photos clustered into scenes per stratum (synthetic embeddings for
the clustering rules, real grocery-produce photos for EmbeddingScenes and its embedding cache)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from visionloop.core.ports import SceneClusterer, SceneItem
from visionloop.engines.embeddings import EmbeddingCache
from visionloop.engines.scenes import (
    MIN_GROUPS_PER_SCENE,
    MIN_SCENES,
    SCENE_BACKBONE,
    SCENES_PER_STRATUM,
    EmbeddingScenes,
    _kmeans,
    _merge_small,
    n_scenes,
    scene_groups,
)

DIM = 16


def blobs(
    n_blobs: int,
    groups_per_blob: int,
    per_group: int = 2,
    noise: float = 0.01,
    seed: int = 0,
    stratum: str = "s",
) -> tuple[np.ndarray, list[str], list[str], list[int]]:
    """Images in groups, the groups in ``n_blobs`` well-separated directions: (embeddings, strata,
    groups, the blob of each image)."""
    rng = np.random.default_rng(seed)
    rows, groups, blob_of = [], [], []
    for b in range(n_blobs):
        direction = np.zeros(DIM)
        direction[b] = 1.0
        for g in range(groups_per_blob):
            for _ in range(per_group):
                rows.append(direction + rng.normal(0, noise, DIM))
                groups.append(f"{stratum}-b{b}-g{g}")
                blob_of.append(b)
    return np.array(rows), [stratum] * len(rows), groups, blob_of


def partition(keys: Sequence[str]) -> set[frozenset[int]]:
    """The images' clusters as sets of positions (what is the same whatever the keys are called)."""
    members: dict[str, set[int]] = defaultdict(set)
    for i, key in enumerate(keys):
        members[key].add(i)
    return {frozenset(m) for m in members.values()}


# --- n_scenes and small strata ---------------------------------------------------------------------------


def test_n_scenes_needs_enough_scenes_worth_of_groups_and_is_capped() -> None:
    assert n_scenes(2 * MIN_GROUPS_PER_SCENE) == 1  # holding out one of two scenes is half the label
    assert n_scenes(MIN_SCENES * MIN_GROUPS_PER_SCENE - 1) == 1
    assert n_scenes(MIN_SCENES * MIN_GROUPS_PER_SCENE) == MIN_SCENES
    assert n_scenes(1000) == SCENES_PER_STRATUM
    assert n_scenes(1000, per_stratum=3) == 3
    assert n_scenes(0) == 1


def test_a_stratum_too_small_to_cluster_keeps_its_groups_as_scene_keys() -> None:
    n_groups = 2 * MIN_GROUPS_PER_SCENE - 1
    x, strata, groups, _ = blobs(1, n_groups)
    keys = scene_groups(x, strata, groups)
    assert keys == groups
    # images without a group are each their own key
    alone = scene_groups(x[:3], ["s"] * 3, None)
    assert alone == ["image:0", "image:1", "image:2"]
    assert scene_groups(x[:3], ["s"] * 3, ["g", None, "g"]) == ["g", "image:1", "g"]


def test_embeddings_and_strata_must_match() -> None:
    with pytest.raises(ValueError, match="2 embeddings for 3 images"):
        scene_groups(np.ones((2, DIM)), ["a", "a", "a"])


# --- clustering ------------------------------------------------------------------------------------------


def test_a_group_never_spans_two_scenes() -> None:
    rng = np.random.default_rng(1)
    for trial in range(10):
        n = 60
        x = rng.normal(size=(n, DIM))
        # groups of 1 to 5 images that look nothing alike, over two strata
        groups = [f"g{int(v)}" for v in np.sort(rng.integers(0, 25, n))]
        strata = ["a" if int(g[1:]) % 2 else "b" for g in groups]
        keys = scene_groups(x, strata, groups, seed=trial)
        for group in set(groups):
            found = {k for k, g in zip(keys, groups, strict=True) if g == group}
            assert len(found) == 1, f"trial {trial}: group {group} spans {found}"


def test_well_separated_blobs_come_out_as_scenes() -> None:
    x, strata, groups, blob_of = blobs(3, 6)
    expected = partition([str(b) for b in blob_of])
    for seed in range(5):
        assert partition(scene_groups(x, strata, groups, per_stratum=3, seed=seed)) == expected
        # with more clusters than blobs (18 groups → 4), one blob is cut in two (or its smaller part is
        # merged back): a scene still never mixes two blobs
        keys = scene_groups(x, strata, groups, seed=seed)
        assert n_scenes(18) == 4 and len(set(keys)) in (3, 4)
        for key in set(keys):
            assert len({b for k, b in zip(keys, blob_of, strict=True) if k == key}) == 1


def test_same_seed_same_scenes_whatever_the_order_of_the_images() -> None:
    x, strata, groups, _ = blobs(4, 5, noise=0.3, seed=2)  # overlapping blobs: the choice is the seed's
    first = scene_groups(x, strata, groups, seed=7)
    assert scene_groups(x, strata, groups, seed=7) == first
    order = np.random.default_rng(0).permutation(len(x))
    shuffled = scene_groups(x[order], [strata[i] for i in order], [groups[i] for i in order], seed=7)
    assert partition([shuffled[list(order).index(i)] for i in range(len(x))]) == partition(first)


def test_strata_are_clustered_independently() -> None:
    xa, sa, ga, _ = blobs(3, 6, stratum="apple")
    xb, sb, gb, _ = blobs(3, 6, seed=1, stratum="kiwi")
    both = scene_groups(np.concatenate([xa, xb]), sa + sb, ga + gb, seed=3)
    assert all(k.startswith("scene:apple:") for k in both[: len(xa)])
    assert all(k.startswith("scene:kiwi:") for k in both[len(xa) :])
    # the same blobs in two strata never share a scene, and each stratum clusters as it would alone
    assert not set(both[: len(xa)]) & set(both[len(xa) :])
    assert both[: len(xa)] == scene_groups(xa, sa, ga, seed=3)
    assert both[len(xa) :] == scene_groups(xb, sb, gb, seed=3)


def test_no_scene_smaller_than_half_an_average_scene() -> None:
    rng = np.random.default_rng(5)
    for trial in range(10):
        x = rng.normal(size=(80, DIM))
        groups = [f"g{i // 2}" for i in range(80)]
        keys = scene_groups(x, ["s"] * 80, groups, seed=trial)
        sizes = np.array(list({k: keys.count(k) for k in keys}.values()))
        assert len(sizes) >= 2
        assert len(sizes) == 2 or sizes.min() >= 0.5 * sizes.sum() / len(sizes), f"trial {trial}: {sizes}"


def test_merge_small_folds_an_odd_photo_into_the_nearest_cluster() -> None:
    x = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.1, 0.0], [20.0, 0.0], [20.1, 0.0], [11.0, 0.0]])
    weights = np.array([5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 1.0])
    assign = np.array([0, 0, 1, 1, 2, 2, 3])
    merged = _merge_small(x, weights, assign)
    np.testing.assert_array_equal(merged, [0, 0, 1, 1, 2, 2, 1])  # the odd photo joins its neighbour
    # clusters big enough are left alone (and numbered densely)
    np.testing.assert_array_equal(
        _merge_small(x[:6], weights[:6], np.array([4, 4, 7, 7, 9, 9])), [0, 0, 1, 1, 2, 2]
    )


def test_merge_small_keeps_two_clusters_however_small() -> None:
    x = np.array([[0.0], [0.1], [0.2], [5.0]])
    weights = np.array([10.0, 10.0, 10.0, 1.0])
    np.testing.assert_array_equal(_merge_small(x, weights, np.array([0, 0, 0, 1])), [0, 0, 0, 1])
    # three clusters, two tiny: they merge until two are left
    x3 = np.array([[0.0], [0.1], [5.0], [9.0]])
    merged = _merge_small(x3, np.array([20.0, 20.0, 1.0, 1.0]), np.array([0, 0, 1, 2]))
    assert len(set(merged.tolist())) == 2 and merged[0] == merged[1]


def test_kmeans_keeps_every_cluster_even_on_identical_rows() -> None:
    """Duplicated photos in different groups embed alike: no cluster may end up empty (nor a NaN centre)."""
    x = np.vstack([np.ones((5, 4)), np.zeros((1, 4))])
    for k in (2, 3, 4):
        assign = _kmeans(x, np.ones(len(x)), k, np.random.default_rng(0))
        assert sorted(set(assign.tolist())) == list(range(k))
    same = np.ones((8, 4))
    assign = _kmeans(same, np.ones(8), 3, np.random.default_rng(0))
    assert sorted(set(assign.tolist())) == [0, 1, 2]
    n = MIN_SCENES * MIN_GROUPS_PER_SCENE
    keys = scene_groups(np.ones((n, 4)), ["s"] * n, [f"g{i}" for i in range(n)])
    assert len(set(keys)) >= 2 and all(k.startswith("scene:") for k in keys)


# --- EmbeddingScenes on real photos ------------------------------------------------------------------------


class RecordingLoader:
    """The ``load`` a split gives: bytes by content hash, remembering every hash it was asked for."""

    def __init__(self, photos: dict[str, bytes]) -> None:
        self.photos = photos
        self.asked: list[str] = []

    def __call__(self, content_hash: str) -> bytes:
        self.asked.append(content_hash)
        return self.photos[content_hash]


def grocery_items(
    root: Path, per_label: dict[str, int], per_group: int = 3
) -> tuple[list[SceneItem], dict[str, bytes]]:
    """The first photos of each label, in groups of ``per_group`` consecutive files; stratum: the label."""
    items, photos = [], {}
    for label, n in per_label.items():
        files = sorted((root / label).glob("train_*.jpg"))[:n]
        assert len(files) == n, f"{label} has only {len(files)} photos"
        for i, f in enumerate(files):
            data = f.read_bytes()
            h = hashlib.sha256(data).hexdigest()
            photos[h] = data
            items.append(SceneItem(h, f"{label}-{i // per_group}", label))
    return items, photos


@pytest.fixture
def scene_cache(tmp_path: Path, onnx_cache: Path) -> Path:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "onnx").symlink_to(onnx_cache, target_is_directory=True)  # reuse the session's exports
    return cache


def test_embedding_scenes_on_real_photos_uses_the_cache_and_skips_small_strata(
    grocery_dir: Path, scene_cache: Path
) -> None:
    # Kiwi and Banana: 24 groups each (clustered); Carrots: 6 groups (too few, never embedded)
    items, photos = grocery_items(grocery_dir, {"Kiwi": 24, "Banana": 24, "Carrots": 6}, per_group=1)
    clusterer: SceneClusterer = EmbeddingScenes(scene_cache, num_threads=2)
    load = RecordingLoader(photos)
    scenes = clusterer.scenes(items, load, seed=0)

    assert set(scenes) == {it.content_hash for it in items}
    for it in items:
        same_group = {scenes[o.content_hash] for o in items if o.group == it.group}
        assert same_group == {scenes[it.content_hash]}
        if it.stratum == "Carrots":
            assert scenes[it.content_hash] == it.group
        else:
            assert scenes[it.content_hash].startswith(f"scene:{it.stratum}:")
    for label in ("Kiwi", "Banana"):
        found = len({scenes[it.content_hash] for it in items if it.stratum == label})
        assert 2 <= found <= n_scenes(24) == SCENES_PER_STRATUM
    carrots = {it.content_hash for it in items if it.stratum == "Carrots"}
    assert not carrots & set(load.asked), "a stratum too small to cluster is not embedded"
    assert sorted(load.asked) == sorted(h for h in photos if h not in carrots)

    with EmbeddingCache(scene_cache / "embeddings.sqlite") as cache:
        assert cache.count(SCENE_BACKBONE) == 48
    # a second call, and a fresh clusterer on the same cache, embed nothing new and agree
    again = RecordingLoader(photos)
    assert clusterer.scenes(items, again, seed=0) == scenes
    assert EmbeddingScenes(scene_cache, num_threads=2).scenes(items, again, seed=0) == scenes
    assert again.asked == []
    with EmbeddingCache(scene_cache / "embeddings.sqlite") as cache:
        assert cache.count() == 48


def test_embedding_scenes_with_only_small_strata_loads_nothing(tmp_path: Path) -> None:
    items = [SceneItem(f"{i:064x}", f"g{i // 2}", "a") for i in range(6)]
    load = RecordingLoader({})
    scenes = EmbeddingScenes(tmp_path / "cache").scenes(items, load, seed=0)
    assert scenes == {it.content_hash: it.group for it in items}
    assert load.asked == [] and not (tmp_path / "cache" / "embeddings.sqlite").exists()
