"""A trained detector in memory: frozen pyramid + head + recipe, and its artifact files (save/load)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from visionloop.engines.detection.decode import decode
from visionloop.engines.detection.features import FeaturePyramid
from visionloop.engines.detection.head import FcosHead, flatten
from visionloop.engines.detection.recipe import RECIPE_FILE, WEIGHTS_FILE, DetectorRecipe
from visionloop.engines.detection.records import Detection
from visionloop.engines.detection.targets import Grid, grid


def build_head(recipe: DetectorRecipe, pyramid: FeaturePyramid) -> FcosHead:
    """An untrained head shaped by the recipe for the pyramid's channels."""
    return FcosHead(pyramid.channels, len(recipe.labels), recipe.width, recipe.tower_depth)


def head_outputs(
    head: FcosHead, features: Sequence[torch.Tensor], g: Grid
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flattened (class logits (N, L, K), distances in pixels (N, L, 4), centerness logits (N, L))."""
    cls, log_dist, ctr = flatten(head(features))
    strides = torch.from_numpy(g.strides)[None, :, None]
    return cls, torch.exp(log_dist) * strides, ctr


class LoadedDetector:
    """Detects objects in encoded images; one torch thread, no state changed by ``detect``."""

    def __init__(self, recipe: DetectorRecipe, head: FcosHead, pyramid: FeaturePyramid | None = None) -> None:
        self.recipe = recipe
        self.pyramid = pyramid or FeaturePyramid()
        self.head = head.eval()
        self.grid = grid(recipe.input_size, recipe.ranges)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.recipe.labels

    def detect(self, images: Sequence[bytes]) -> list[list[Detection]]:
        """For each image, its detections (label, confidence 0..1, box in ratios), highest first."""
        return [self._detect_one(data) for data in images]

    def _detect_one(self, data: bytes) -> list[Detection]:
        features = self.pyramid.of_images([data], self.recipe.input_size)
        with torch.inference_mode():
            cls, dist, ctr = head_outputs(self.head, features, self.grid)
            scores = torch.sqrt(torch.sigmoid(cls[0]) * torch.sigmoid(ctr[0])[:, None])
        return decode(scores.numpy(), dist[0].numpy(), self.grid, self.recipe)

    def files(self) -> dict[str, bytes]:
        """The artifact: the recipe (JSON) and the head's weights (npz); the backbone is the package's."""
        buf = io.BytesIO()
        np.savez(buf, **{k: v.detach().cpu().numpy() for k, v in self.head.state_dict().items()})
        return {RECIPE_FILE: self.recipe.to_json(), WEIGHTS_FILE: buf.getvalue()}


def load_detector(files: Mapping[str, bytes], pyramid: FeaturePyramid | None = None) -> LoadedDetector:
    """The detector saved by ``LoadedDetector.files``; ValueError for missing or foreign files."""
    missing = {RECIPE_FILE, WEIGHTS_FILE} - set(files)
    if missing:
        raise ValueError(f"not a detector artifact: missing {sorted(missing)}")
    recipe = DetectorRecipe.from_json(files[RECIPE_FILE])
    pyramid = pyramid or FeaturePyramid()
    head = build_head(recipe, pyramid)
    with np.load(io.BytesIO(files[WEIGHTS_FILE]), allow_pickle=False) as saved:
        state = {k: torch.from_numpy(saved[k]) for k in saved.files}
    head.load_state_dict(state, strict=True)
    return LoadedDetector(recipe, head, pyramid)
