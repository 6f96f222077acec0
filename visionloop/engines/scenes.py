"""Scenes: groups of similar photos clustered by what they look like, so that a split or a
cross-validation fold can hold out whole scenes (a display, a shelf, a lighting) rather than single
photos of scenes it also trains on.

Why: a classifier trained on 31 photos per label of grocery-produce and tested on photos split off
the same session scored macro F1 0.95–0.99, but 0.85 on photos of a later session. Holding out whole
visual clusters (five per label, k-means on the embeddings of the photos' groups) gave 0.86 / 0.84 on
the two benchmark subsets, next to the later session's 0.87 / 0.87 (bench/research/README.md,
"Held-out sessions"): what a model scores on scenes it has not seen is what it scores on new photos.

:func:`scene_groups` works on embeddings (numpy only); :class:`EmbeddingScenes` implements
``core.ports.SceneClusterer`` with the bundled EfficientNet-Lite0 and the embedding cache.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from visionloop.core.ports import SCENE_KEY_PREFIX, SceneItem

FloatArray = npt.NDArray[np.float64]
Loader = Callable[[], bytes]
SCENES_PER_STRATUM = 5
MIN_GROUPS_PER_SCENE = 4  # groups a scene holds at least, on average
MIN_SCENES = 4  # a stratum that cannot make this many scenes keeps its groups as they are
SCENE_BACKBONE = "efficientnet-lite0"
SCENE_VIEW = "full"


def n_scenes(n_groups: int, per_stratum: int = SCENES_PER_STRATUM) -> int:
    """How many scenes a stratum of ``n_groups`` groups is clustered into (1: left as it is). Fewer
    than MIN_SCENES (or than ``per_stratum``, if smaller) are not worth it: a split holding out one of
    two or three scenes would put a third or a half of the label in TEST."""
    k = min(per_stratum, n_groups // MIN_GROUPS_PER_SCENE)
    return k if k >= min(MIN_SCENES, per_stratum) and k >= 2 else 1


def scene_groups(
    embeddings: npt.ArrayLike,
    strata: Sequence[str],
    groups: Sequence[str | None] | None = None,
    *,
    per_stratum: int = SCENES_PER_STRATUM,
    seed: int = 0,
) -> list[str]:
    """A scene key per image: within each stratum (e.g. the image's label), the images' groups (None:
    the image alone) are clustered by the mean of their L2-normalised embeddings into
    :func:`n_scenes` clusters with k-means (cosine geometry, seeded k-means++). A group never spans
    two scenes. A stratum too small to cluster keeps its groups as scenes."""
    x = np.asarray(embeddings, dtype=np.float64)
    n = len(strata)
    if x.ndim != 2 or len(x) != n:
        raise ValueError(f"{len(x)} embeddings for {n} images")
    keys = [g if g is not None else f"image:{i}" for i, g in enumerate(groups or [None] * n)]
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    out = [""] * n
    by_stratum: dict[str, dict[str, list[int]]] = {}
    for i, (stratum, key) in enumerate(zip(strata, keys, strict=True)):
        by_stratum.setdefault(stratum, {}).setdefault(key, []).append(i)
    for stratum in sorted(by_stratum):
        members = by_stratum[stratum]
        names = sorted(members)
        k = n_scenes(len(names), per_stratum)
        if k < 2:
            for name in names:
                for i in members[name]:
                    out[i] = name
            continue
        centres = np.stack([x[members[name]].mean(0) for name in names])
        weights = np.array([len(members[name]) for name in names], dtype=np.float64)
        rng = np.random.default_rng(_seed(seed, stratum))
        assign = _merge_small(centres, weights, _kmeans(centres, weights, k, rng))
        for name, cluster in zip(names, assign, strict=True):
            for i in members[name]:
                out[i] = f"{SCENE_KEY_PREFIX}{stratum}:{cluster}"
    return out


def _seed(seed: int, stratum: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{stratum}".encode()).digest()[:8], "big")


def _kmeans(
    x: FloatArray, weights: FloatArray, k: int, rng: np.random.Generator, iterations: int = 50
) -> npt.NDArray[np.int64]:
    """Weighted k-means (k-means++ start) on rows of ``x``; every cluster keeps at least one row."""
    # not sklearn's KMeans: on duplicate rows it returns fewer clusters than asked (ConvergenceWarning)
    n = len(x)
    centres = [x[int(rng.integers(n))]]
    for _ in range(1, k):
        d = np.min([((x - c) ** 2).sum(1) for c in centres], axis=0) * weights
        total = d.sum()
        pick = int(rng.choice(n, p=d / total)) if total > 0 else int(rng.integers(n))
        centres.append(x[pick])
    c = np.stack(centres)
    assign = np.zeros(n, dtype=np.int64)
    for _ in range(iterations):
        distances = ((x[:, None, :] - c[None, :, :]) ** 2).sum(2)
        new = distances.argmin(1)
        for j in range(k):  # an empty cluster takes the row farthest from its centre
            if not (new == j).any():
                movable = np.bincount(new, minlength=k)[new] > 1  # its cluster keeps another row
                far = int(np.where(movable, distances[np.arange(n), new], -1.0).argmax())
                new[far] = j
        if (new == assign).all() and _ > 0:
            break
        assign = new
        for j in range(k):
            w = weights[assign == j]
            c[j] = (x[assign == j] * w[:, None]).sum(0) / w.sum()
    return assign


def _merge_small(
    x: FloatArray, weights: FloatArray, assign: npt.NDArray[np.int64], min_share: float = 0.5
) -> npt.NDArray[np.int64]:
    """Fold clusters holding less than ``min_share`` of an average cluster's images into the nearest
    other cluster (an odd photo is not a scene: a TEST scene of one image says nothing), keeping two."""
    assign = assign.copy()
    while True:
        ids = np.unique(assign)
        if len(ids) <= 2:
            break
        sizes = np.array([weights[assign == j].sum() for j in ids])
        smallest = int(sizes.argmin())
        if sizes[smallest] >= min_share * weights.sum() / len(ids):
            break
        centres = np.stack([np.average(x[assign == j], axis=0, weights=weights[assign == j]) for j in ids])
        distances = ((centres - centres[smallest]) ** 2).sum(1)
        distances[smallest] = np.inf
        assign[assign == ids[smallest]] = ids[int(distances.argmin())]
    _, dense = np.unique(assign, return_inverse=True)
    return dense.astype(np.int64)


class EmbeddingScenes:
    """Implements core.ports.SceneClusterer: embeds the images of the strata big enough to cluster
    with EfficientNet-Lite0 (whole image; through the embedding cache training reads too) and
    clusters them with :func:`scene_groups`."""

    def __init__(self, cache_dir: str | os.PathLike[str], num_threads: int | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.num_threads = num_threads
        self._lock = threading.Lock()
        self._embed: Callable[[Sequence[tuple[str, Loader]]], npt.NDArray[np.float32]] | None = None

    def _embedder(self) -> Callable[[Sequence[tuple[str, Loader]]], npt.NDArray[np.float32]]:
        with self._lock:
            if self._embed is None:
                from visionloop.engines.classification import ClassificationEngine
                from visionloop.engines.embeddings import embed_with_cache
                from visionloop.engines.recipe import view_backbone

                engine = ClassificationEngine(self.cache_dir, num_threads=self.num_threads)
                cache = engine.embeddings()
                backbone = view_backbone(
                    SCENE_BACKBONE,
                    SCENE_VIEW,
                    num_threads=self.num_threads,
                    cache_dir=self.cache_dir / "onnx",
                )

                def embed(items: Sequence[tuple[str, Loader]]) -> npt.NDArray[np.float32]:
                    return embed_with_cache(backbone, cache, items, flip=False)

                self._embed = embed
            return self._embed

    def scenes(self, items: Sequence[SceneItem], load: Callable[[str], bytes], seed: int) -> dict[str, str]:
        groups_per_stratum: dict[str, set[str]] = {}
        for item in items:
            groups_per_stratum.setdefault(item.stratum, set()).add(item.group)
        wanted = [it for it in items if n_scenes(len(groups_per_stratum[it.stratum])) >= 2]
        out = {it.content_hash: it.group for it in items}
        if not wanted:
            return out
        x = self._embedder()([(it.content_hash, functools.partial(load, it.content_hash)) for it in wanted])
        keys = scene_groups(x, [it.stratum for it in wanted], [it.group for it in wanted], seed=seed)
        out.update({it.content_hash: key for it, key in zip(wanted, keys, strict=True)})
        return out
