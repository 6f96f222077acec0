"""Object detection: an FCOS-style head on the frozen, multi-scale EfficientNet-Lite0, trainable on a
2-core CPU in minutes because the backbone runs once per training image (and its mirror image).

Public API: ``DetectionEngine`` (train, load), ``TrainedDetector``, ``LoadedDetector`` (detect),
``DetectionExample``, ``Detection``, ``DetectorRecipe``, ``TrainingSettings``; evaluation in
``visionloop.engines.detection.metrics``. torch is needed (the ``ml`` extra).
"""

from visionloop.engines.detection.detector import LoadedDetector
from visionloop.engines.detection.engine import DetectionEngine, TrainedDetector
from visionloop.engines.detection.recipe import DetectorRecipe
from visionloop.engines.detection.records import Detection, DetectionExample
from visionloop.engines.detection.training import TrainingSettings, TrainingStats

__all__ = [
    "Detection",
    "DetectionEngine",
    "DetectionExample",
    "DetectorRecipe",
    "LoadedDetector",
    "TrainedDetector",
    "TrainingSettings",
    "TrainingStats",
]
