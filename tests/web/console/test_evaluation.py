"""The console's reading of a stored evaluation, its precision-recall curves, filters, comparisons and
charts: pure functions over evaluations the real metrics code computed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from tests.web.console.data import LABELS, evaluation_json, sample_probs
from visionloop.web.console import charts
from visionloop.web.console.evaluation import (
    CurvePoint,
    Interval,
    average_precision,
    compare,
    filter_images,
    outcome_counts,
    pr_curve,
    pr_curves,
    read_evaluation,
)

SVG = "{http://www.w3.org/2000/svg}"


def test_reads_everything_the_engine_stores() -> None:
    truth, probs = sample_probs()
    raw = evaluation_json(truth, probs)
    ev = read_evaluation(raw)
    assert ev is not None
    assert ev.labels == LABELS and ev.n_images == 18 and not ev.multi_label
    assert [r.label for r in ev.per_label] == list(LABELS)
    row = ev.per_label[0]
    assert row.n_test_images == 6 and row.reliable and row.threshold is not None
    assert row.f1 == raw["per_label"][0]["f1"] and row.f1_interval is not None
    assert ev.macro_f1 == raw["macro_f1"] and ev.macro_f1_interval is not None
    assert ev.confusion is not None and sum(map(sum, ev.confusion.counts)) == 18
    assert len(ev.images) == 18 and ev.images[0].image_id == f"{0:064x}"
    assert ev.calibration_error == raw["calibration"]["ece"] and len(ev.reliability) == 15
    assert ev.confidence_level == 0.95 and ev.unreliable == ()


def test_reads_where_the_thresholds_came_from() -> None:
    truth, probs = sample_probs()
    raw = evaluation_json(truth, probs)
    ev = read_evaluation(raw)
    assert ev is not None and ev.threshold_source == "test" and ev.thresholds_from_test
    assert ev.n_groups is None
    assert ev.test_set_warnings == (
        "the TEST set is small (18 images): its F1 may be far from the F1 on new photos",
    )
    ev = read_evaluation(dict(raw, threshold_source="validation", n_groups=5))
    assert ev is not None and not ev.thresholds_from_test and ev.n_groups == 5
    older = read_evaluation({k: v for k, v in raw.items() if k not in ("threshold_source", "n_groups")})
    assert older is not None and older.threshold_source is None and older.thresholds_from_test


def test_reads_the_f1_on_new_scenes() -> None:
    raw = evaluation_json(*sample_probs())
    ev = read_evaluation(dict(raw, new_scenes_macro_f1=0.864))
    assert ev is not None and ev.new_scenes_macro_f1 == 0.864
    missing = read_evaluation(raw)  # not measured (labels too small) or stored before it existed
    assert missing is not None and missing.new_scenes_macro_f1 is None


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {},
        {"accuracy": 0.9, "macro_f1": 0.9, "per_label": []},  # the fake engine's
        {"per_label": [{"label": "a", "f1": "high", "n_test_images": True}], "images": [7, {"index": "x"}]},
        {"per_label": "nope", "confusion": {"labels": ["a"], "counts": [[1, 2]], "normalized": [[1]]}},
        {"calibration": {"ece": float("nan"), "reliability": [{"lower": 0}, "x"]}, "accuracy_interval": {}},
    ],
)
def test_partial_or_odd_evaluations_read_without_errors(raw: dict[str, object] | None) -> None:
    ev = read_evaluation(raw)
    if raw:
        assert ev is not None and ev.confusion is None and ev.reliability == ()
        assert pr_curves(ev) == [] or all(c.points for c in pr_curves(ev))
    else:
        assert ev is None


def test_few_test_images_are_flagged() -> None:
    truth, probs = sample_probs(n_per_label=3)
    ev = read_evaluation(evaluation_json(truth, probs))
    assert ev is not None and [r.label for r in ev.unreliable] == list(LABELS)
    assert ev.warnings[0].startswith("the TEST set is small (9 images)")
    assert ev.warnings[1:] and all("not reliable" in w for w in ev.warnings[1:])


def test_pr_curve_points_and_average_precision() -> None:
    # scores 0.9 (+), 0.8 (−), 0.8 (+), 0.3 (+); 4 images hold the label (one never scored)
    points = pr_curve([(0.9, True), (0.8, False), (0.8, True), (0.3, True)], positives=4)
    assert points == (
        CurvePoint(0.25, 1.0, 0.9),
        CurvePoint(0.5, 2 / 3, 0.8),
        CurvePoint(0.75, 0.75, 0.3),
    )
    assert average_precision(points) == pytest.approx(0.25 * 1 + 0.25 * 2 / 3 + 0.25 * 0.75)
    assert pr_curve([], 3) == ()


def test_pr_curves_from_scores_match_scikit_learn_style_ap() -> None:
    truth, probs = sample_probs(n_per_label=8, seed=3)
    ev = read_evaluation(evaluation_json(truth, probs))
    assert ev is not None
    curves = pr_curves(ev)
    assert [c.label for c in curves] == list(LABELS) and {c.basis for c in curves} == {"scores"}
    for j, curve in enumerate(curves):
        # recomputed by brute force over every cut-off
        y = np.array(truth) == j
        s = probs[:, j]
        ap, last = 0.0, 0.0
        for t in sorted(set(s), reverse=True):
            pred = s >= t
            r = (pred & y).sum() / y.sum()
            ap += (r - last) * (pred & y).sum() / pred.sum()
            last = r
        assert curve.average_precision == pytest.approx(ap)
        assert curve.points[-1].recall == 1.0 and curve.positives == 8
        assert curve.operating is not None
        row = ev.label(curve.label)
        assert row is not None and curve.operating.recall == row.recall


def test_pr_curves_without_scores_use_each_images_top_label() -> None:
    truth, probs = sample_probs(n_per_label=8, seed=3)
    ev = read_evaluation(evaluation_json(truth, probs, scores=False))
    assert ev is not None
    curves = pr_curves(ev)
    assert {c.basis for c in curves} == {"top1"}
    for j, curve in enumerate(curves):
        top1_hits = sum(1 for t, p in zip(truth, probs, strict=True) if t == j and p.argmax() == j)
        assert curve.points[-1].recall == pytest.approx(top1_hits / 8)
        assert curve.operating is None  # a one-vs-rest threshold does not lie on a top-1 curve


def test_filters_for_false_positives_and_negatives() -> None:
    truth, probs = sample_probs(n_per_label=8, seed=1, skill=1.0)
    ev = read_evaluation(evaluation_json(truth, probs))
    assert ev is not None
    images = ev.images
    fps = filter_images(images, "false_positives")
    fns = filter_images(images, "false_negatives")
    assert fps and fns
    assert all(i.false_positives for i in fps) and all(i.false_negatives for i in fns)
    label = LABELS[0]
    fp_a = filter_images(images, "false_positives", label)
    assert fp_a == [i for i in images if label in i.false_positives]
    fn_a = filter_images(images, "false_negatives", label)
    assert fn_a == [i for i in images if label in i.false_negatives]
    # totals agree with the per-label table
    row = ev.label(label)
    assert row is not None and (len(fp_a), len(fn_a)) == (row.false_positives, row.false_negatives)
    right, wrong = filter_images(images, "correct"), filter_images(images, "wrong")
    assert len(right) + len(wrong) == len(images) and not set(map(id, right)) & set(map(id, wrong))
    assert filter_images(images, "nonsense") == list(images)
    counts = outcome_counts(images, label)
    assert counts["false_positives"] == len(fp_a) and counts["all"] >= counts["correct"]


def test_comparison_of_two_versions() -> None:
    truth, probs = sample_probs(n_per_label=8, seed=2, skill=0.5)
    better = probs.copy()
    better[np.arange(len(truth)), truth] += 1.0
    better /= better.sum(1, keepdims=True)
    a = read_evaluation(evaluation_json(truth, probs))
    b = read_evaluation(evaluation_json(truth, better))
    assert a is not None and b is not None
    c = compare(a, b)
    assert c.same_test_set is True
    f1 = {name: d for name, d, _ in c.overall}["Macro F1"]
    assert f1.a == a.macro_f1 and f1.b == b.macro_f1 and f1.change == pytest.approx(b.macro_f1 - a.macro_f1)
    assert [r.label for r in c.labels] == list(LABELS)
    for row in c.labels:
        assert row.a is not None and row.b is not None and row.f1.change is not None
    other = read_evaluation(evaluation_json(truth, probs, image_ids=[f"{i:064x}" for i in range(100, 124)]))
    assert other is not None and compare(a, other).same_test_set is False
    # a label only one version knows
    fake = read_evaluation({"per_label": [{"label": "new", "f1": 0.5, "n_test_images": 2}]})
    assert fake is not None
    rows = {r.label: r for r in compare(a, fake).labels}
    assert rows["new"].a is None and rows["new"].f1.change is None and rows[LABELS[0]].b is None


def test_delta_clear_only_outside_the_interval() -> None:
    from visionloop.web.console.evaluation import delta

    assert delta(0.8, 0.85, Interval(0.7, 0.9)).clear is False
    assert delta(0.8, 0.95, Interval(0.7, 0.9)).clear is True
    assert delta(0.8, 0.95).clear is None and delta(None, 0.5).change is None


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML or this raises
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None
    return root


def test_pr_chart_is_well_formed_svg_with_the_operating_point() -> None:
    truth, probs = sample_probs(n_per_label=8, seed=3)
    ev = read_evaluation(evaluation_json(truth, probs, labels=("a<b", 'c"&d', "e'f")))
    assert ev is not None
    for i, curve in enumerate(pr_curves(ev)):
        root = _parse(charts.pr_chart(curve, i))
        assert curve.label in (root.find(f"{SVG}title").text or "")  # type: ignore[union-attr]
        path = root.find(f"{SVG}path")
        assert path is not None and path.get("d", "").startswith("M")
        circle = root.find(f"{SVG}circle")
        assert circle is not None and "assumed threshold" in (circle.findtext(f"{SVG}title") or "")


def test_reliability_chart_is_well_formed_with_a_bar_per_filled_bin() -> None:
    truth, probs = sample_probs(n_per_label=10, seed=4)
    ev = read_evaluation(evaluation_json(truth, probs))
    assert ev is not None
    root = _parse(charts.reliability_chart(ev.reliability, ev.calibration_error))
    bars = root.findall(f"{SVG}g")
    assert len(bars) == sum(1 for b in ev.reliability if b.count) > 1
    assert all("predictions" in (g.findtext(f"{SVG}title") or "") for g in bars)
    assert "calibration error" in ET.tostring(root, encoding="unicode")
    empty = _parse(charts.reliability_chart((), None))
    assert empty.findall(f"{SVG}g") == []


def test_heat_classes() -> None:
    assert [charts.heat(x) for x in (0, 0.04, 0.05001, 0.5, 1, 1.7, -1)] == [0, 0, 1, 5, 10, 10, 0]
