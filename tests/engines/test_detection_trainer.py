"""The detection trainer's checks (what a user may ask of it) and the engine that routes each project's
training and artifacts to the engine of its task. Training itself runs through the product in
tests/workflows/test_detection_real.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from visionloop.core.entities import Box, TaskType
from visionloop.core.ports import ProgressFn, TrainedModel, TrainingExample, TrainingSpec
from visionloop.engines.detection.recipe import RECIPE_FILE
from visionloop.engines.detection.trainer import DetectionTrainer, check_hyperparams
from visionloop.engines.detection.training import TrainingSettings
from visionloop.engines.tasks import TaskEngine
from visionloop.errors import InvalidInput

BOX = Box("cat", 0.1, 0.1, 0.5, 0.5)


def spec(task: TaskType = TaskType.DETECTION, backbone: str = "auto", **hyperparams: Any) -> TrainingSpec:
    example = TrainingExample("h", ("cat",), None, (BOX,))
    return TrainingSpec(
        project="p",
        version="v1",
        version_arn="arn:aws:rekognition:us-east-1:123456789012:project/p/version/v1/1",
        task=task,
        labels=("cat",),
        train=(example,),
        test=(example,),
        backbone=backbone,
        mode="fast",
        seed=0,
        max_seconds=5,
        hyperparams=hyperparams,
    )


def test_hyper_parameters_are_checked() -> None:
    settings, recipe = check_hyperparams({"learning_rate": 0.01, "max_epochs": 5, "input_size": 320})
    assert settings == TrainingSettings(learning_rate=0.01, max_epochs=5) and recipe == {"input_size": 320}
    assert check_hyperparams({}) == (TrainingSettings(), {})
    for bad, why in (
        ({"sharpness": 1}, "unknown hyper-parameters for object detection: sharpness"),
        ({"max_epochs": 2.5}, "max_epochs must be an integer in 1..500"),
        ({"max_epochs": True}, "max_epochs must be an integer"),
        ({"learning_rate": "fast"}, "learning_rate must be a number"),
        ({"learning_rate": 2}, "learning_rate must be a number in 1e-05..0.1"),
        ({"input_size": 300}, "input_size must be a multiple of 32"),
        ({"batch_size": 0}, "batch_size must be an integer in 1..64"),
    ):
        with pytest.raises(InvalidInput, match=why):
            check_hyperparams(bad)


@pytest.mark.parametrize(
    ("given", "why"),
    [
        (spec(TaskType.CLASSIFICATION), "cannot train a classification model"),
        (spec(backbone="efficientnet-lite2"), "backbone 'efficientnet-lite2' is for classification"),
        (spec(bogus=1), "unknown hyper-parameters"),
    ],
)
def test_what_the_detection_trainer_refuses(given: TrainingSpec, why: str) -> None:
    def load(key: str) -> bytes:
        raise AssertionError("refused before reading an image")

    with pytest.raises(InvalidInput, match=why):
        DetectionTrainer().train(given, load, lambda f, s: None)


class Recording:
    """A TrainingEngine that records what it is asked and trains nothing."""

    def __init__(self, name: str) -> None:
        self.name, self.calls = name, []

    def train(
        self, spec: TrainingSpec, load_image: Callable[[str], bytes], progress: ProgressFn
    ) -> TrainedModel:
        self.calls.append(spec.task.value)
        return TrainedModel({"by": self.name.encode()}, 1.0, {}, {}, {}, {})

    def load(self, files: Mapping[str, bytes]) -> Any:
        self.calls.append(f"load {sorted(files)}")
        return self.name


def test_each_task_goes_to_its_engine_and_each_artifact_to_the_one_that_wrote_it() -> None:
    classification, detection, built = Recording("classification"), Recording("detection"), []

    def build() -> Recording:
        built.append(1)
        return detection

    engine = TaskEngine(classification, build)
    engine.train(spec(TaskType.CLASSIFICATION), bytes, lambda f, s: None)
    engine.train(spec(TaskType.MULTI_LABEL), bytes, lambda f, s: None)
    assert engine.load({"model.json": b"{}"}) == "classification"
    assert built == []  # a server that only classifies never builds the detection engine
    engine.train(spec(), bytes, lambda f, s: None)
    assert engine.load({RECIPE_FILE: b"{}", "head.npz": b""}) == "detection"
    assert built == [1]
    assert classification.calls == ["classification", "multi_label", "load ['model.json']"]
    assert detection.calls == ["object_detection", "load ['detector.json', 'head.npz']"]
