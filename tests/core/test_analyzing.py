"""The analysis use cases with stand-in analysers: image limits and references, option checks, label
filters, and what reaches the analyser."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.factories import image_bytes
from visionloop.core import analyzing
from visionloop.core.keys import ObjectRef
from visionloop.core.records.analysis import (
    BoundingBox,
    ImageLabel,
    ImageProperties,
    ImageQuality,
    LabelAnalysis,
    LabelInstance,
    ModerationLabel,
    Point,
    TextDetection,
)
from visionloop.core.services import Services
from visionloop.errors import ImageTooLarge, InvalidImage, InvalidInput, InvalidKey, ObjectNotFound

BOX = BoundingBox(0.1, 0.1, 0.2, 0.2)
FOOD = ("Food and Beverage",)
LABELS = (
    ImageLabel("Banana", 90, (LabelInstance(BOX, 90), LabelInstance(BOX, 40)), ("Fruit", "Food"), (), FOOD),
    ImageLabel("Fruit", 92, (), ("Food",), (), ("Food and Beverage",)),
    ImageLabel("Food", 95, (), (), (), ("Food and Beverage",)),
    ImageLabel("Person", 70, (LabelInstance(BOX, 70),), (), ("Human",), ("Person Description",)),
    ImageLabel("Tench", 30, (), ("Fish", "Animal"), (), ("Animals and Pets",)),
)  # fmt: skip
IMAGE = image_bytes(120, 100)


@dataclass
class Fake:
    """One stand-in for the three analysers; it records what it was asked."""

    kind: str = "fake"
    version: str = "fake-1"
    calls: list[dict[str, Any]] = field(default_factory=list)

    def warm_up(self) -> None:
        pass

    def detect(self, image: bytes, **options: Any) -> Any:
        self.calls.append({"image": image, **options})
        if "general_labels" in options:
            props = ImageProperties(ImageQuality(50, 60, 70)) if options["image_properties"] else None
            labels = LABELS if options["general_labels"] else ()
            return LabelAnalysis(labels, props)
        if "regions" in options:
            return [TextDetection("HELLO", "LINE", 0, None, 99, BOX)]
        return [ModerationLabel("Swimwear or Underwear", "", 1, 60), ModerationLabel("Explicit", "", 1, 45)]


@pytest.fixture
def fake() -> Fake:
    return Fake()


def source(fake: Fake) -> Any:
    return lambda kind: fake


def names(result: analyzing.LabelsResult) -> list[str]:
    return [x.name for x in result.labels]


def test_labels_default_min_confidence_and_order(services: Services, fake: Fake) -> None:
    result = analyzing.detect_labels(services, source(fake), IMAGE)
    assert names(result) == ["Food", "Fruit", "Banana", "Person"]  # 55 by default, surest first
    banana = result.labels[2]
    assert [i.confidence for i in banana.instances] == [90]  # instances under MinConfidence go too
    assert result.version == "fake-1" and result.properties is None
    assert fake.calls[0]["general_labels"] and not fake.calls[0]["image_properties"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (analyzing.LabelOptions(min_confidence=0), ["Food", "Fruit", "Banana", "Person", "Tench"]),
        (analyzing.LabelOptions(max_labels=2), ["Food", "Fruit"]),
        (analyzing.LabelOptions(max_labels=0), []),
        (analyzing.LabelOptions(include=("banana", "PERSON")), ["Banana", "Person"]),
        (analyzing.LabelOptions(exclude=("Food",)), ["Fruit", "Banana", "Person"]),
        (analyzing.LabelOptions(include_categories=("person description",)), ["Person"]),
        (
            analyzing.LabelOptions(exclude_categories=("Food and Beverage",), min_confidence=0),
            ["Person", "Tench"],
        ),
    ],
)
def test_label_filters(
    services: Services, fake: Fake, options: analyzing.LabelOptions, expected: list[str]
) -> None:
    assert names(analyzing.detect_labels(services, source(fake), IMAGE, options)) == expected


def test_image_properties_alone(services: Services, fake: Fake) -> None:
    options = analyzing.LabelOptions(features=("IMAGE_PROPERTIES",), max_dominant_colors=3)
    result = analyzing.detect_labels(services, source(fake), IMAGE, options)
    assert result.labels == () and result.properties == ImageProperties(ImageQuality(50, 60, 70))
    assert fake.calls[0]["max_dominant_colors"] == 3 and not fake.calls[0]["general_labels"]


@pytest.mark.parametrize(
    "options",
    [
        analyzing.LabelOptions(max_labels=-1),
        analyzing.LabelOptions(max_labels=True),  # type: ignore[arg-type]
        analyzing.LabelOptions(min_confidence=101),
        analyzing.LabelOptions(min_confidence=float("nan")),
        analyzing.LabelOptions(features=()),
        analyzing.LabelOptions(features=("FACES",)),
        analyzing.LabelOptions(features=("GENERAL_LABELS", "GENERAL_LABELS")),
        analyzing.LabelOptions(include=("x" * 51,)),
        analyzing.LabelOptions(exclude=tuple(f"l{i}" for i in range(101))),
        analyzing.LabelOptions(max_dominant_colors=21),
    ],
)
def test_bad_label_options(services: Services, fake: Fake, options: analyzing.LabelOptions) -> None:
    with pytest.raises(InvalidInput):
        analyzing.detect_labels(services, source(fake), IMAGE, options)
    assert fake.calls == []


def test_text_options_reach_the_analyser(services: Services, fake: Fake) -> None:
    region = (Point(0, 0), Point(1, 0), Point(0.5, 1))
    options = analyzing.TextOptions(90, 0.01, 0.02, (BOX, region))
    result = analyzing.detect_text(services, source(fake), IMAGE, options)
    assert [d.text for d in result.detections] == ["HELLO"]
    call = fake.calls[0]
    assert (call["min_confidence"], call["min_box_height"], call["min_box_width"]) == (90, 0.01, 0.02)
    assert call["regions"] == [BOX, region]
    analyzing.detect_text(services, source(fake), IMAGE)
    assert fake.calls[1]["regions"] is None and fake.calls[1]["min_confidence"] == 0


@pytest.mark.parametrize(
    "options",
    [
        analyzing.TextOptions(min_confidence=-1),
        analyzing.TextOptions(min_box_height=2),
        analyzing.TextOptions(regions=(BOX,) * 11),
        analyzing.TextOptions(regions=(BoundingBox(0, 0, 0, 0.5),)),
        analyzing.TextOptions(regions=(BoundingBox(0, 0, 1.5, 0.5),)),
        analyzing.TextOptions(regions=((Point(0, 0), Point(1, 1)),)),
        analyzing.TextOptions(regions=((Point(0, 0), Point(1, 1), Point(2, 0)),)),
    ],
)
def test_bad_text_options(services: Services, fake: Fake, options: analyzing.TextOptions) -> None:
    with pytest.raises(InvalidInput):
        analyzing.detect_text(services, source(fake), IMAGE, options)


def test_moderation_min_confidence(services: Services, fake: Fake) -> None:
    result = analyzing.detect_moderation_labels(services, source(fake), IMAGE)
    assert [m.name for m in result.labels] == ["Swimwear or Underwear"]
    assert fake.calls[0]["min_confidence"] == 50
    low = analyzing.detect_moderation_labels(services, source(fake), IMAGE, analyzing.ModerationOptions(40))
    assert [m.confidence for m in low.labels] == [60, 45]
    with pytest.raises(InvalidInput):
        analyzing.detect_moderation_labels(services, source(fake), IMAGE, analyzing.ModerationOptions(-5))


def test_images_from_buckets_and_the_limits(services: Services, fake: Fake) -> None:
    run = analyzing.detect_moderation_labels
    services.buckets.create_bucket("photos")
    services.buckets.put("photos", "a/b.jpg", IMAGE)
    run(services, source(fake), ObjectRef("photos", "a/b.jpg"))
    assert fake.calls[-1]["image"] == IMAGE
    with pytest.raises(ObjectNotFound):
        run(services, source(fake), ObjectRef("photos", "missing.jpg"))
    with pytest.raises(InvalidKey):
        run(services, source(fake), ObjectRef("photos", "../etc/passwd"))
    with pytest.raises(InvalidImage):
        run(services, source(fake), b"GIF89a not an image we take")
    with pytest.raises(InvalidInput, match="at least 80 px"):
        run(services, source(fake), image_bytes(79, 100))
    with pytest.raises(InvalidInput, match="empty"):
        run(services, source(fake), b"")
    with pytest.raises(ImageTooLarge):
        run(services, source(fake), IMAGE + b"\0" * analyzing.ANALYSIS_LIMITS.max_bytes)
    assert len(fake.calls) == 1


def test_analysis_runs_on_its_threads(fake: Fake) -> None:
    analysis = analyzing.Analysis(source(fake), workers=1)
    try:
        assert analysis.submit(lambda x: x + 1, 1).result(5) == 2
    finally:
        analysis.close()
