"""Object detection: an FCOS-style head on the frozen, multi-scale EfficientNet-Lite0, trainable on a
2-core CPU in minutes because the backbone runs once per training image (and its mirror image).

Public API: ``DetectionEngine`` (train, load), ``TrainedDetector``, ``LoadedDetector`` (detect),
``DetectionExample``, ``Detection``, ``DetectorRecipe``, ``TrainingSettings``; evaluation in
``visionloop.engines.detection.metrics`` and its JSON in ``.report`` (both without torch); the product's
TrainingEngine for detection projects in ``.trainer``. torch is needed (the ``ml`` extra) for training
and detecting, so the names are imported when first used (PEP 562): reading an evaluation needs no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "Detection": "records",
    "DetectionExample": "records",
    "DetectionEngine": "engine",
    "TrainedDetector": "engine",
    "LoadedDetector": "detector",
    "DetectorRecipe": "recipe",
    "TrainingSettings": "training",
    "TrainingStats": "training",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
