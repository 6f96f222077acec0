"""The TrainingEngine of object-detection projects (core.ports.TrainingEngine for specs whose task is
TaskType.DETECTION): train the detector on TRAIN's boxes, detect on TEST, evaluate at IoU 0.5, and
return the artifact with its evaluation, assumed thresholds and Rekognition summary.

Time budget: ``spec.max_seconds`` or the mode's default covers the whole training, evaluation included;
the head trains until its share of the budget is spent or its epochs are done (small sets stop early).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from visionloop.core.entities import TaskType
from visionloop.core.ports import FoundObject, ProgressFn, TrainedModel, TrainingSpec
from visionloop.core.scoring import DEFAULT_THRESHOLD
from visionloop.engines.detection.engine import DetectionEngine
from visionloop.engines.detection.metrics import evaluate_detection
from visionloop.engines.detection.recipe import BACKBONE
from visionloop.engines.detection.records import Detection, DetectionExample
from visionloop.engines.detection.report import detection_summary, evaluation_document, macro
from visionloop.engines.detection.training import TrainingSettings
from visionloop.errors import InvalidInput

# seconds for a whole training by mode (the bound is 15 minutes on 2 cores)
DEFAULT_SECONDS = {"fast": 600.0, "best": 840.0}
DETECT_SECONDS = 0.25  # per TEST image, reserved from the budget for the evaluation
TRAIN_SHARE = 0.9  # of the progress bar; the evaluation takes the rest
BACKBONES = ("auto", BACKBONE)
# hyper-parameters a user may set: name -> (type, lowest, highest)
HYPERPARAMS: dict[str, tuple[type, float, float]] = {
    "input_size": (int, 256, 1024),
    "learning_rate": (float, 1e-5, 0.1),
    "max_epochs": (int, 1, 500),
    "batch_size": (int, 1, 64),
}


def check_hyperparams(values: Mapping[str, object]) -> tuple[TrainingSettings, dict[str, int]]:
    """The optimiser's settings and the recipe options the hyper-parameters ask for; InvalidInput names
    what is wrong."""
    unknown = sorted(set(values) - set(HYPERPARAMS))
    if unknown:
        raise InvalidInput(
            f"unknown hyper-parameters for object detection: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(HYPERPARAMS))})"
        )
    checked: dict[str, float] = {}
    for name, value in values.items():
        kind, low, high = HYPERPARAMS[name]
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or (kind is int and not number.is_integer()) or not low <= number <= high:
            what = "an integer" if kind is int else "a number"
            raise InvalidInput(f"hyper-parameter {name} must be {what} in {low:g}..{high:g}")
        checked[name] = number
    if checked.get("input_size", 32) % 32:
        raise InvalidInput("hyper-parameter input_size must be a multiple of 32")
    defaults = TrainingSettings()
    settings = TrainingSettings(
        batch_size=int(checked.get("batch_size", defaults.batch_size)),
        learning_rate=checked.get("learning_rate", defaults.learning_rate),
        weight_decay=defaults.weight_decay,
        max_epochs=int(checked.get("max_epochs", defaults.max_epochs)),
    )
    recipe = {"input_size": int(checked["input_size"])} if "input_size" in checked else {}
    return settings, recipe


class ProductDetector:
    """A loaded detector as serving uses it (core.ports.LoadedDetector)."""

    def __init__(self, engine: DetectionEngine, files: Mapping[str, bytes]) -> None:
        self.detector = engine.load(files)
        self.labels = self.detector.labels

    def detect(self, images: Sequence[bytes]) -> list[list[FoundObject]]:
        return [
            [FoundObject(d.label, d.confidence, d.box) for d in found]
            for found in self.detector.detect(images)
        ]


class DetectionTrainer:
    """core.ports.TrainingEngine for detection specs; ``num_threads`` threads (default one), exported
    backbone graphs cached in ``cache_dir`` (default: the ONNX cache of engines.onnx_runtime)."""

    def __init__(
        self, num_threads: int | None = None, cache_dir: str | os.PathLike[str] | None = None
    ) -> None:
        self.num_threads = num_threads or 1
        self.cache_dir = cache_dir
        self._engine: DetectionEngine | None = None

    def engine(self, settings: TrainingSettings | None = None, **recipe: float | int) -> DetectionEngine:
        """An engine sharing this trainer's backbone (built once: loading it takes a second)."""
        if self._engine is None:
            self._engine = DetectionEngine(num_threads=self.num_threads, cache_dir=self.cache_dir)
        if settings is None and not recipe:
            return self._engine
        options: dict[str, Any] = {"num_threads": self.num_threads, "pyramid": self._engine.pyramid, **recipe}
        return DetectionEngine(settings, **options)

    def train(
        self, spec: TrainingSpec, load_image: Callable[[str], bytes], progress: ProgressFn
    ) -> TrainedModel:
        started = time.monotonic()
        if spec.task is not TaskType.DETECTION:
            raise InvalidInput(f"the detection trainer cannot train a {spec.task.value} model")
        if spec.backbone not in BACKBONES:
            raise InvalidInput(
                f"object detection trains on {BACKBONE}; backbone {spec.backbone!r} is for classification"
            )
        settings, recipe = check_hyperparams(spec.hyperparams)
        budget = float(spec.max_seconds or DEFAULT_SECONDS.get(spec.mode, DEFAULT_SECONDS["fast"]))
        train_seconds = max(budget * 0.25, budget - DETECT_SECONDS * len(spec.test))
        engine = self.engine(settings, **recipe)
        examples = [DetectionExample(ex.content_hash, ex.boxes) for ex in spec.train]
        try:
            trained = engine.train(
                examples,
                load_image,
                spec.labels,
                seed=spec.seed,
                max_seconds=train_seconds,
                progress=lambda f, s: progress(TRAIN_SHARE * f, s),
            )
        except ValueError as e:  # nothing to learn: the data, not the engine
            raise InvalidInput(str(e)) from None
        predicted: list[list[Detection]] = []
        for i, ex in enumerate(spec.test):
            predicted.extend(trained.detector.detect([load_image(ex.content_hash)]))
            stage = f"evaluating on TEST ({i + 1} of {len(spec.test)})"
            progress(TRAIN_SHARE + (1 - TRAIN_SHARE) * (i + 1) / len(spec.test), stage)
        evaluation = evaluate_detection(
            [ex.content_hash for ex in spec.test], [ex.boxes for ex in spec.test], predicted, spec.labels
        )
        stats = dataclasses.asdict(trained.stats)
        document = evaluation_document(evaluation, warnings=spec.grouping_warnings, training=stats)
        summary = detection_summary(
            evaluation, project_version_arn=spec.version_arn, n_training_images=len(spec.train)
        )
        f1 = macro(evaluation)["f1"]
        return TrainedModel(
            files=trained.files,
            f1=float(f1 or 0.0),
            thresholds=evaluation.thresholds(default=DEFAULT_THRESHOLD),
            evaluation=document,
            summary=summary,
            params={
                "engine": "detection",
                "backbone": BACKBONE,
                "input_size": engine.recipe_options.get("input_size", 512),
                "budget_seconds": budget,
                "hyperparams": dict(spec.hyperparams),
                "training_seconds": time.monotonic() - started,
                "steps": trained.stats.steps,
                "epochs": round(trained.stats.epochs, 2),
            },
        )

    def load(self, files: Mapping[str, bytes]) -> ProductDetector:
        return ProductDetector(self.engine(), files)
