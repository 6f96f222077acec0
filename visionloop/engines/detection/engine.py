"""The detection engine: train a detector from boxed examples, load one from its artifact files.

This is the API the training lifecycle wires (core.ports.TrainingEngine's role for detection projects):
``DetectionEngine().train(examples, load_image, labels, seed=, max_seconds=, progress=)`` returns a
``TrainedDetector`` whose ``files`` are the artifact, and ``DetectionEngine().load(files)`` returns a
``LoadedDetector`` whose ``detect(images)`` gives, per image, detections with a label, a confidence in
0..1 and a ``core.entities.Box`` in ratios. The engine knows no project, dataset or service.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from visionloop.engines.detection.detector import LoadedDetector, load_detector
from visionloop.engines.detection.features import FeaturePyramid
from visionloop.engines.detection.recipe import DetectorRecipe
from visionloop.engines.detection.records import DetectionExample, ProgressFn
from visionloop.engines.detection.targets import grid
from visionloop.engines.detection.training import (
    TrainingSettings,
    TrainingStats,
    cache_features,
    train_head,
)

CACHE_SHARE = 0.4  # the part of the progress bar the feature caching takes


def _no_progress(fraction: float, stage: str) -> None:
    del fraction, stage


@dataclass(frozen=True)
class TrainedDetector:
    """A training's result: the artifact files, the detector ready to use in this process, and stats."""

    files: dict[str, bytes]
    detector: LoadedDetector
    stats: TrainingStats


class DetectionEngine:
    """Trains and loads FCOS-style detectors on the frozen EfficientNet-Lite0 (see the package docs).

    ``recipe_options`` are DetectorRecipe fields (input_size, width, …) other than the labels; the
    pyramid (the frozen backbone, ~20 MB) is built once per engine and shared by what it trains and loads;
    it runs on ``num_threads`` threads, its exported graphs cached in ``cache_dir`` (another engine's
    ``pyramid`` can be shared).
    """

    def __init__(
        self,
        settings: TrainingSettings | None = None,
        *,
        num_threads: int = 1,
        cache_dir: str | os.PathLike[str] | None = None,
        pyramid: FeaturePyramid | None = None,
        **recipe_options: float | int,
    ) -> None:
        self.settings = settings or TrainingSettings()
        self.recipe_options = recipe_options
        self.num_threads = num_threads
        self.cache_dir = cache_dir
        self._pyramid = pyramid

    @property
    def pyramid(self) -> FeaturePyramid:
        if self._pyramid is None:
            self._pyramid = FeaturePyramid(self.num_threads, self.cache_dir)
        return self._pyramid

    def train(
        self,
        examples: Sequence[DetectionExample],
        load_image: Callable[[str], bytes],
        labels: Sequence[str],
        *,
        seed: int = 0,
        max_seconds: float = 600.0,
        progress: ProgressFn | None = None,
    ) -> TrainedDetector:
        """Train on ``examples`` (boxes of other labels are ignored); ValueError when there is nothing to
        learn. Stops training the head when ``max_seconds`` (counted from the call) have passed."""
        started = time.monotonic()
        report = progress or _no_progress
        names = tuple(dict.fromkeys(labels))
        if not names or not any(b.label in names for ex in examples for b in ex.boxes):
            raise ValueError("no training image has a box of the given labels")
        recipe = DetectorRecipe(labels=names, **self.recipe_options)  # type: ignore[arg-type]
        g = grid(recipe.input_size, recipe.ranges)
        cache = cache_features(
            self.pyramid, examples, load_image, recipe, g, lambda f, s: report(CACHE_SHARE * f, s)
        )
        cached = time.monotonic()
        head, steps, loss = train_head(
            cache,
            recipe,
            self.pyramid,
            g,
            self.settings,
            seed=seed,
            deadline=started + max_seconds,
            progress=lambda f, s: report(CACHE_SHARE + (1 - CACHE_SHARE) * f, s),
        )
        views = len(cache.targets)
        stats = TrainingStats(
            images=len(examples),
            views=views,
            cache_seconds=cached - started,
            train_seconds=time.monotonic() - cached,
            epochs=steps * self.settings.batch_size / max(1, views),
            steps=steps,
            final_loss=loss,
        )
        detector = LoadedDetector(recipe, head, self.pyramid)
        report(1.0, "trained")
        return TrainedDetector(detector.files(), detector, stats)

    def load(self, files: Mapping[str, bytes]) -> LoadedDetector:
        """The detector an artifact holds (see ``TrainedDetector.files``)."""
        return load_detector(files, self.pyramid)
