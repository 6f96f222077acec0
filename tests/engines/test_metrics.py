"""Evaluation metrics: hand-computed cases, scikit-learn cross-checks, bootstrap and edge cases."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn import metrics as skm

from visionloop.core import scoring
from visionloop.engines.metrics import (
    ClassificationEvaluation,
    best_f1_threshold,
    binary_counts,
    bootstrap_f1,
    choose_thresholds,
    evaluate_classification,
    f1_from_counts,
    indicator_matrix,
    label_scores,
    to_jsonable,
)
from visionloop.errors import InvalidInput

# --- factories -------------------------------------------------------------------------------------


def make_single_label(
    n: int, n_labels: int, seed: int = 0, signal: float = 2.0
) -> tuple[list[int], np.ndarray]:
    """Noisy softmax probabilities whose true class gets a logit boost of ``signal``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_labels, size=n)
    logits = rng.normal(size=(n, n_labels))
    logits[np.arange(n), y] += signal
    probs = np.exp(logits)
    return y.tolist(), probs / probs.sum(axis=1, keepdims=True)


def make_multi_label(n: int, n_labels: int, seed: int = 0) -> tuple[list[set[int]], np.ndarray]:
    """Random label sets with sigmoid probabilities correlated with them."""
    rng = np.random.default_rng(seed)
    truth = rng.random((n, n_labels)) < 0.3
    logits = rng.normal(size=(n, n_labels)) + np.where(truth, 1.5, -1.5)
    return [set(np.flatnonzero(row).tolist()) for row in truth], 1.0 / (1.0 + np.exp(-logits))


def column(ev: ClassificationEvaluation, name: str) -> npt.NDArray[np.float64]:
    """One field of every label's metrics, as floats (None becomes NaN)."""
    return np.array([getattr(m, name) for m in ev.per_label], dtype=np.float64)


# --- the assumed threshold -------------------------------------------------------------------------


def test_best_threshold_hand_computed() -> None:
    # cut-offs: 0.9 → F1 2/3, 0.8 → 1/2, 0.7 → 4/5 (tp 2, fp 1, fn 0), 0.6 → 2/3, 0.5 → 4/7
    threshold, f1 = best_f1_threshold([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 0, 0])
    assert threshold == 0.7
    assert f1 == pytest.approx(0.8)


def test_equal_f1_prefers_the_highest_threshold() -> None:
    # 0.9 → tp 1, fn 1: F1 2/3;  0.6 → tp 2, fp 2: F1 2/3 as well; the higher cut-off wins
    threshold, f1 = best_f1_threshold([0.9, 0.8, 0.7, 0.6], [1, 0, 0, 1])
    assert threshold == 0.9
    assert f1 == pytest.approx(2 / 3)


def test_tied_scores_are_predicted_together() -> None:
    # 0.8 takes both tied images (tp 1, fp 1, fn 1: F1 1/2); 0.5 gives tp 2, fp 1: F1 4/5
    assert best_f1_threshold([0.8, 0.8, 0.5], [1, 0, 1]) == pytest.approx((0.5, 0.8))
    assert best_f1_threshold([0.8, 0.8, 0.3], [1, 1, 0]) == (0.8, 1.0)


def test_threshold_without_positives_or_with_missed_ones() -> None:
    assert best_f1_threshold([0.9, 0.1], [0, 0]) == (None, 0.0)
    assert best_f1_threshold([], []) == (None, 0.0)
    # detection-style: a ground-truth object no detection matched still counts as a false negative
    threshold, f1 = best_f1_threshold([0.9, 0.4], [1, 0], n_missed=1)
    assert (threshold, f1) == pytest.approx((0.9, 2 / 3))
    assert best_f1_threshold([0.9], [0], n_missed=2) == (None, 0.0)


def test_threshold_is_optimal_against_a_brute_force_search() -> None:
    y, probs = make_single_label(150, 5, seed=3, signal=1.0)
    truth = indicator_matrix(y, 5, multi_label=False)
    for j in range(5):
        threshold, f1 = best_f1_threshold(probs[:, j], truth[:, j])
        assert threshold is not None
        grid = np.unique(np.concatenate([probs[:, j], np.linspace(0, 1, 101)]))
        hits = probs[:, j][None, :] >= grid[:, None]  # one row of predictions per cut-off
        tp = (hits & truth[:, j]).sum(axis=1)
        brute = 2 * tp / (hits.sum(axis=1) + truth[:, j].sum())
        assert f1 == pytest.approx(max(brute))
        assert f1 == pytest.approx(skm.f1_score(truth[:, j], probs[:, j] >= threshold))
        assert threshold == max(t for t, s in zip(grid, brute, strict=True) if s == pytest.approx(f1))


# --- the midpoint rule (choose_thresholds) --------------------------------------------------------


def one_label(scores: list[float], positive: list[int]) -> float | None:
    """The chosen threshold of a single label with these scores and truths."""
    truth = np.array(positive, dtype=bool)[:, None]
    return choose_thresholds(np.array(scores)[:, None], truth)[0]


def test_perfect_separation_gives_the_middle_of_the_gap() -> None:
    # a confident model: the old rule reported the lowest positive score, 0.99995, shown as "1.000"
    scores, positive = [0.99999, 0.99995, 0.9999, 0.2, 0.001], [1, 1, 1, 0, 0]
    assert best_f1_threshold(scores, positive)[0] == 0.9999
    threshold = one_label(scores, positive)
    assert threshold is not None and 0.2 < threshold < 0.9999
    assert threshold == pytest.approx((0.2 + 0.9999) / 2)


def test_a_label_with_a_single_positive() -> None:
    assert one_label([0.8, 0.2, 0.1], [1, 0, 0]) == pytest.approx(0.5)
    # .9- .7+ .3- .1-: the best cut-offs are (0.3, 0.7] (tp 1, fp 1: F1 2/3)
    assert one_label([0.9, 0.7, 0.3, 0.1], [0, 1, 0, 0]) == pytest.approx(0.5)
    assert one_label([0.6], [1]) == pytest.approx(0.3)  # nothing lower: between 0 and the score
    assert one_label([0.9, 0.4], [0, 0]) is None  # no positive: never predicted


def test_equal_f1_prefers_the_widest_then_the_highest_range() -> None:
    # (0.8, 0.9] and (0, 0.6] both give F1 2/3: the wider one wins (the old rule took 0.9)
    assert one_label([0.9, 0.8, 0.7, 0.6], [1, 0, 0, 1]) == pytest.approx(0.3)
    # (0.5, 0.75] and (0, 0.25] are equally wide: the higher one wins
    assert one_label([0.75, 0.5, 0.375, 0.25], [1, 0, 0, 1]) == 0.625


def test_chosen_thresholds_reach_the_best_f1() -> None:
    y, probs = make_multi_label(200, 6, seed=14)
    truth = indicator_matrix(y, 6, multi_label=True)
    chosen = choose_thresholds(probs, truth)
    for j, threshold in enumerate(chosen):
        assert threshold is not None
        best = best_f1_threshold(probs[:, j], truth[:, j])[1]
        assert skm.f1_score(truth[:, j], probs[:, j] >= threshold) == pytest.approx(best)
        assert threshold not in probs[:, j]  # strictly inside a gap between two scores
    with pytest.raises(InvalidInput):
        choose_thresholds(probs[:, :3], truth)


# --- counts and scores against scikit-learn --------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_scores_follow_the_counts_at_fixed_thresholds(seed: int) -> None:
    y, probs = make_multi_label(300, 6, seed=seed)
    truth = indicator_matrix(y, 6, multi_label=True)
    thresholds = np.random.default_rng(seed).uniform(0.05, 0.99, size=6)
    thresholds[0] = 1.01  # a label never predicted: precision 0, no warning
    predicted = probs >= thresholds
    tp, fp, fn = binary_counts(truth, predicted)
    expected = (tp / np.maximum(tp + fp, 1), tp / np.maximum(tp + fn, 1), f1_from_counts(tp, fp, fn))
    for columns in (slice(None), slice(0, 1), slice(1, 2)):  # one column: sklearn reads it as binary
        got = label_scores(truth[:, columns], predicted[:, columns])
        for mine, want in zip(got, expected, strict=True):
            np.testing.assert_allclose(mine, want[columns], rtol=0, atol=1e-12)
    nothing = np.zeros((4, 1), dtype=bool)
    assert [s.tolist() for s in label_scores(nothing, nothing)] == [[0.0], [0.0], [0.0]]


def test_f1_from_counts_is_the_core_rule_on_arrays() -> None:
    counts = [(tp, fp, fn) for tp in range(4) for fp in range(3) for fn in range(3)]
    tp, fp, fn = (np.array(c) for c in zip(*counts, strict=True))
    got = f1_from_counts(tp, fp, fn)
    assert got.tolist() == [scoring.f1_from_counts(*c) for c in counts]
    assert got[0] == 0.0  # 0/0


@pytest.mark.parametrize("seed", [0, 1])
def test_single_label_evaluation_matches_sklearn(seed: int) -> None:
    y, probs = make_single_label(200, 8, seed=seed)
    labels = [f"l{j}" for j in range(8)]
    ev = evaluate_classification(y, probs, labels, n_resamples=0)
    truth = indicator_matrix(y, 8, multi_label=False)
    thresholds = column(ev, "threshold")
    p, r, f, support = skm.precision_recall_fscore_support(truth, probs >= thresholds, average=None)
    np.testing.assert_allclose(column(ev, "precision"), p)
    np.testing.assert_allclose(column(ev, "recall"), r)
    np.testing.assert_allclose(column(ev, "f1"), f)
    assert [m.n_test_images for m in ev.per_label] == support.tolist()
    assert ev.macro_f1 == pytest.approx(f.mean())
    top1 = probs.argmax(axis=1)
    assert ev.accuracy == pytest.approx(skm.accuracy_score(y, top1))
    assert ev.top1_macro_f1 == pytest.approx(skm.f1_score(y, top1, average="macro", zero_division=0))
    assert ev.confusion.basis == "top1"
    np.testing.assert_array_equal(ev.confusion.counts, skm.confusion_matrix(y, top1, labels=range(8)))
    expected = skm.confusion_matrix(y, top1, labels=range(8), normalize="true")
    np.testing.assert_allclose(ev.confusion.normalized, expected)


def test_multi_label_accuracy_is_subset_accuracy() -> None:
    y, probs = make_multi_label(250, 5, seed=4)
    ev = evaluate_classification(y, probs, list("abcde"), multi_label=True, n_resamples=0)
    truth = indicator_matrix(y, 5, multi_label=True)
    predicted = probs >= column(ev, "threshold")
    assert ev.accuracy == pytest.approx(skm.accuracy_score(truth, predicted))
    f1 = skm.f1_score(truth, predicted, average=None, zero_division=0)
    np.testing.assert_allclose(column(ev, "f1"), f1)
    assert ev.top1_macro_f1 is None


# --- hand-computed evaluations ---------------------------------------------------------------------


def binary_case() -> tuple[list[int], list[list[float]]]:
    """Five images, labels 'a' (0) and 'b' (1); see the test for the worked numbers."""
    probs = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.5, 0.5]]
    return [0, 1, 0, 1, 1], probs


def test_single_label_hand_computed() -> None:
    y, probs = binary_case()
    ev = evaluate_classification(y, probs, ["a", "b"], n_resamples=0)
    a, b = ev.per_label
    # a: scores .9+ .8- .7+ .6- .5-  → best cut-offs (0.6, 0.7]: tp 2, fp 1, fn 0; midpoint 0.65
    assert (a.threshold, a.true_positives, a.false_positives, a.false_negatives) == pytest.approx(
        (0.65, 2, 1, 0)
    )
    assert (a.precision, a.recall, a.f1) == pytest.approx((2 / 3, 1.0, 0.8))
    # b: scores .5+ .4+ .3- .2+ .1-  → cut-offs give F1 1/2, 4/5, 2/3, 6/7, 3/4: best (0.1, 0.2]
    assert (b.threshold, b.true_positives, b.false_positives, b.false_negatives) == pytest.approx(
        (0.15, 3, 1, 0)
    )
    assert (b.precision, b.recall, b.f1) == pytest.approx((0.75, 1.0, 6 / 7))
    assert ev.macro_f1 == pytest.approx((0.8 + 6 / 7) / 2)
    assert ev.macro_precision == pytest.approx((2 / 3 + 0.75) / 2)
    assert ev.macro_recall == 1.0
    # top-1 (ties to the first label): every image goes to 'a', so 'b' is never predicted
    assert ev.accuracy == pytest.approx(2 / 5)
    assert ev.confusion.counts == ((2, 0), (3, 0))
    assert ev.confusion.normalized == ((1.0, 0.0), (1.0, 0.0))
    assert ev.top1_macro_f1 == pytest.approx((4 / 7 + 0.0) / 2)
    assert ev.top1_macro_precision == pytest.approx(0.2)
    assert ev.threshold_source == "test" and ev.n_groups is None
    assert ev.warnings == (
        "the TEST set is small (5 images): its F1 may be far from the F1 on new photos",
        "label 'a' has only 2 test images; its F1 is not reliable",
        "label 'b' has only 3 test images; its F1 is not reliable",
    )


def test_per_image_results_hand_computed() -> None:
    y, probs = binary_case()
    ev = evaluate_classification(y, probs, ["a", "b"], image_ids=list("vwxyz"), n_resamples=0)
    first, second, third, _, last = ev.images
    assert (first.image_id, first.true_labels, first.predicted_label, first.correct) == (
        "v",
        ("a",),
        "a",
        True,
    )
    assert first.predicted_labels == ("a",) and first.false_positives == () and first.false_negatives == ()
    assert second.predicted_labels == ("a", "b") and second.false_positives == ("a",) and not second.correct
    assert third.false_positives == ("b",)
    assert (last.predicted_label, last.confidence, last.predicted_labels) == ("a", 0.5, ("b",))


def test_multi_label_hand_computed() -> None:
    y = [{0, 1}, {1}, set(), {0}]
    probs = [[0.9, 0.8, 0.2], [0.3, 0.6, 0.7], [0.2, 0.1, 0.4], [0.6, 0.7, 0.1]]
    ev = evaluate_classification(y, probs, ["x", "y", "z"], multi_label=True, n_resamples=0)
    x, yy, z = ev.per_label
    # x: .9+ .6+ .3- .2- → cut-offs (0.3, 0.6] separate perfectly: midpoint 0.45
    assert (x.threshold, x.f1) == pytest.approx((0.45, 1.0))
    # y: .8+ → 2/3, .7- → 1/2, .6+ → 4/5 (tp 2, fp 1), .1- → 2/3; best (0.1, 0.6]: midpoint 0.35
    assert (yy.threshold, yy.precision, yy.recall, yy.f1) == pytest.approx((0.35, 2 / 3, 1.0, 0.8))
    assert (z.n_test_images, z.threshold, z.precision, z.recall, z.f1, z.f1_interval) == (
        0,
        None,
        None,
        None,
        None,
        None,
    )
    assert ev.macro_f1 == pytest.approx(0.9) and ev.macro_precision == pytest.approx(5 / 6)
    assert ev.accuracy == 0.75  # exact match fails only on the last image (extra 'y')
    assert ev.images[3].false_positives == ("y",) and ev.images[1].predicted_label == "z"
    assert ev.confusion.basis == "threshold"
    assert ev.confusion.counts == ((2, 2, 0), (1, 2, 0), (0, 0, 0))
    assert ev.confusion.normalized == ((1.0, 1.0, 0.0), (0.5, 1.0, 0.0), (0.0, 0.0, 0.0))
    assert "label 'z' has no test images; its metrics cannot be computed" in ev.warnings
    assert ev.thresholds(default=0.5) == pytest.approx({"x": 0.45, "y": 0.35, "z": 0.5})


# --- thresholds chosen elsewhere ------------------------------------------------------------------


def test_given_thresholds_are_used_as_given() -> None:
    y, probs = binary_case()
    tuned = evaluate_classification(y, probs, ["a", "b"], n_resamples=0)
    given = evaluate_classification(y, probs, ["a", "b"], thresholds=[np.float64(0.85), 0.45], n_resamples=0)
    a, b = given.per_label
    assert (a.threshold, b.threshold) == (0.85, 0.45)
    # a: .9+ | .8- .7+ .6- .5- → tp 1, fn 1: F1 2/3;  b: .5+ | .4+ .3- .2+ .1- → tp 1, fn 2: F1 1/2
    assert (a.f1, b.f1) == pytest.approx((2 / 3, 0.5))
    assert given.macro_f1 == pytest.approx((2 / 3 + 0.5) / 2)
    assert tuned.macro_f1 == pytest.approx((0.8 + 6 / 7) / 2)
    assert (given.threshold_source, tuned.threshold_source) == ("validation", "test")
    data = given.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert type(data["per_label"][0]["threshold"]) is float
    assert data["threshold_source"] == "validation" and data["n_groups"] is None


def test_a_given_none_threshold_never_predicts() -> None:
    y, probs = binary_case()
    ev = evaluate_classification(y, probs, ["a", "b"], thresholds=[None, 0.0], n_resamples=0)
    a, b = ev.per_label
    assert (a.threshold, a.true_positives, a.false_positives, a.f1) == (None, 0, 0, 0.0)
    assert (b.true_positives, b.false_positives) == (3, 2)


@pytest.mark.parametrize("thresholds", [[0.5], [0.5, 0.5, 0.5], [0.5, float("nan")], [True, 0.5]])
def test_bad_thresholds_are_refused(thresholds: list[Any]) -> None:
    y, probs = binary_case()
    with pytest.raises(InvalidInput):
        evaluate_classification(y, probs, ["a", "b"], thresholds=thresholds)


# --- bootstrap intervals ---------------------------------------------------------------------------


def test_intervals_contain_the_point_estimates() -> None:
    y, probs = make_single_label(200, 10, seed=5)
    ev = evaluate_classification(y, probs, [str(j) for j in range(10)])
    for m in ev.per_label:
        assert m.f1_interval is not None and m.f1 is not None
        assert 0.0 <= m.f1_interval.lower <= m.f1 <= m.f1_interval.upper <= 1.0
    assert ev.macro_f1_interval is not None and ev.macro_f1 is not None
    assert ev.macro_f1_interval.lower <= ev.macro_f1 <= ev.macro_f1_interval.upper
    assert ev.accuracy_interval is not None
    assert ev.accuracy_interval.lower <= ev.accuracy <= ev.accuracy_interval.upper


def test_intervals_narrow_with_more_test_images() -> None:
    widths = []
    for n in (60, 2000):
        y, probs = make_single_label(n, 4, seed=6)
        interval = evaluate_classification(y, probs, list("abcd")).macro_f1_interval
        assert interval is not None
        widths.append(interval.upper - interval.lower)
    assert widths[1] < widths[0] / 3  # about sqrt(2000 / 60) ≈ 5.8 times narrower


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    y, probs = make_single_label(80, 5, seed=7)
    first = evaluate_classification(y, probs, list("abcde"), seed=11).to_dict()
    assert evaluate_classification(y, probs, list("abcde"), seed=11).to_dict() == first
    assert evaluate_classification(y, probs, list("abcde"), seed=12).to_dict() != first


def test_bootstrap_matches_a_plain_loop() -> None:
    y, probs = make_single_label(40, 3, seed=8)
    truth = indicator_matrix(y, 3, multi_label=False)
    predicted = probs >= 0.4
    per_label, macro = bootstrap_f1(truth, predicted, n_resamples=30, seed=9)
    draws = np.random.default_rng(9).integers(0, 40, size=(30, 40))
    for b, idx in enumerate(draws):
        present = truth[idx].any(axis=0)
        f1 = skm.f1_score(truth[idx], predicted[idx], average=None, zero_division=0)
        np.testing.assert_allclose(per_label[b][present], f1[present])
        assert np.isnan(per_label[b][~present]).all()
        assert macro[b] == pytest.approx(f1[present].mean())


def test_bootstrap_is_fast() -> None:
    y, probs = make_single_label(200, 20, seed=10)
    labels = [f"label-{j}" for j in range(20)]
    evaluate_classification(y, probs, labels)  # warm-up
    start = time.perf_counter()
    evaluate_classification(y, probs, labels, n_resamples=1000)
    assert time.perf_counter() - start < 1.0


def test_no_resamples_means_no_intervals() -> None:
    y, probs = binary_case()
    ev = evaluate_classification(y, probs, ["a", "b"], n_resamples=0)
    assert ev.macro_f1_interval is None and ev.accuracy_interval is None
    assert all(m.f1_interval is None for m in ev.per_label)


def near_duplicate_series() -> tuple[list[int], np.ndarray, list[str]]:
    """10 series of 10 identical shots; the model is right on 7 series and confidently wrong on 3."""
    y, rows, groups = [], [], []
    for g in range(10):
        label, right = g % 2, g < 7
        p_true = 0.8 if right else 0.2
        row = [p_true, 1 - p_true] if label == 0 else [1 - p_true, p_true]
        y += [label] * 10
        rows += [row] * 10
        groups += [f"display-{g}"] * 10
    return y, np.array(rows), groups


def test_cluster_bootstrap_widens_the_intervals_of_near_duplicates() -> None:
    y, probs, groups = near_duplicate_series()
    common: dict[str, Any] = {"thresholds": [0.5, 0.5], "n_resamples": 2000, "seed": 3}
    single = evaluate_classification(y, probs, ["a", "b"], **common)
    grouped = evaluate_classification(y, probs, ["a", "b"], groups=groups, **common)
    assert grouped.accuracy == single.accuracy == 0.7 and grouped.macro_f1 == single.macro_f1
    assert (grouped.n_groups, single.n_groups) == (10, None)

    def width(interval: Any) -> float:
        assert interval is not None
        return float(interval.upper - interval.lower)

    # 10 independent series, not 100 independent images: about sqrt(10) ≈ 3 times wider
    assert width(grouped.accuracy_interval) > 2.5 * width(single.accuracy_interval)
    assert width(grouped.macro_f1_interval) > 2.5 * width(single.macro_f1_interval)
    for g, s in zip(grouped.per_label, single.per_label, strict=True):
        assert width(g.f1_interval) > 2.5 * width(s.f1_interval)
    assert grouped.to_dict()["n_groups"] == 10


def test_one_group_per_image_is_the_plain_bootstrap() -> None:
    y, probs = make_single_label(70, 4, seed=15)
    plain = evaluate_classification(y, probs, list("abcd"), n_resamples=300, seed=2)
    own = evaluate_classification(
        y, probs, list("abcd"), groups=[f"{i:03d}" for i in range(70)], n_resamples=300, seed=2
    )
    assert own.macro_f1_interval == plain.macro_f1_interval
    assert own.accuracy_interval == plain.accuracy_interval
    assert [m.f1_interval for m in own.per_label] == [m.f1_interval for m in plain.per_label]
    assert own.n_groups == 70 and plain.n_groups is None


def test_groups_must_cover_every_image() -> None:
    y, probs = binary_case()
    with pytest.raises(InvalidInput):
        evaluate_classification(y, probs, ["a", "b"], groups=["x", "y"])


SMALL = "the TEST set is small"


@pytest.mark.parametrize(
    ("n", "n_groups", "expected"),
    [
        (49, None, "the TEST set is small (49 images): its F1 may be far from the F1 on new photos"),
        (50, None, None),
        (60, 12, "the TEST set is small (60 images, 12 groups): its F1 may be far from the F1 on new photos"),
        (60, 20, None),
    ],
)
def test_small_test_set_warning(n: int, n_groups: int | None, expected: str | None) -> None:
    y, probs = make_single_label(n, 2, seed=16)
    groups = None if n_groups is None else [f"g{i % n_groups}" for i in range(n)]
    warnings = evaluate_classification(y, probs, ["a", "b"], groups=groups, n_resamples=0).warnings
    small = [w for w in warnings if w.startswith(SMALL)]
    assert small == ([] if expected is None else [expected])
    if expected is not None:
        assert warnings[0] == expected  # the set's size first, before the per-label warnings


# --- edge cases ------------------------------------------------------------------------------------


def test_all_correct() -> None:
    y = [0, 1, 2, 0, 1, 2]
    ev = evaluate_classification(y, np.eye(3)[y], ["a", "b", "c"])
    assert ev.macro_f1 == ev.accuracy == ev.top1_macro_f1 == 1.0
    assert all(m.f1_interval is not None and m.f1_interval.lower == 1.0 for m in ev.per_label)
    assert ev.confusion.normalized == ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    assert all(m.threshold == 0.5 for m in ev.per_label)  # the middle of the gap, not 1.0


def test_one_test_image() -> None:
    ev = evaluate_classification([0], [[0.8, 0.2]], ["a", "b"])
    a, b = ev.per_label
    assert (a.threshold, a.f1, a.n_test_images) == (0.4, 1.0, 1)  # nothing scores lower: half of 0.8
    assert a.f1_interval is not None and (a.f1_interval.lower, a.f1_interval.upper) == (1.0, 1.0)
    assert b.f1 is None and b.threshold is None and b.false_positives == 0
    assert ev.accuracy == 1.0 and ev.macro_f1 == 1.0
    assert ev.warnings == (
        "the TEST set is small (1 image): its F1 may be far from the F1 on new photos",
        "label 'a' has only 1 test image; its F1 is not reliable",
        "label 'b' has no test images; its metrics cannot be computed",
    )


def test_label_without_test_images_in_single_label() -> None:
    y, probs = make_single_label(60, 4, seed=12)
    y = [min(v, 2) for v in y]  # nothing is labelled 3
    ev = evaluate_classification(y, probs, list("abcd"))
    d = ev.label("d")
    assert (d.n_test_images, d.f1, d.threshold, d.f1_interval) == (0, None, None, None)
    assert ev.macro_f1 == pytest.approx(np.mean([m.f1 for m in ev.per_label[:3]]))
    assert ev.confusion.normalized[3] == (0.0, 0.0, 0.0, 0.0)
    assert not d.reliable and ev.label("a").reliable
    with pytest.raises(KeyError):
        ev.label("e")


def test_no_label_has_test_images() -> None:
    ev = evaluate_classification([set(), set()], [[0.2, 0.4], [0.1, 0.9]], ["a", "b"], multi_label=True)
    assert ev.macro_f1 is None and ev.macro_f1_interval is None
    assert ev.accuracy == 1.0  # nothing predicted, nothing present


def test_to_dict_is_json_serialisable() -> None:
    y, probs = make_single_label(30, 3, seed=13)
    data = evaluate_classification(y, probs, list("abc"), image_ids=[f"img{i}" for i in range(30)]).to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert set(data["per_label"][0]) >= {"label", "threshold", "f1", "f1_interval", "reliable"}
    assert data["images"][0]["image_id"] == "img0"
    assert isinstance(data["confusion"]["counts"][0], list)


def test_each_image_keeps_every_labels_score() -> None:
    y, probs = make_single_label(12, 3, seed=5)
    ev = evaluate_classification(y, probs, list("abc"))
    for image, row in zip(ev.images, np.asarray(probs), strict=True):
        assert image.scores == pytest.approx(tuple(row), abs=1e-6)
        assert image.confidence == pytest.approx(max(image.scores), abs=1e-6)
    assert ev.to_dict()["images"][0]["scores"] == list(ev.images[0].scores)


@pytest.mark.parametrize(
    ("y", "probs", "labels", "multi_label"),
    [
        ([0], [[0.5, 1.5]], ["a", "b"], False),  # probability above 1
        ([0], [[0.5, float("nan")]], ["a", "b"], False),
        ([0, 1], [[0.5, 0.5]], ["a", "b"], False),  # lengths differ
        ([2], [[0.5, 0.5]], ["a", "b"], False),  # index out of range
        ([{0}], [[0.5, 0.5]], ["a", "b"], False),  # a set in a single-label project
        ([0], [[0.5, 0.5]], ["a", "b"], True),  # an int in a multi-label project
        ([0], [[0.5, 0.5]], ["a", "a"], False),  # duplicate names
        ([], np.zeros((0, 2)), ["a", "b"], False),
    ],
)
def test_invalid_input_is_refused(
    y: list[Any], probs: list[Any], labels: list[str], multi_label: bool
) -> None:
    with pytest.raises(InvalidInput):
        evaluate_classification(y, probs, labels, multi_label=multi_label)


def test_a_perfect_score_does_not_claim_certainty() -> None:
    # 30 images in 10 groups, all right: the bootstrap alone would say [1, 1]
    probs = np.tile(np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]), (10, 1))
    truth = [0, 1, 0] * 10
    groups = [f"g{i // 3}" for i in range(30)]
    ev = evaluate_classification(truth, probs, ["a", "b"], groups=groups, thresholds=[0.5, 0.5], seed=1)
    assert ev.macro_f1 == 1.0 and ev.accuracy == 1.0
    assert ev.macro_f1_interval is not None and ev.accuracy_interval is not None
    assert ev.macro_f1_interval.lower == pytest.approx(0.7) and ev.macro_f1_interval.upper == 1.0
    assert ev.accuracy_interval.lower == pytest.approx(0.7)
    alone = evaluate_classification(truth, probs, ["a", "b"], thresholds=[0.5, 0.5], seed=1)
    assert alone.macro_f1_interval is not None and alone.macro_f1_interval.lower == pytest.approx(0.9)


def test_label_metrics_to_dict_is_its_fields_and_reliable() -> None:
    y, probs = make_multi_label(60, 3, seed=4)
    ev = evaluate_classification(y, probs, ["a", "b", "c"], multi_label=True, n_resamples=20)
    for metrics, stored in zip(ev.per_label, ev.to_dict()["per_label"], strict=True):
        assert metrics.to_dict() == stored == dict(to_jsonable(metrics), reliable=metrics.reliable)


def test_a_single_label_threshold_is_chosen_where_the_label_came_top() -> None:
    """Label A's probability on four A images (0.9, 0.8, 0.6, 0.45) and four B images (0.55, 0.3, 0.2,
    0.1); B's is the rest. Over every image A's best cut-off takes in the A image at 0.45, which B won:
    0.375, so an image at 0.45/0.55 meets both labels' cut-offs. Among the images A came top (0.45
    counts as 0) A's cut-off is 0.575, between the B image at 0.55 and the A image at 0.6."""
    p_a = np.array([0.9, 0.8, 0.6, 0.45, 0.55, 0.3, 0.2, 0.1])
    probs = np.stack([p_a, 1 - p_a], axis=1)
    truth = indicator_matrix([0, 0, 0, 0, 1, 1, 1, 1], 2, False)
    every = choose_thresholds(probs, truth)
    top = choose_thresholds(probs, truth, top_label_only=True)
    assert every[0] == pytest.approx(0.375) and every[1] is not None and every[1] <= 0.55
    assert top[0] == pytest.approx(0.575)
    assert (probs[3] >= np.array(every)).all()  # the unsure image got both labels
    assert not (probs[3] >= np.array(top)).all()
    assert choose_thresholds(np.zeros((0, 2)), np.zeros((0, 2), bool), top_label_only=True) == [None, None]


def test_a_top_label_cut_off_is_above_the_labels_probabilities_where_it_was_not_top() -> None:
    """Two labels, every top label right: among the images where A came top (0.9, 0.7, 0.55) the best
    cut-off's gap reaches down to 0 (0.275), which B's images meet with A at 0.45 and 0.3. It is raised
    to the middle of 0.45 (A's highest probability where it was not top) and 0.55."""
    p_a = np.array([0.9, 0.7, 0.55, 0.45, 0.3, 0.1])
    probs = np.stack([p_a, 1 - p_a], axis=1)
    truth = indicator_matrix([0, 0, 0, 1, 1, 1], 2, False)
    cut = choose_thresholds(probs, truth, top_label_only=True)
    assert cut[0] == pytest.approx(0.5) and cut[1] == pytest.approx(0.5)
    predicted = probs >= np.array(cut)
    assert (predicted.sum(axis=1) == 1).all() and (predicted == truth).all()
    # a label that never comes top above its highest other probability is cut just above it
    probs3 = np.array([[0.4, 0.35, 0.25], [0.2, 0.45, 0.35], [0.1, 0.3, 0.6]])
    cut3 = choose_thresholds(probs3, indicator_matrix([0, 1, 2], 3, False), top_label_only=True)
    assert cut3[0] == pytest.approx(0.3) and cut3[1] == pytest.approx(0.4)
    assert (probs3 >= np.array(cut3)).sum() == 3
