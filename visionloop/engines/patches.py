"""Patch scores: how far an image's most unusual patch lies from the patches of each label's training
images (PatchCore's idea, Roth et al. 2022), as extra features for the linear head's decision.

A small defect changes a few patches of a surface that is otherwise like every good one; the pooled
embedding the linear head reads averages it away. Here every image is seen by EfficientNet-Lite0 at
``size`` pixels (the detection engine's :class:`~visionloop.engines.detection.features.FeaturePyramid`);
its stride-8 and stride-16 maps, each averaged over 3×3 neighbours and the coarser one brought to the
finer grid, give one 152-dimensional descriptor per patch. Each label keeps a *bank*: a greedy
k-centre coreset of the patches of its training images. An image's score for a label is the distance
of its patch that lies farthest from that label's bank (each patch measured to its nearest bank patch).

On magnetic-tile's held-out tiles this ranked Free against Defect better than the linear head (AUROC
0.865 against 0.785 on average over three splits at 448 px, ``bench/research/README.md``). The
selection (:mod:`visionloop.engines.selection`) stacks the scores on the linear head's logits and keeps
the stack only when grouped cross-validation prefers it.

torch is imported by the feature pyramid only, so importing this module is cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from visionloop.engines.detection.features import FeaturePyramid

FloatArray = npt.NDArray[np.float64]
#: Patches a coreset is chosen from (a random sample of the label's patches), and the dimension of the
#: random projection the greedy selection measures distances in (PatchCore's own shortcut).
CORESET_POOL = 40_000
CORESET_PROJECTION = 64
#: Images whose maps go through the network at once.
PATCH_BATCH = 16
#: Query patches measured against a bank at once (bounds the distance matrix: 4,096 × bank floats).
_QUERY_CHUNK = 4096


def patch_maps(
    pyramid: FeaturePyramid,
    images: Sequence[bytes],
    size: int,
    progress: Callable[[int], None] | None = None,
) -> npt.NDArray[np.float16]:
    """``(n, patches, dim)`` float16 patch descriptors of encoded images seen at ``size``×``size``
    (squashed, as the feature pyramid does). ``progress(done)`` is called after each batch."""
    import torch

    parts = []
    for start in range(0, len(images), PATCH_BATCH):
        fine, coarse, _ = pyramid.of_images(images[start : start + PATCH_BATCH], size)
        fine = torch.nn.functional.avg_pool2d(fine, 3, 1, 1)
        coarse = torch.nn.functional.avg_pool2d(coarse, 3, 1, 1)
        coarse = torch.nn.functional.interpolate(
            coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False
        )
        maps = torch.cat([fine, coarse], 1)  # N, D, H, W
        parts.append(maps.flatten(2).transpose(1, 2).numpy().astype(np.float16))
        if progress is not None:
            progress(min(len(images), start + PATCH_BATCH))
    if not parts:
        return np.zeros((0, 0, 0), dtype=np.float16)
    return np.concatenate(parts)


def coreset(
    patches: npt.NDArray[Any], n: int, seed: int, pool: int = CORESET_POOL
) -> npt.NDArray[np.float16]:
    """``n`` patches that cover ``patches`` (greedy k-centre: each next one the farthest from those
    chosen), chosen among a random ``pool`` of them on a random projection; all of them when fewer."""
    rng = np.random.default_rng(seed)
    if len(patches) > pool:
        patches = patches[np.sort(rng.choice(len(patches), pool, replace=False))]
    if len(patches) <= n:
        return np.asarray(patches, dtype=np.float16)
    x = np.asarray(patches, dtype=np.float32)
    proj = x @ rng.normal(size=(x.shape[1], CORESET_PROJECTION)).astype(np.float32)
    first = int(rng.integers(len(x)))
    chosen = [first]
    dist = ((proj - proj[first]) ** 2).sum(1)
    for _ in range(n - 1):
        i = int(np.argmax(dist))
        chosen.append(i)
        np.minimum(dist, ((proj - proj[i]) ** 2).sum(1), out=dist)
    return np.asarray(patches[np.sort(chosen)], dtype=np.float16)


def farthest_patch(maps: npt.NDArray[Any], bank: npt.NDArray[Any]) -> FloatArray:
    """Per image of ``maps`` ``(n, patches, dim)``: the distance of its patch farthest from ``bank``
    (each patch measured to its nearest bank patch)."""
    b = np.asarray(bank, dtype=np.float32)
    bb = (b * b).sum(1)
    n, m, d = maps.shape
    flat = maps.reshape(n * m, d)
    nearest = np.empty(n * m, dtype=np.float32)
    for start in range(0, n * m, _QUERY_CHUNK):
        q = np.asarray(flat[start : start + _QUERY_CHUNK], dtype=np.float32)
        d2 = (q * q).sum(1)[:, None] + bb[None, :] - 2.0 * (q @ b.T)
        nearest[start : start + len(q)] = d2.min(1)
    out: FloatArray = np.sqrt(np.maximum(nearest, 0.0)).reshape(n, m).max(1).astype(np.float64)
    return out


@dataclass
class PatchBanks:
    """One bank of patches per label, and the input size the patches were seen at."""

    size: int
    banks: list[npt.NDArray[np.float16]]

    @classmethod
    def build(
        cls,
        maps: npt.NDArray[Any],
        members: Sequence[npt.NDArray[np.int64]],
        size: int,
        bank_size: int,
        seed: int,
    ) -> PatchBanks:
        """A bank per label from the maps of its images (``members[label]``, indices into ``maps``);
        a label without images gets an empty bank (its score is then undefined: NaN)."""
        banks = []
        per_image = maps.shape[1]
        for label, idx in enumerate(members):
            if len(idx) == 0:
                banks.append(np.zeros((0, maps.shape[2]), dtype=np.float16))
                continue
            # the coreset's random pool, drawn without copying every patch of the label's images first
            total = len(idx) * per_image
            rng = np.random.default_rng(seed + label)
            pick = (
                np.sort(rng.choice(total, CORESET_POOL, replace=False))
                if total > CORESET_POOL
                else np.arange(total)
            )
            pool = maps[np.asarray(idx)[pick // per_image], pick % per_image]
            banks.append(coreset(pool, bank_size, seed + label))
        return cls(size, banks)

    def scores(self, maps: npt.NDArray[Any]) -> FloatArray:
        """``(n, n_labels)``: per image and label, the distance of its most unusual patch to the bank."""
        cols = [
            farthest_patch(maps, bank) if len(bank) else np.full(len(maps), np.nan) for bank in self.banks
        ]
        return np.stack(cols, axis=1) if cols else np.zeros((len(maps), 0))

    def state(self, prefix: str) -> dict[str, npt.NDArray[Any]]:
        return {f"{prefix}{k}": bank for k, bank in enumerate(self.banks)}

    @classmethod
    def from_state(cls, size: int, n_labels: int, arrays: Any, prefix: str) -> PatchBanks:
        return cls(size, [np.asarray(arrays[f"{prefix}{k}"], dtype=np.float16) for k in range(n_labels)])


def feature_pyramid(num_threads: int, cache_dir: str | os.PathLike[str] | None) -> FeaturePyramid:
    """The feature pyramid patch maps come from (Lite0, fp32, ONNX Runtime)."""
    from visionloop.engines.detection.features import FeaturePyramid

    return FeaturePyramid(num_threads=num_threads, cache_dir=cache_dir)
