"""One TrainingEngine for every kind of project: a spec goes to the engine of its task (object detection
to engines.detection.trainer, classification and multi-label to engines.classification), and an artifact
to the engine that wrote it, recognised by its files. The detection engine is built when first needed, so
a server that only classifies never imports torch for it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from visionloop.core.entities import TaskType
from visionloop.core.ports import (
    LoadedDetector,
    LoadedModel,
    ProgressFn,
    TrainedModel,
    TrainingEngine,
    TrainingSpec,
)
from visionloop.engines.detection.recipe import RECIPE_FILE


class TaskEngine:
    """core.ports.TrainingEngine routing by task; ``detection`` builds the detection engine on first use."""

    def __init__(self, classification: TrainingEngine, detection: Callable[[], TrainingEngine]) -> None:
        self.classification = classification
        self._build_detection = detection
        self._detection: TrainingEngine | None = None
        self._lock = threading.Lock()

    @property
    def detection(self) -> TrainingEngine:
        with self._lock:
            if self._detection is None:
                self._detection = self._build_detection()
            return self._detection

    def train(
        self, spec: TrainingSpec, load_image: Callable[[str], bytes], progress: ProgressFn
    ) -> TrainedModel:
        engine = self.detection if spec.task is TaskType.DETECTION else self.classification
        return engine.train(spec, load_image, progress)

    def load(self, files: Mapping[str, bytes]) -> LoadedModel | LoadedDetector:
        engine = self.detection if RECIPE_FILE in files else self.classification
        return engine.load(files)
