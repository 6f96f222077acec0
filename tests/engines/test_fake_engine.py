"""The fake colour engine as an object detector (engines.fake): trained on synthetic scenes (coloured
rectangles on a grey background), it finds the rectangles at IoU ≥ 0.5 with the right label, reports the
evaluation the console reads, and its artifact loads back as a detector."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest
from PIL import Image

from visionloop.core.entities import Box, TaskType
from visionloop.core.ports import LoadedDetector, TrainingExample, TrainingSpec
from visionloop.core.scoring import model_outputs
from visionloop.engines.fake import ColourDetector, ColourEngine, ColourModel

COLOURS = {"red": (210, 30, 30), "blue": (30, 40, 210)}
GREY = (128, 128, 128)


def scene(boxes: list[Box], size: tuple[int, int] = (160, 120), seed: int = 0) -> bytes:
    """A grey PNG with a filled rectangle of its label's colour for each box (slightly varied)."""
    rng = random.Random(seed)
    img = Image.new("RGB", size, GREY)
    w, h = size
    for b in boxes:
        colour = tuple(min(255, max(0, c + rng.randint(-15, 15))) for c in COLOURS[b.label])
        rect = (
            round(b.left * w),
            round(b.top * h),
            round((b.left + b.width) * w) - 1,
            round((b.top + b.height) * h) - 1,
        )
        img.paste(colour, (rect[0], rect[1], rect[2] + 1, rect[3] + 1))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def random_box(rng: random.Random, label: str) -> Box:
    width, height = rng.uniform(0.2, 0.45), rng.uniform(0.2, 0.45)
    return Box(label, rng.uniform(0.05, 0.95 - width), rng.uniform(0.05, 0.95 - height), width, height)


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.left + a.width, b.left + b.width) - max(a.left, b.left))
    iy = max(0.0, min(a.top + a.height, b.top + b.height) - max(a.top, b.top))
    inter = ix * iy
    return inter / (a.width * a.height + b.width * b.height - inter)


@pytest.fixture
def images() -> dict[str, bytes]:
    return {}


def examples(images: dict[str, bytes], n: int, seed: int) -> tuple[TrainingExample, ...]:
    """n one-object scenes, alternating labels, stored in ``images`` by a made-up content hash."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = "red" if i % 2 == 0 else "blue"
        box = random_box(rng, label)
        key = f"{seed:04d}{i:060d}"
        images[key] = scene([box], seed=seed * 1000 + i)
        out.append(TrainingExample(key, (label,), None, (box,)))
    return tuple(out)


def spec(train: tuple[TrainingExample, ...], test: tuple[TrainingExample, ...]) -> TrainingSpec:
    return TrainingSpec(
        project="shapes",
        version="v1",
        version_arn="arn:aws:rekognition:us-east-1:123456789012:project/shapes/version/v1/1",
        task=TaskType.DETECTION,
        labels=("blue", "red"),
        train=train,
        test=test,
        backbone="auto",
        mode="fast",
        seed=0,
        max_seconds=None,
        hyperparams={},
    )


def test_trains_a_detector_that_finds_the_boxes(images: dict[str, bytes]) -> None:
    train, test = examples(images, 10, seed=1), examples(images, 6, seed=2)
    stages: list[str] = []
    trained = ColourEngine().train(spec(train, test), images.__getitem__, lambda f, s: stages.append(s))
    assert stages[-1] == "done"

    ev: dict[str, Any] = dict(trained.evaluation)
    assert ev["task"] == "object_detection" and ev["labels"] == ["blue", "red"] and ev["n_images"] == 6
    assert ev["map50"] == pytest.approx(1.0) and ev["macro_f1"] == pytest.approx(1.0) == trained.f1
    rows = {r["label"]: r for r in ev["per_label"]}
    assert (
        rows["red"]["true_boxes"] == 3 and rows["red"]["n_test_images"] == 3 and not rows["red"]["reliable"]
    )
    assert [im["image_id"] for im in ev["images"]] == [ex.content_hash for ex in test]
    assert all(p["correct"] for im in ev["images"] for p in im["predicted"])
    assert any("only 3 test images" in w for w in ev["warnings"])
    assert set(trained.thresholds) == {"blue", "red"}
    summary: dict[str, Any] = dict(trained.summary)
    assert summary["VisionloopExtensions"]["Task"] == "object_detection"

    model = ColourEngine().load(trained.files)  # a fresh engine, as an inference unit loads it
    assert isinstance(model, ColourDetector) and isinstance(model, LoadedDetector)
    assert model.labels == ("blue", "red")
    unseen = examples(images, 8, seed=3)
    for ex, found in zip(unseen, model.detect([images[ex.content_hash] for ex in unseen]), strict=True):
        [truth] = ex.boxes
        assert found and found[0].label == truth.label and iou(found[0].box, truth) >= 0.5, (found, truth)
        assert found[0].probability > 0.9


def test_one_object_per_region_best_first(images: dict[str, bytes]) -> None:
    trained = ColourEngine().train(
        spec(examples(images, 6, 1), examples(images, 2, 2)), images.__getitem__, lambda f, s: None
    )
    model = ColourEngine().load(trained.files)
    assert isinstance(model, ColourDetector)
    red, blue = Box("red", 0.05, 0.1, 0.3, 0.4), Box("blue", 0.6, 0.5, 0.3, 0.35)
    # a purple-ish object sits between the centroids: found, but less sure than the pure ones
    purple = Box("red", 0.4, 0.05, 0.15, 0.2)
    img = Image.open(io.BytesIO(scene([red, blue])))
    img.paste((120, 35, 120), (64, 6, 88, 30))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    [found] = model.detect([buf.getvalue()])
    assert len(found) == 3
    assert [o.probability for o in found] == sorted((o.probability for o in found), reverse=True)
    assert found[-1].probability < found[0].probability and iou(found[-1].box, purple) >= 0.5
    by_label = {o.label: o for o in found[:2]}
    assert iou(by_label["red"].box, red) >= 0.5 and iou(by_label["blue"].box, blue) >= 0.5
    # a plain grey image holds nothing; the core reads the detector's output as boxes
    [empty] = model.detect([scene([])])
    assert empty == []
    [output] = model_outputs(model, [buf.getvalue()])
    assert output.objects is not None and len(output.objects) == 3 and output.probs["red"] > 0.5


def test_classification_artifacts_still_load_as_classifiers(images: dict[str, bytes]) -> None:
    red, blue = scene([Box("red", 0, 0, 1, 1)]), scene([Box("blue", 0, 0, 1, 1)])
    images.update({"r" * 64: red, "b" * 64: blue})
    ex = (TrainingExample("r" * 64, ("red",)), TrainingExample("b" * 64, ("blue",)))
    s = spec(ex, ex)
    s = TrainingSpec(**{**s.__dict__, "task": TaskType.CLASSIFICATION})
    trained = ColourEngine().train(s, images.__getitem__, lambda f, p: None)
    model = ColourEngine().load(trained.files)
    assert isinstance(model, ColourModel) and not isinstance(model, LoadedDetector)
    [p_red, p_blue] = model.predict([red, blue])
    assert p_red[1] > 0.9 and p_blue[0] > 0.9 and trained.evaluation["accuracy"] == 1.0
