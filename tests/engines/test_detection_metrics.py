"""Detection evaluation on hand-made cases whose AP, thresholds and matches are worked out by hand."""

from __future__ import annotations

import pytest

from visionloop.core.entities import Box
from visionloop.engines.detection.metrics import average_precision, evaluate_detection, match
from visionloop.engines.detection.records import Detection


def det(label: str, confidence: float, left: float, top: float, size: float = 0.2) -> Detection:
    return Detection(label, confidence, Box(label, left, top, size, size))


TRUTH_A = (Box("a", 0.1, 0.1, 0.2, 0.2), Box("a", 0.6, 0.6, 0.2, 0.2))


def test_ap_of_a_hit_a_miss_and_a_hit_is_the_area_under_the_stepped_curve() -> None:
    # ranks: TP (P 1, R .5), FP, TP (P 2/3, R 1) → AP = .5·1 + .5·2/3
    predicted = [det("a", 0.9, 0.1, 0.1), det("a", 0.8, 0.35, 0.35), det("a", 0.7, 0.6, 0.6)]
    assert match(TRUTH_A, predicted) == [True, False, True]
    result = evaluate_detection(["x"], [TRUTH_A], [predicted], ["a"])
    assert result.map50 == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_ap_uses_the_precision_envelope() -> None:
    # 3 truths; FP, TP (P .5), FP (P 1/3), TP (P .5): the envelope lifts the dip → AP = 1/3·.5 + 1/3·.5
    assert average_precision([0.9, 0.8, 0.7, 0.6], [False, True, False, True], 3) == pytest.approx(1 / 3)
    assert average_precision([0.9, 0.8], [True, True], 2) == pytest.approx(1.0)
    assert average_precision([], [], 2) == 0.0


def test_one_truth_per_prediction_wrong_labels_and_iou_below_half_are_misses() -> None:
    truth = (Box("a", 0.1, 0.1, 0.2, 0.2),)
    duplicate = [det("a", 0.9, 0.1, 0.1), det("a", 0.8, 0.11, 0.1)]
    assert match(truth, duplicate) == [True, False]
    assert match(truth, [det("b", 0.9, 0.1, 0.1)]) == [False]
    # shifted by half its width: IoU = .1·.2 / (2·.04 − .02) = 1/3
    assert match(truth, [det("a", 0.9, 0.2, 0.1)]) == [False]
    # the greedy order is by confidence, not by the order given
    assert match(truth, [det("a", 0.5, 0.1, 0.1), det("a", 0.9, 0.1, 0.1)]) == [False, True]


def test_assumed_threshold_maximises_f1_and_selects_each_images_boxes() -> None:
    predicted = [det("a", 0.9, 0.1, 0.1), det("a", 0.8, 0.35, 0.35), det("a", 0.7, 0.6, 0.6)]
    low = [det("a", 0.2, 0.0, 0.7)]  # a false positive below the threshold
    result = evaluate_detection(["x", "y"], [TRUTH_A, ()], [predicted, low], ["a"])
    (a,) = result.per_label
    # cut .9: P 1, R .5, F1 2/3; cut .7: P 2/3, R 1, F1 .8; cut .2: P 1/2, R 1, F1 2/3
    assert a.threshold == pytest.approx(0.7)
    assert (a.precision, a.recall, a.f1) == pytest.approx((2 / 3, 1.0, 0.8))
    assert [len(img.predicted) for img in result.images] == [3, 0]
    assert result.images[0].correct == (True, False, True)
    assert result.thresholds() == {"a": pytest.approx(0.7)}


def test_map_averages_labels_with_true_boxes_only() -> None:
    truth = [(Box("a", 0.1, 0.1, 0.2, 0.2), Box("c", 0.5, 0.5, 0.2, 0.2))]
    predicted = [[det("a", 0.9, 0.1, 0.1), det("b", 0.8, 0.5, 0.5)]]
    result = evaluate_detection(["x"], truth, predicted, ["a", "b", "c"])
    by_label = {m.label: m for m in result.per_label}
    assert by_label["a"].ap == 1.0 and by_label["c"].ap == 0.0 and by_label["b"].ap is None
    assert by_label["c"].threshold is None and by_label["c"].recall == 0.0
    assert result.map50 == pytest.approx(0.5)
