"""A model version's evaluation as the console shows it: read from the JSON the engine stored
(``ModelVersion.evaluation``, see engines/metrics.py) into typed records, with the precision-recall
curves, the per-image filters and the comparison of two versions computed from it.

Everything here is pure: the records are rebuilt from the stored JSON on each page, and a field the
engine did not store (an older version, the fake engine) reads as None or empty, never as an error.

The leaf records (Interval, LabelMetrics, ConfusionMatrix, ReliabilityBin) are the engine's own, from
core/records/evaluation.py. ``Evaluation`` and ``ImageRow`` stay apart from the engine's
``ClassificationEvaluation`` and ``ImageResult``: they also hold what the engine adds to the stored JSON
after measuring (calibration, the new-scenes F1), read older JSON without a field as None, and keep
an image's ``scores`` as a mapping label → probability (the JSON may hold either shape).

Precision-recall curves come from the per-image results. When an image carries every label's
probability (``scores``) the curve is the label's one-vs-rest curve; otherwise it is drawn from each
image's top label and its confidence (``basis="top1"``): the images whose top label is the label, taken
in order of confidence. That curve ends at the label's top-1 recall."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

from visionloop.core.records.evaluation import (
    MIN_RELIABLE_TEST_IMAGES,
    ConfusionMatrix,
    Interval,
    LabelMetrics,
    ReliabilityBin,
)

Outcome = Literal["all", "correct", "wrong", "false_positives", "false_negatives"]
OUTCOMES: tuple[Outcome, ...] = ("all", "correct", "wrong", "false_positives", "false_negatives")


@dataclass(frozen=True)
class ImageRow:
    """One test image: its true labels, the top prediction, and the errors at the assumed thresholds."""

    index: int
    image_id: str | None
    true_labels: tuple[str, ...]
    predicted_label: str
    confidence: float
    correct: bool
    predicted_labels: tuple[str, ...]
    false_positives: tuple[str, ...]
    false_negatives: tuple[str, ...]
    scores: Mapping[str, float] | None = None  # every label's probability, when the engine kept them


class _TestImage(Protocol):
    @property
    def image_id(self) -> str | None: ...


class _LabelRow(Protocol):
    @property
    def n_test_images(self) -> int: ...


RowT = TypeVar("RowT", bound=_LabelRow)


class EvaluationFacts(Generic[RowT]):
    """What the pages ask of any evaluation, a classifier's or a detector's: the test images it names,
    its labels with too few test images, where its thresholds were tuned and the TEST set's warnings.
    (A base of the frozen dataclasses that hold these fields; it adds none.)"""

    images: Sequence[_TestImage]
    per_label: tuple[RowT, ...]
    warnings: tuple[str, ...]
    threshold_source: str | None

    @property
    def image_ids(self) -> frozenset[str]:
        return frozenset(i.image_id for i in self.images if i.image_id)

    @property
    def unreliable(self) -> tuple[RowT, ...]:
        """Labels with test images, but fewer than five."""
        return tuple(r for r in self.per_label if 0 < r.n_test_images < MIN_RELIABLE_TEST_IMAGES)

    @property
    def thresholds_from_test(self) -> bool:
        """Whether the assumed thresholds were tuned on the TEST images themselves (optimistic)."""
        return self.threshold_source != "validation"

    @property
    def test_set_warnings(self) -> tuple[str, ...]:
        """The warnings about the TEST set as a whole (the per-label ones are shown per label)."""
        return tuple(w for w in self.warnings if not w.startswith("label '"))


@dataclass(frozen=True)
class ReviewLevel:
    """A ``min_confidence`` setting: the share of wrong answers it sends to review (None without wrong
    answers) and the share of all answers."""

    min_confidence: float
    wrong_caught: float | None
    sent: float


@dataclass(frozen=True)
class ReviewGuide:
    """What a min_confidence review rule catches, measured on training's out-of-fold predictions."""

    basis: str  # "cross-validation", or "cross-validation and new scenes"
    images: int  # out-of-fold predictions (twice the training images with new scenes)
    wrong: int
    few_wrong: bool
    target: float
    levels: tuple[ReviewLevel, ...]
    suggested: ReviewLevel | None


@dataclass(frozen=True)
class Evaluation(EvaluationFacts[LabelMetrics]):
    labels: tuple[str, ...]
    multi_label: bool
    n_images: int
    per_label: tuple[LabelMetrics, ...]
    macro_precision: float | None
    macro_recall: float | None
    macro_f1: float | None
    macro_f1_interval: Interval | None
    accuracy: float | None
    accuracy_interval: Interval | None
    top1_macro_f1: float | None
    confusion: ConfusionMatrix | None
    images: tuple[ImageRow, ...]
    warnings: tuple[str, ...]
    confidence_level: float
    calibration_error: float | None
    reliability: tuple[ReliabilityBin, ...]
    # macro F1 of cross-validation holding out whole scenes (what to expect on photos of new places or
    # days); None where it was not measured
    new_scenes_macro_f1: float | None = None
    # the macro F1 to expect on new photos, and what the range spans ("new scenes to TEST" or "TEST")
    new_photos_macro_f1: Interval | None = None
    new_photos_basis: str | None = None
    # "validation" (chosen on cross-validation of the training images) or "test" (tuned on TEST);
    # None in evaluations stored before it was recorded, which were tuned on TEST
    threshold_source: str | None = None
    n_groups: int | None = None  # groups of near-duplicate test photos the intervals resampled
    review_guide: ReviewGuide | None = None

    def label(self, name: str) -> LabelMetrics | None:
        return next((row for row in self.per_label if row.label == name), None)


# --- reading the stored JSON ----------------------------------------------------------------------------


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: object) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0


def _strs(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list | tuple) else ()


def _map(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _maps(value: object) -> list[Mapping[str, object]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list | tuple) else []


def _interval(value: object) -> Interval | None:
    m = _map(value)
    lower, upper = _num(m.get("lower")), _num(m.get("upper"))
    return Interval(lower, upper) if lower is not None and upper is not None else None


def _label_row(m: Mapping[str, object]) -> LabelMetrics:
    return LabelMetrics(
        label=str(m.get("label", "")),
        n_test_images=_int(m.get("n_test_images")),
        threshold=_num(m.get("threshold")),
        precision=_num(m.get("precision")),
        recall=_num(m.get("recall")),
        f1=_num(m.get("f1")),
        f1_interval=_interval(m.get("f1_interval")),
        true_positives=_int(m.get("true_positives")),
        false_positives=_int(m.get("false_positives")),
        false_negatives=_int(m.get("false_negatives")),
    )


def _scores(value: object, labels: Sequence[str]) -> Mapping[str, float] | None:
    """``scores`` as a list aligned with the labels or as a mapping label → probability."""
    if isinstance(value, list | tuple) and len(value) == len(labels):
        nums = [_num(v) for v in value]
        return None if None in nums else dict(zip(labels, (n for n in nums if n is not None), strict=True))
    if isinstance(value, Mapping):
        found = {str(k): n for k, v in value.items() if (n := _num(v)) is not None}
        return found or None
    return None


def _image_row(m: Mapping[str, object], labels: Sequence[str]) -> ImageRow:
    image_id = m.get("image_id")
    return ImageRow(
        index=_int(m.get("index")),
        image_id=image_id if isinstance(image_id, str) else None,
        true_labels=_strs(m.get("true_labels")),
        predicted_label=str(m.get("predicted_label", "")),
        confidence=_num(m.get("confidence")) or 0.0,
        correct=m.get("correct") is True,
        predicted_labels=_strs(m.get("predicted_labels")),
        false_positives=_strs(m.get("false_positives")),
        false_negatives=_strs(m.get("false_negatives")),
        scores=_scores(m.get("scores"), labels),
    )


def _confusion(value: object) -> ConfusionMatrix | None:
    m = _map(value)
    labels = _strs(m.get("labels"))
    counts = m.get("counts")
    normalized = m.get("normalized")
    if not labels or not isinstance(counts, list) or not isinstance(normalized, list):
        return None
    if len(counts) != len(labels) or len(normalized) != len(labels):
        return None
    rows = []
    shares = []
    for row, share in zip(counts, normalized, strict=True):
        if not isinstance(row, list) or not isinstance(share, list) or len(row) != len(labels):
            return None
        rows.append(tuple(_int(c) for c in row))
        shares.append(tuple(_num(s) or 0.0 for s in share) + (0.0,) * (len(labels) - len(share)))
    return ConfusionMatrix(labels, tuple(rows), tuple(shares), str(m.get("basis", "top1")))


def _review_level(value: object) -> ReviewLevel | None:
    m = _map(value)
    level, sent = _num(m.get("min_confidence")), _num(m.get("sent"))
    if level is None or sent is None:
        return None
    return ReviewLevel(level, _num(m.get("wrong_caught")), sent)


def _review_guide(value: object) -> ReviewGuide | None:
    m = _map(value)
    levels = tuple(row for row in map(_review_level, _maps(m.get("levels"))) if row is not None)
    if not levels:
        return None
    basis = m.get("basis")
    return ReviewGuide(
        basis=basis if isinstance(basis, str) else "cross-validation",
        images=_int(m.get("images")),
        wrong=_int(m.get("wrong")),
        few_wrong=m.get("few_wrong") is True,
        target=_num(m.get("target")) or 0.8,
        levels=levels,
        suggested=_review_level(m.get("suggested")),
    )


def _bins(value: object) -> tuple[ReliabilityBin, ...]:
    bins = []
    for m in _maps(value):
        lower, upper = _num(m.get("lower")), _num(m.get("upper"))
        if lower is None or upper is None:
            continue
        bins.append(
            ReliabilityBin(
                lower, upper, _int(m.get("count")), _num(m.get("mean_confidence")), _num(m.get("accuracy"))
            )
        )
    return tuple(bins)


def read_evaluation(raw: Mapping[str, object] | None) -> Evaluation | None:
    """The evaluation the engine stored with a version, or None when there is none."""
    if not raw:
        return None
    per_label = tuple(_label_row(m) for m in _maps(raw.get("per_label")))
    labels = _strs(raw.get("labels")) or tuple(r.label for r in per_label)
    images = tuple(_image_row(m, labels) for m in _maps(raw.get("images")))
    calibration = _map(raw.get("calibration"))
    level = _num(raw.get("confidence_level"))
    return Evaluation(
        labels=labels,
        multi_label=raw.get("multi_label") is True,
        n_images=_int(raw.get("n_images")) or len(images),
        per_label=per_label,
        macro_precision=_num(raw.get("macro_precision")),
        macro_recall=_num(raw.get("macro_recall")),
        macro_f1=_num(raw.get("macro_f1")),
        macro_f1_interval=_interval(raw.get("macro_f1_interval")),
        accuracy=_num(raw.get("accuracy")),
        accuracy_interval=_interval(raw.get("accuracy_interval")),
        top1_macro_f1=_num(raw.get("top1_macro_f1")),
        confusion=_confusion(raw.get("confusion")),
        images=images,
        warnings=_strs(raw.get("warnings")),
        confidence_level=level if level is not None else 0.95,
        calibration_error=_num(calibration.get("ece")),
        reliability=_bins(calibration.get("reliability")),
        threshold_source=source if isinstance(source := raw.get("threshold_source"), str) else None,
        new_scenes_macro_f1=_num(raw.get("new_scenes_macro_f1")),
        new_photos_macro_f1=_interval(raw.get("new_photos_macro_f1")),
        new_photos_basis=basis
        if isinstance(basis := _map(raw.get("new_photos_macro_f1")).get("basis"), str)
        else None,
        n_groups=_int(raw.get("n_groups")) or None,
        review_guide=_review_guide(raw.get("review_guide")),
    )


# --- precision-recall curves ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CurvePoint:
    recall: float
    precision: float
    threshold: float


@dataclass(frozen=True)
class PrCurve:
    label: str
    points: tuple[CurvePoint, ...]  # by falling threshold; recall never decreases
    positives: int  # test images that hold the label
    average_precision: float | None  # area under the step curve; None without positives
    basis: Literal["scores", "top1"]
    operating: CurvePoint | None  # the label's precision and recall at its assumed threshold (scores only)


def pr_curve(scored: Iterable[tuple[float, bool]], positives: int) -> tuple[CurvePoint, ...]:
    """One point per distinct score, highest first: precision and recall when every image scoring at
    least that much is predicted to hold the label. ``scored``: (score, holds the label) per image that
    could be predicted; ``positives``: the images that hold the label (recall's denominator)."""
    points: list[CurvePoint] = []
    tp = fp = 0
    ordered = sorted(scored, key=lambda s: -s[0])
    for i, (score, positive) in enumerate(ordered):
        tp += positive
        fp += not positive
        if i + 1 < len(ordered) and ordered[i + 1][0] == score:
            continue  # ties are one cut-off
        recall = tp / positives if positives else 0.0
        points.append(CurvePoint(recall, tp / (tp + fp), score))
    return tuple(points)


def average_precision(points: Sequence[CurvePoint]) -> float:
    """Σ (recall_k − recall_{k−1}) · precision_k, the step curve's area (as scikit-learn computes it)."""
    area, last = 0.0, 0.0
    for p in points:
        area += (p.recall - last) * p.precision
        last = p.recall
    return area


def pr_curves(ev: Evaluation) -> list[PrCurve]:
    """A curve for every label with test images, from the per-image results."""
    have_scores = bool(ev.images) and all(i.scores is not None for i in ev.images)
    curves = []
    for row in ev.per_label:
        positives = sum(row.label in i.true_labels for i in ev.images)
        if not positives:
            continue
        if have_scores:
            scored = [((i.scores or {}).get(row.label, 0.0), row.label in i.true_labels) for i in ev.images]
        else:
            scored = [
                (i.confidence, row.label in i.true_labels)
                for i in ev.images
                if i.predicted_label == row.label
            ]
        points = pr_curve(scored, positives)
        operating = None  # only on one-vs-rest curves: a label's threshold is not a top-1 cut-off
        if have_scores and row.precision is not None and row.recall is not None and row.threshold is not None:
            operating = CurvePoint(row.recall, row.precision, row.threshold)
        curves.append(
            PrCurve(
                row.label,
                points,
                positives,
                average_precision(points),
                "scores" if have_scores else "top1",
                operating,
            )
        )
    return curves


# --- the most confused pairs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfusedPair:
    """Test images of ``true_label`` whose top prediction was ``predicted`` (a label they do not hold)."""

    true_label: str
    predicted: str
    images: tuple[ImageRow, ...]  # every such image, in test-set order


def confused_pairs(images: Iterable[ImageRow], limit: int = 3) -> list[ConfusedPair]:
    """The ``limit`` (true label, top prediction) pairs with the most wrong test images, most first (ties
    by name), so the page can show what the model mistakes for what."""
    found: dict[tuple[str, str], list[ImageRow]] = {}
    for image in images:
        if image.predicted_label and image.predicted_label not in image.true_labels:
            for true in image.true_labels:
                found.setdefault((true, image.predicted_label), []).append(image)
    ranked = sorted(found.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [ConfusedPair(t, p, tuple(rows)) for (t, p), rows in ranked[:limit]]


# --- per-image filters ----------------------------------------------------------------------------------


def filter_images(images: Iterable[ImageRow], outcome: str = "all", label: str = "") -> list[ImageRow]:
    """The test images with this outcome; with ``label``, only those where the label is involved: held or
    predicted, or — for false positives / negatives — the label that was wrongly added or missed."""
    if outcome not in OUTCOMES:
        outcome = "all"
    found = []
    for image in images:
        if outcome == "false_positives":
            keep = bool(image.false_positives) and (not label or label in image.false_positives)
        elif outcome == "false_negatives":
            keep = bool(image.false_negatives) and (not label or label in image.false_negatives)
        else:
            involved = not label or label in image.true_labels or label in image.predicted_labels
            keep = involved and (
                outcome == "all" or (outcome == "correct") == (image.correct and not _errors(image))
            )
        if keep:
            found.append(image)
    return found


def _errors(image: ImageRow) -> bool:
    return bool(image.false_positives or image.false_negatives)


def outcome_counts(images: Sequence[ImageRow], label: str = "") -> dict[str, int]:
    return {o: len(filter_images(images, o, label)) for o in OUTCOMES}


# --- comparing two versions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Delta:
    """A figure in two versions: ``change`` is b − a; ``clear`` says whether b lies outside a's 95%
    interval (when there is one), i.e. whether the change is more than the test set's noise."""

    a: float | None
    b: float | None
    change: float | None
    clear: bool | None = None


def delta(a: float | None, b: float | None, interval: Interval | None = None) -> Delta:
    change = None if a is None or b is None else b - a
    clear = None if interval is None or b is None else not interval.contains(b)
    return Delta(a, b, change, clear)


@dataclass(frozen=True)
class CompareRow:
    label: str
    a: LabelMetrics | None
    b: LabelMetrics | None
    f1: Delta
    precision: Delta
    recall: Delta


@dataclass(frozen=True)
class Comparison:
    # (name, figures, kind): kind "share" (a 0-1 ratio, higher is better), "error" (0-1, lower is
    # better) or "count"
    overall: tuple[tuple[str, Delta, str], ...]
    labels: tuple[CompareRow, ...]
    same_test_set: bool | None  # None when either version lacks per-image results


def compare(a: Evaluation, b: Evaluation) -> Comparison:
    overall = (
        ("Macro F1", delta(a.macro_f1, b.macro_f1, a.macro_f1_interval), "share"),
        ("Macro precision", delta(a.macro_precision, b.macro_precision), "share"),
        ("Macro recall", delta(a.macro_recall, b.macro_recall), "share"),
        ("Accuracy", delta(a.accuracy, b.accuracy, a.accuracy_interval), "share"),
        ("Calibration error", delta(a.calibration_error, b.calibration_error), "error"),
        ("Test images", delta(float(a.n_images), float(b.n_images)), "count"),
    )
    names = list(a.labels) + [n for n in b.labels if n not in a.labels]
    names += [r.label for r in (*a.per_label, *b.per_label) if r.label not in names]
    rows = []
    for name in dict.fromkeys(names):
        ra, rb = a.label(name), b.label(name)
        rows.append(
            CompareRow(
                name,
                ra,
                rb,
                delta(_f(ra, "f1"), _f(rb, "f1"), ra.f1_interval if ra else None),
                delta(_f(ra, "precision"), _f(rb, "precision")),
                delta(_f(ra, "recall"), _f(rb, "recall")),
            )
        )
    same = a.image_ids == b.image_ids if a.image_ids and b.image_ids else None
    return Comparison(overall, tuple(rows), same)


def _f(row: LabelMetrics | None, name: Literal["f1", "precision", "recall"]) -> float | None:
    value: float | None = getattr(row, name) if row is not None else None
    return value
