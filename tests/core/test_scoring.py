"""The threshold rule and F1 (core/scoring.py), which serving, training and the gate share."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from visionloop.core.entities import Box, Prediction
from visionloop.core.ports import FoundObject, ImageOutput
from visionloop.core.scoring import (
    DEFAULT_THRESHOLD,
    check_detect_options,
    cut_off,
    f1,
    f1_by_label,
    f1_from_counts,
    model_outputs,
    output_predictions,
    predicted,
    to_box_predictions,
    to_predictions,
)
from visionloop.errors import InvalidInput


def test_a_label_without_a_threshold_gets_the_default() -> None:
    assert cut_off("a", {}) == DEFAULT_THRESHOLD == 0.5
    assert predicted({"a": 0.5, "b": 0.49}, {}) == {"a": 0.5}


def test_a_label_is_predicted_when_it_reaches_its_own_threshold() -> None:
    thresholds = {"a": 0.7, "b": 0.2}
    assert predicted({"a": 0.7, "b": 0.19}, thresholds) == {"a": 0.7}
    assert predicted({"a": 0.69, "b": 0.2}, thresholds) == {"b": 0.2}


def test_min_confidence_replaces_the_threshold_above_or_below_it() -> None:
    thresholds = {"a": 0.6}
    assert predicted({"a": 0.65}, thresholds, min_confidence=70) == {}  # above the threshold: stricter
    assert predicted({"a": 0.45}, thresholds, min_confidence=40) == {"a": 0.45}  # below: laxer
    assert predicted({"a": 0.4}, thresholds, min_confidence=40) == {"a": 0.4}  # reaching it is enough
    assert predicted({"a": 0.0, "b": 0.1}, thresholds, min_confidence=0) == {"a": 0.0, "b": 0.1}


def test_to_predictions_sorts_rounds_and_cuts() -> None:
    probs = {"b": 0.8, "a": 0.8, "c": 0.123456, "d": 0.1}
    got = to_predictions(probs, {"c": 0.1, "d": 0.2}, None)
    assert got == [Prediction("a", 80.0), Prediction("b", 80.0), Prediction("c", 12.346)]
    assert to_predictions(probs, {}, 0, max_results=2) == got[:2]
    assert to_predictions(probs, {}, 0, max_results=0) == []


@pytest.mark.parametrize(("min_confidence", "max_results"), [(-1, None), (100.5, None), (None, -1)])
def test_detect_options_are_checked(min_confidence: float | None, max_results: int | None) -> None:
    with pytest.raises(InvalidInput):
        check_detect_options(min_confidence, max_results)


def test_detect_options_at_the_edges_are_accepted() -> None:
    for min_confidence, max_results in ((0, 0), (100, None), (None, None)):
        check_detect_options(min_confidence, max_results)


def test_f1_of_precision_and_recall() -> None:
    assert f1(0.0, 0.0) == 0.0  # P + R = 0
    assert f1(1.0, 0.0) == 0.0
    assert f1(1.0, 1.0) == 1.0
    assert f1(0.5, 1.0) == pytest.approx(2 / 3)


def test_f1_from_counts_matches_precision_and_recall() -> None:
    assert f1_from_counts(0, 0, 0) == 0.0
    assert f1_from_counts(0, 3, 2) == 0.0
    tp, fp, fn = 3, 1, 2
    assert f1_from_counts(tp, fp, fn) == pytest.approx(f1(tp / (tp + fp), tp / (tp + fn))) == 2 / 3


def test_f1_by_label() -> None:
    truth = [{"a"}, {"a", "b"}, set()]
    predictions = [{"a"}, {"b"}, {"b"}]
    got = f1_by_label(truth, predictions, ["a", "b", "c"])
    assert got == {"a": f1_from_counts(1, 0, 1), "b": f1_from_counts(1, 1, 0), "c": 1.0}
    assert f1_by_label(truth, predictions, ["c"], absent=0.0) == {"c": 0.0}
    assert f1_by_label([{"a"}], [set()], ["a"]) == {"a": 0.0}
    with pytest.raises(ValueError):
        f1_by_label(truth, predictions[:2], ["a"])


A, B = Box("a", 0.1, 0.1, 0.2, 0.2), Box("b", 0.5, 0.5, 0.3, 0.3)


def test_a_detectors_boxes_are_cut_per_label_and_sorted() -> None:
    objects = [FoundObject("a", 0.45, A), FoundObject("b", 0.9, B), FoundObject("a", 0.8, A)]
    thresholds = {"a": 0.5, "b": 0.95}
    assert to_box_predictions(objects, thresholds) == [Prediction("a", 80.0, A)]
    assert to_box_predictions(objects, thresholds, min_confidence=40) == [
        Prediction("b", 90.0, B),
        Prediction("a", 80.0, A),
        Prediction("a", 45.0, A),
    ]
    assert to_box_predictions(objects, thresholds, min_confidence=0, max_results=1) == [
        Prediction("b", 90.0, B)
    ]
    assert to_box_predictions(objects, thresholds, max_results=0) == []


class Detector:
    """A LoadedDetector that finds the same objects in every image."""

    labels = ("a", "b")

    def detect(self, images: Sequence[bytes]) -> list[list[FoundObject]]:
        return [[FoundObject("a", 0.7, A), FoundObject("a", 0.6, A)] for _ in images]


class Classifier:
    labels = ("a", "b")

    def predict(self, images: Sequence[bytes]) -> list[list[float]]:
        return [[0.25, 0.75] for _ in images]


def test_model_outputs_of_a_detector_and_of_a_classifier() -> None:
    [out] = model_outputs(Detector(), [b"x"])
    assert out.probs == {"a": 0.7, "b": 0.0} and len(out.objects or ()) == 2  # a label's best object
    assert output_predictions(out, {"a": 0.65}) == [Prediction("a", 70.0, A)]
    [out] = model_outputs(Classifier(), [b"x"])
    assert out == ImageOutput({"a": 0.25, "b": 0.75}) and out.objects is None
    assert output_predictions(out, {}) == [Prediction("b", 75.0)]
