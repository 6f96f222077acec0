"""Calibration: temperature and Platt scaling on synthetic logits, ECE and the reliability table."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import log_loss

from visionloop.engines.calibration import (
    Calibrator,
    expected_calibration_error,
    fit_platt,
    minimize_bounded,
    reliability_table,
    sigmoid,
    softmax,
    softmax_nll,
    top_label_confidence,
)
from visionloop.errors import InvalidInput, NotFitted

# --- factories -------------------------------------------------------------------------------------


def calibrated_softmax(n: int, n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits) itself: calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(n, n_classes))
    cumulative = softmax(logits).cumsum(axis=1)
    y = (cumulative > rng.random((n, 1))).argmax(axis=1)
    return logits, y


def calibrated_sigmoid(n: int, n_labels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and 0/1 targets drawn from sigmoid(logits): calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, n_labels))
    return logits, (rng.random((n, n_labels)) < sigmoid(logits)).astype(int)


def top_label_ece(probs: np.ndarray, y: np.ndarray) -> float:
    return expected_calibration_error(*top_label_confidence(probs, y))


# --- temperature scaling ---------------------------------------------------------------------------


def test_temperature_fixes_over_confident_logits() -> None:
    logits, y = calibrated_softmax(4000, 5, seed=1)
    confident = 3.0 * logits  # a head that is three times too sure of itself
    calibrator = Calibrator().fit(confident, y)
    assert calibrator.temperature_ == pytest.approx(3.0, rel=0.1)
    before = top_label_ece(softmax(confident), y)
    after = top_label_ece(calibrator.transform(confident), y)
    assert before > 0.15
    assert after < 0.03 and after < before / 5


def test_temperature_leaves_calibrated_logits_alone() -> None:
    logits, y = calibrated_softmax(4000, 5, seed=2)
    calibrator = Calibrator().fit(logits, y)
    assert calibrator.temperature_ == pytest.approx(1.0, abs=0.08)
    before = top_label_ece(softmax(logits), y)
    after = top_label_ece(calibrator.transform(logits), y)
    assert abs(after - before) < 0.01
    np.testing.assert_allclose(calibrator.transform(logits), softmax(logits), atol=0.03)


def test_temperature_minimises_nll_and_keeps_the_top_label() -> None:
    logits, y = calibrated_softmax(500, 4, seed=3)
    confident = 2.0 * logits
    calibrator = Calibrator().fit(confident, y)
    t = calibrator.temperature_
    assert t is not None
    best = softmax_nll(confident, y, t)
    assert best <= softmax_nll(confident, y, t * 1.05) and best <= softmax_nll(confident, y, t / 1.05)
    assert best == pytest.approx(log_loss(y, softmax(confident / t), labels=range(4)))
    # the uniform floor (here its minimum, 1 / (n + 2)) costs next to nothing, and keeps the top label
    assert calibrator.floor_ == pytest.approx(1 / 502, rel=1e-3)
    assert log_loss(y, calibrator.transform(confident), labels=range(4)) <= best + 1e-3
    np.testing.assert_array_equal(calibrator.transform(confident).argmax(1), confident.argmax(1))


@pytest.mark.parametrize("kind", ["softmax", "sigmoid"])
def test_perfectly_separated_held_out_images_never_give_certainty(kind: Any) -> None:
    n, k = 40, 3
    y = np.arange(n) % k
    logits = np.where(np.eye(k)[y] > 0, 12.0, -12.0)  # every held-out image right, by far
    target = y if kind == "softmax" else np.eye(k, dtype=np.int64)[y]
    calibrator = Calibrator(kind).fit(logits, target)
    assert calibrator.floor_ >= 1 / (n + 2)
    p = calibrator.transform(50.0 * logits)
    assert p.max() < 1 - 0.5 / (n + 2) and p.min() > 0.0
    np.testing.assert_array_equal(p.argmax(1), y)
    restored = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    np.testing.assert_array_equal(restored.transform(logits), calibrator.transform(logits))
    older = {key: value for key, value in calibrator.to_dict().items() if key != "floor"}
    assert Calibrator.from_dict(older).floor_ == 0.0  # saved before floors existed


def test_the_floor_follows_the_held_out_errors() -> None:
    logits, y = calibrated_softmax(2000, 4, seed=5)
    wrong = np.random.default_rng(0).random(2000) < 0.1
    noisy = np.where(wrong, (y + 1) % 4, y)  # 10% of the held-out labels disagree with the logits
    calibrator = Calibrator().fit(4.0 * logits, noisy)
    assert 1 / 2002 <= calibrator.floor_ < 0.5


def test_fit_is_deterministic() -> None:
    logits, y = calibrated_softmax(300, 3, seed=4)
    assert Calibrator().fit(logits, y).temperature_ == Calibrator().fit(logits, y).temperature_


def test_temperature_stays_within_bounds() -> None:
    logits = np.array([[5.0, 0.0], [5.0, 0.0]])
    calibrator = Calibrator(bounds=(0.5, 2.0)).fit(logits, [0, 0])  # wants T → 0
    assert calibrator.temperature_ == pytest.approx(0.5, abs=1e-4)


def test_bounded_search_finds_a_minimum_inside_or_at_a_bound() -> None:
    assert minimize_bounded(lambda x: (x - 2.0) ** 2, -5.0, 10.0) == pytest.approx(2.0, abs=1e-5)
    assert minimize_bounded(lambda x: (x - 2.0) ** 2, 3.0, 10.0) == pytest.approx(3.0, abs=1e-5)


# --- multi-label -----------------------------------------------------------------------------------


def test_sigmoid_temperature_fixes_over_confident_logits() -> None:
    logits, targets = calibrated_sigmoid(3000, 4, seed=5)
    calibrator = Calibrator("sigmoid").fit(3.0 * logits, targets)
    assert calibrator.temperature_ == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(sigmoid(3.0 * logits), targets)
    after = expected_calibration_error(calibrator.transform(3.0 * logits), targets)
    assert after < before / 4


def test_platt_scaling_recovers_a_per_label_shift_and_scale() -> None:
    logits, targets = calibrated_sigmoid(4000, 3, seed=6)
    distorted = (logits - 1.0) / 2.0  # the true logit is 2 · distorted + 1
    calibrator = Calibrator("sigmoid", "platt").fit(distorted, targets)
    assert calibrator.slopes_ is not None and calibrator.intercepts_ is not None
    np.testing.assert_allclose(calibrator.slopes_, 2.0, rtol=0.12)
    np.testing.assert_allclose(calibrator.intercepts_, 1.0, atol=0.15)
    before = expected_calibration_error(sigmoid(distorted), targets)
    assert expected_calibration_error(calibrator.transform(distorted), targets) < before / 4


def test_platt_stays_finite_on_separable_data() -> None:
    a, b = fit_platt([-2.0, -1.0, 1.0, 2.0], [0, 0, 1, 1])
    assert np.isfinite([a, b]).all() and a > 0


# --- ECE and the reliability table -----------------------------------------------------------------


def test_ece_hand_computed() -> None:
    # bin (0.8, 0.9]: confidence .85, accuracy .5 → .35 · 2/4; bin (0.5, 0.6]: .55 vs 1 → .45 · 2/4
    assert expected_calibration_error([0.85, 0.85, 0.55, 0.55], [1, 0, 1, 1], n_bins=10) == pytest.approx(0.4)
    assert expected_calibration_error([1.0, 1.0], [True, True]) == 0.0
    assert expected_calibration_error([0.0, 0.0], [False, False]) == 0.0


def test_reliability_table() -> None:
    table = reliability_table([0.85, 0.85, 0.55, 0.05], [1, 0, 1, 0], n_bins=10)
    assert len(table) == 10 and sum(b.count for b in table) == 4
    assert (table[8].lower, table[8].upper, table[8].count) == (0.8, 0.9, 2)
    assert (table[8].mean_confidence, table[8].accuracy) == pytest.approx((0.85, 0.5))
    assert (table[0].count, table[0].accuracy) == (1, 0.0)
    assert table[3].count == 0 and table[3].mean_confidence is None and table[3].accuracy is None
    assert json.loads(json.dumps([b.to_dict() for b in table]))[8]["count"] == 2


def test_top_label_confidence() -> None:
    confidence, correct = top_label_confidence([[0.7, 0.3], [0.4, 0.6]], [0, 0])
    np.testing.assert_allclose(confidence, [0.7, 0.6])
    assert correct.tolist() == [True, False]


@pytest.mark.parametrize(
    ("probs", "correct"), [([], []), ([0.5], [True, False]), ([1.5], [True]), ([float("nan")], [True])]
)
def test_ece_refuses_bad_input(probs: list[float], correct: list[bool]) -> None:
    with pytest.raises(InvalidInput):
        expected_calibration_error(probs, correct)


# --- the Calibrator object -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "method"), [("softmax", "temperature"), ("sigmoid", "temperature"), ("sigmoid", "platt")]
)
def test_round_trip_through_json(kind: str, method: str) -> None:
    if kind == "softmax":
        logits, y = calibrated_softmax(200, 3, seed=7)
    else:
        logits, y = calibrated_sigmoid(200, 3, seed=7)
    calibrator = Calibrator(kind, method).fit(2.0 * logits, y)  # type: ignore[arg-type]
    restored = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    np.testing.assert_array_equal(restored.transform(logits), calibrator.transform(logits))


def test_transform_before_fit_raises() -> None:
    with pytest.raises(NotFitted):
        Calibrator().transform([[0.0, 1.0]])


@pytest.mark.parametrize(
    ("calibrator", "logits", "y"),
    [
        (Calibrator("softmax", "platt"), [[0.0, 1.0]], [0]),
        (Calibrator(bounds=(2.0, 1.0)), [[0.0, 1.0]], [0]),
        (Calibrator(), [[0.0, 1.0]], [2]),
        (Calibrator(), [[0.0, float("inf")]], [0]),
        (Calibrator("sigmoid"), [[0.0, 1.0]], [[0, 2]]),
        (Calibrator("sigmoid"), [[0.0, 1.0]], [0]),
    ],
)
def test_fit_refuses_bad_input(calibrator: Calibrator, logits: list[Any], y: list[Any]) -> None:
    with pytest.raises(InvalidInput):
        calibrator.fit(logits, y)
