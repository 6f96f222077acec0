"""Evaluation of image classifiers on the TEST dataset, on numpy and scikit-learn's metrics.

Definitions, following Rekognition Custom Labels:

* **Predicted at a threshold.** A label is predicted for an image when the image's probability for that
  label is ≥ the threshold. Every label is judged on its own column (one-vs-rest), for single-label
  projects too, so an image's *prediction set* (the labels that reach their own thresholds) may be
  empty or hold several labels: exactly what DetectCustomLabels returns with its default cut-offs.
* **Assumed threshold** (``choose_thresholds``). For each label, a cut-off that maximises the label's
  F1 on the probabilities it is chosen on. All cut-offs in a *range* (next lower score, s] give the same
  predictions as the distinct score s: the images scoring ≥ s. Among the ranges with the highest F1 we
  take the widest gap, then the higher one, and report its **midpoint** (s + next lower score) / 2, or
  s / 2 when no score lies below s. So a label the scores separate perfectly gets a cut-off in the middle
  of the gap between its highest negative and lowest positive score, not its lowest positive score
  (which, for a confident model, is 0.9999… and shows as "1.000"). ``best_f1_threshold`` keeps the older
  rule (the highest cut-off of the best range) for object detection.
* **Where the thresholds come from** (``threshold_source``). ``"validation"``: passed in by the caller,
  chosen on other images than TEST (the training engine uses the out-of-fold, calibrated probabilities
  of cross-validation on the training images), so the TEST F1 is an honest estimate. ``"test"``: tuned on
  the TEST images themselves with the rule above, which makes the TEST F1 optimistic; the untuned
  ``top1_*`` figures are reported beside it for single-label projects.
* **Per-label metrics** are reported at the assumed threshold; **macro** precision, recall and F1 are
  their unweighted means over the labels that have test images.
* **Accuracy** is top-1 (the arg-max label is the true label; ties go to the first label) for
  single-label, and exact match (the prediction set equals the true set) for multi-label.
* **Confusion matrix.** Single-label: top-1 counts, rows = true label, columns = arg-max label, and the
  same row-normalised. Multi-label: ``counts[g, p]`` = images whose true set holds ``g`` and whose
  prediction set holds ``p``; normalised by the images holding ``g`` (rows need not sum to 1).
* **A perfect score** (every resample perfect) gets the lower bound 1 − 3/n for n groups (images
  without groups), the rule of three, instead of a zero-width interval at 1.
* **Confidence intervals** are percentile bootstraps at the fixed assumed thresholds. With ``groups``
  (one key per test image; images sharing a key are near-duplicates, e.g. a series of shots of one
  display) it is a *cluster* bootstrap: each resample draws as many groups as there are, with
  replacement, and an image counts as often as its group was drawn. Without groups every image is its
  own group. Resampling single near-duplicate images would make the intervals far too narrow. A resample
  without a label's images leaves that label out of that resample.
* **Warnings** flag labels with fewer than ``MIN_RELIABLE_TEST_IMAGES`` test images, and a TEST set with
  fewer than ``MIN_TEST_IMAGES`` images or (with groups) ``MIN_TEST_GROUPS`` groups: its F1 may then be
  far from the F1 on new photos.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from visionloop.core.records.evaluation import (
    MIN_RELIABLE_TEST_IMAGES,
    ConfusionMatrix,
    Interval,
    LabelMetrics,
)
from visionloop.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
GroundTruth = Sequence[int | Collection[int]]  # one index (single-label) or a set (multi-label)

ThresholdSource = Literal["validation", "test"]

MIN_TEST_IMAGES = 50  # below this, or below MIN_TEST_GROUPS groups, the TEST set is called small
MIN_TEST_GROUPS = 20
_BOOTSTRAP_CELLS = 4_000_000  # resamples × images drawn at once, bounds memory


def to_jsonable(value: Any) -> Any:
    """Turn (nested) frozen dataclasses and tuples into dicts and lists that json.dumps accepts."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class ImageResult:
    """One test image: truth, top prediction, and per-label errors at the assumed thresholds;
    ``scores`` holds every label's probability in label order (for precision-recall curves)."""

    index: int
    image_id: str | None
    true_labels: tuple[str, ...]
    predicted_label: str
    confidence: float
    correct: bool
    predicted_labels: tuple[str, ...]
    false_positives: tuple[str, ...]
    false_negatives: tuple[str, ...]
    scores: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = to_jsonable(self)
        return result


@dataclass(frozen=True, slots=True)
class ClassificationEvaluation:
    """Everything measured on a test set; see the module docstring for the definitions."""

    labels: tuple[str, ...]
    multi_label: bool
    n_images: int
    per_label: tuple[LabelMetrics, ...]
    macro_precision: float | None
    macro_recall: float | None
    macro_f1: float | None
    macro_f1_interval: Interval | None
    accuracy: float
    accuracy_interval: Interval | None
    top1_macro_precision: float | None
    top1_macro_recall: float | None
    top1_macro_f1: float | None
    confusion: ConfusionMatrix
    images: tuple[ImageResult, ...]
    warnings: tuple[str, ...]
    confidence_level: float
    n_resamples: int
    seed: int
    threshold_source: ThresholdSource = "test"
    n_groups: int | None = None  # distinct near-duplicate groups, when the caller gave them

    def label(self, name: str) -> LabelMetrics:
        """The metrics of the label called ``name``."""
        for metrics in self.per_label:
            if metrics.label == name:
                return metrics
        raise KeyError(name)

    def thresholds(self, default: float = 0.5) -> dict[str, float]:
        """Assumed threshold per label, ``default`` for labels that had no test images."""
        return {m.label: default if m.threshold is None else m.threshold for m in self.per_label}

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = to_jsonable(self)
        for entry, metrics in zip(result["per_label"], self.per_label, strict=True):
            entry["reliable"] = metrics.reliable
        return result


# ---------------------------------------------------------------------------------------------------
# building blocks


def indicator_matrix(y_true: GroundTruth, n_labels: int, multi_label: bool) -> BoolArray:
    """Ground truth as an [n, n_labels] boolean matrix; validates label indices."""
    truth = np.zeros((len(y_true), n_labels), dtype=bool)
    for i, item in enumerate(y_true):
        indices = _label_indices(item, multi_label)
        if any(j < 0 or j >= n_labels for j in indices):
            raise InvalidInput(f"test image {i} has a label index outside 0..{n_labels - 1}")
        truth[i, list(indices)] = True
    return truth


def _label_indices(item: int | Collection[int], multi_label: bool) -> tuple[int, ...]:
    if multi_label:
        if isinstance(item, int | np.integer):
            raise InvalidInput("multi-label ground truth needs a collection of label indices per image")
        return tuple(int(j) for j in item)
    if not isinstance(item, int | np.integer) or isinstance(item, bool):
        raise InvalidInput("single-label ground truth needs one label index per image")
    return (int(item),)


def binary_counts(truth: BoolArray, predicted: BoolArray) -> tuple[IntArray, IntArray, IntArray]:
    """Per-column true positives, false positives and false negatives (the counts LabelMetrics keeps)."""
    tp = np.count_nonzero(truth & predicted, axis=0).astype(np.int64)
    fp = np.count_nonzero(~truth & predicted, axis=0).astype(np.int64)
    fn = np.count_nonzero(truth & ~predicted, axis=0).astype(np.int64)
    return tp, fp, fn


def label_scores(truth: BoolArray, predicted: BoolArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-column precision, recall and F1 of prediction sets; 0 where a denominator is 0 (no warning)."""
    # sklearn.metrics takes a second to import: imported where used, so loading a model does not pay it
    from sklearn.metrics import precision_recall_fscore_support

    # sklearn reads a single column as a binary target with two classes: ask for the positive one only
    columns = [True] if truth.shape[1] == 1 else list(range(truth.shape[1]))
    p, r, f, _ = precision_recall_fscore_support(
        truth, predicted, labels=columns, average=None, zero_division=0.0
    )
    return p, r, f


def f1_from_counts(tp: npt.ArrayLike, fp: npt.ArrayLike, fn: npt.ArrayLike) -> FloatArray:
    """core.scoring.f1_from_counts on arrays: 2·TP / (2·TP + FP + FN), 0 where that is 0/0.

    sklearn scores label sets one at a time; the cut-off search and the bootstrap need F1 of many
    count vectors at once (every cut-off, every resample), and exact ties between equal F1s."""
    tp_, fp_, fn_ = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    return _ratio(2 * tp_, 2 * tp_ + fp_ + fn_)


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _f1_by_cutoff(s: FloatArray, pos: BoolArray, n_pos: int) -> tuple[FloatArray, FloatArray]:
    """Distinct scores, highest first, and the F1 when every item scoring ≥ each is predicted."""
    # from counts, not from sklearn's precision_recall_curve: equal F1s must tie exactly (midpoint rule)
    order = np.argsort(-s, kind="stable")
    s, pos = s[order], pos[order]
    last_of_tie = np.append(s[1:] != s[:-1], True)
    tp = np.cumsum(pos)[last_of_tie]
    fp = np.cumsum(~pos)[last_of_tie]
    return s[last_of_tie], f1_from_counts(tp, fp, n_pos - tp)


def best_f1_threshold(
    scores: npt.ArrayLike, is_positive: npt.ArrayLike, n_missed: int = 0
) -> tuple[float | None, float]:
    """The cut-off that maximises F1 when items with score ≥ cut-off are predicted positive.

    Returns ``(threshold, f1)``; among equal F1 the highest threshold wins, and the threshold is the
    score itself (the top of its range; ``choose_thresholds`` takes the midpoint instead).
    ``n_missed`` counts positives that have no score at all (e.g. ground-truth boxes no detection
    matched), so object detection can reuse this. The threshold is None when no cut-off yields a true
    positive.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    pos = np.asarray(is_positive, dtype=bool).ravel()
    n_pos = int(pos.sum()) + n_missed
    if n_pos == 0 or s.size == 0:
        return None, 0.0
    cuts, f1 = _f1_by_cutoff(s, pos, n_pos)
    best = int(np.argmax(f1))  # first maximum = highest threshold
    if f1[best] == 0.0:
        return None, 0.0
    return float(cuts[best]), float(f1[best])


def midpoint_f1_threshold(scores: npt.ArrayLike, is_positive: npt.ArrayLike) -> tuple[float | None, float]:
    """``(threshold, f1)`` for one label by the midpoint rule of the module docstring: the middle of
    the widest (then highest) range of cut-offs with the best F1. None when the label has no positive."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    pos = np.asarray(is_positive, dtype=bool).ravel()
    n_pos = int(pos.sum())
    if n_pos == 0 or s.size == 0:
        return None, 0.0
    cuts, f1 = _f1_by_cutoff(s, pos, n_pos)
    below = np.append(cuts[1:], 0.0)  # the next lower score; 0 below the lowest
    gaps = cuts - below
    best = np.flatnonzero(f1 == f1.max())
    k = int(best[np.lexsort((cuts[best], gaps[best]))[-1]])  # widest gap, then the higher range
    middle = float(below[k] + gaps[k] / 2.0)
    if not below[k] < middle <= cuts[k]:  # adjacent floats (or a range at 0): keep the score itself
        middle = float(cuts[k])
    return middle, float(f1[k])


def choose_thresholds(
    probs: npt.ArrayLike, truth: BoolArray, *, top_label_only: bool = False
) -> list[float | None]:
    """Per label, the F1-maximising cut-off by the midpoint rule (see the module docstring).

    ``probs`` is [n_images, n_labels] (e.g. out-of-fold, calibrated probabilities of the training
    images), ``truth`` the matching boolean matrix (``indicator_matrix``). None for a label without
    positive images: it is never predicted. ``top_label_only`` (single-label models): a label's cut-off
    is chosen among the images where it came top, the others' probabilities counting as 0. Chosen over
    every image, two labels' cut-offs can both be met by one image (magnetic-tile: 0.30 and 0.46, so an
    unsure tile got both labels) and a label's cut-off is pulled by images another label wins anyway;
    on photos of a later session this scored +0.006 to +0.066 macro F1 (docs/training.md).
    A predicted label is still any label at or above its cut-off (as DetectCustomLabels answers), so a
    top-label cut-off is then raised above the label's highest probability where it did not come top
    (to the middle of the gap up to its next top probability): with two labels every image's other
    label is below 0.5, and a cut-off of 0.25, the middle of the gap down to 0 when the label was right
    every time it came top, gave an unsure tile both labels (magnetic-tile held out: macro F1 0.744 at
    the cut-offs against 0.789 for the top label).
    """
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(truth, dtype=bool)
    if p.ndim != 2 or p.shape != t.shape:
        raise InvalidInput("probabilities and truth must be [n_images, n_labels] matrices of one shape")
    if not (top_label_only and p.shape[0]):
        return [midpoint_f1_threshold(p[:, j], t[:, j])[0] for j in range(p.shape[1])]
    top = np.arange(p.shape[1]) == p.argmax(axis=1)[:, None]
    masked = np.where(top, p, 0.0)
    out: list[float | None] = []
    for j in range(p.shape[1]):
        cut = midpoint_f1_threshold(masked[:, j], t[:, j])[0]
        below = p[~top[:, j], j]
        if cut is not None and below.size and cut <= below.max():
            floor = float(below.max())
            above = masked[:, j][masked[:, j] > floor]
            cut = float((floor + above.min()) / 2.0) if above.size else float(np.nextafter(floor, np.inf))
        out.append(cut)
    return out


def predict_at(probs: FloatArray, thresholds: Sequence[float | None]) -> BoolArray:
    """Prediction sets: probability ≥ the label's threshold (None = never predicted)."""
    cut = np.array([np.inf if t is None else t for t in thresholds], dtype=np.float64)
    return probs >= cut[None, :]


def one_hot_top1(probs: FloatArray) -> BoolArray:
    """Boolean matrix marking each row's arg-max (first one on ties)."""
    top = np.zeros(probs.shape, dtype=bool)
    top[np.arange(probs.shape[0]), np.argmax(probs, axis=1)] = True
    return top


def confusion_matrix(
    truth: BoolArray, predicted: BoolArray, labels: Sequence[str], basis: str
) -> ConfusionMatrix:
    """Counts[g, p] = images with true label g and predicted label p, plus row-normalised rates."""
    # sklearn's confusion_matrix is single-label only; this product counts prediction sets too
    counts = truth.T.astype(np.int64) @ predicted.astype(np.int64)
    support = truth.sum(axis=0).astype(np.float64)
    rates = _ratio(counts.astype(np.float64), support[:, None])
    return ConfusionMatrix(
        labels=tuple(labels),
        counts=tuple(tuple(int(c) for c in row) for row in counts),
        normalized=tuple(tuple(float(r) for r in row) for row in rates),
        basis=basis,
    )


# ---------------------------------------------------------------------------------------------------
# bootstrap


def bootstrap_weights(n_images: int, n_resamples: int, rng: np.random.Generator) -> FloatArray:
    """[n_resamples, n_images] counts of how often each image is drawn in each resample."""
    idx = rng.integers(0, n_images, size=(n_resamples, n_images))
    flat = idx + (np.arange(n_resamples) * n_images)[:, None]
    return np.bincount(flat.ravel(), minlength=n_resamples * n_images).reshape(n_resamples, -1).astype(float)


def group_codes(groups: Sequence[str] | None, n_images: int) -> IntArray:
    """Each image's group as an index 0..n_groups-1; without groups every image is its own group."""
    if groups is None:
        return np.arange(n_images, dtype=np.int64)
    if len(groups) != n_images or not all(isinstance(g, str) for g in groups):
        raise InvalidInput("groups needs one string key per test image")
    codes: IntArray = np.unique(np.array(groups, dtype=object), return_inverse=True)[1].astype(np.int64)
    return codes.ravel()


def _sum_by_group(values: FloatArray, codes: IntArray, n_groups: int) -> FloatArray:
    """Rows of ``values`` added up per group: [n_groups, ...]."""
    sums = np.zeros((n_groups, *values.shape[1:]), dtype=np.float64)
    np.add.at(sums, codes, values)
    return sums


def _group_resamples(codes: IntArray, n_resamples: int, seed: int) -> Iterator[tuple[FloatArray, int]]:
    """Chunks of [resamples, n_groups] draw counts (a cluster bootstrap); ``n_groups`` is the second item."""
    n_groups = int(codes.max()) + 1 if codes.size else 0
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _BOOTSTRAP_CELLS // max(1, n_groups))
    for start in range(0, n_resamples, per_chunk):
        yield bootstrap_weights(n_groups, min(per_chunk, n_resamples - start), rng), n_groups


def bootstrap_f1(
    truth: BoolArray, predicted: BoolArray, n_resamples: int, seed: int, groups: IntArray | None = None
) -> tuple[FloatArray, FloatArray]:
    """Per-resample per-label F1 (NaN where the resample lacks the label) and macro F1 (NaN if none).

    ``groups`` (from ``group_codes``) makes it a cluster bootstrap; None resamples single images.
    """
    codes = group_codes(None, truth.shape[0]) if groups is None else groups
    per_image = (truth & predicted, ~truth & predicted, truth & ~predicted)
    chunks = []
    for w, n_groups in _group_resamples(codes, n_resamples, seed):
        tp_g, fp_g, fn_g = (_sum_by_group(m.astype(np.float64), codes, n_groups) for m in per_image)
        tp, fp, fn = w @ tp_g, w @ fp_g, w @ fn_g
        f1 = f1_from_counts(tp, fp, fn)
        f1[(tp + fn) == 0] = np.nan
        chunks.append(f1)
    f1_all = np.concatenate(chunks, axis=0) if chunks else np.empty((0, truth.shape[1]))
    return f1_all, _nan_row_mean(f1_all)


def _nan_row_mean(values: FloatArray) -> FloatArray:
    finite = np.isfinite(values)
    count = finite.sum(axis=1)
    total = np.where(finite, values, 0.0).sum(axis=1)
    mean: FloatArray = np.full(count.shape, np.nan)
    np.divide(total, count, out=mean, where=count > 0)
    return mean


def percentile_interval(samples: FloatArray, confidence_level: float) -> Interval | None:
    """Percentile interval of the finite samples, None if there are none."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None
    alpha = (1.0 - confidence_level) / 2.0
    lower, upper = np.quantile(finite, [alpha, 1.0 - alpha])
    return Interval(float(lower), float(upper))


# ---------------------------------------------------------------------------------------------------
# the evaluation


def evaluate_classification(
    y_true: GroundTruth,
    probs: npt.ArrayLike,
    labels: Sequence[str],
    *,
    multi_label: bool = False,
    image_ids: Sequence[str] | None = None,
    thresholds: Sequence[float | None] | None = None,
    groups: Sequence[str] | None = None,
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    seed: int = 0,
) -> ClassificationEvaluation:
    """Evaluate predicted probabilities [n, n_labels] against ground truth on a test set.

    ``y_true`` holds one label index per image (single-label) or a collection of indices per image
    (multi-label, possibly empty). ``thresholds``: one cut-off per label chosen elsewhere than on these
    images (None = never predicted); without them they are tuned on these images (``choose_thresholds``).
    ``groups``: one key per image, near-duplicates sharing a key, for a cluster bootstrap.
    ``n_resamples=0`` skips the bootstrap intervals.
    """
    p = _validate(y_true, probs, labels, image_ids, n_resamples, confidence_level)
    truth = indicator_matrix(y_true, len(labels), multi_label)
    codes = group_codes(groups, p.shape[0])
    source: ThresholdSource = "test" if thresholds is None else "validation"
    cutoffs = (
        choose_thresholds(p, truth) if thresholds is None else _given_thresholds(thresholds, len(labels))
    )
    predicted = predict_at(p, cutoffs)
    top1 = one_hot_top1(p)
    correct = np.all(predicted == truth, axis=1) if multi_label else np.any(top1 & truth, axis=1)
    f1_samples, macro_samples = bootstrap_f1(truth, predicted, n_resamples, seed, codes)
    per_label = _per_label(labels, truth, predicted, cutoffs, f1_samples, confidence_level)
    top1_scores = (None, None, None) if multi_label else _macro(truth, top1)
    macro = _macro_of(per_label)
    if multi_label:
        confusion = confusion_matrix(truth, predicted, labels, "threshold")
    else:
        confusion = confusion_matrix(truth, top1, labels, "top1")
    n_groups = None if groups is None else int(codes.max()) + 1
    units = int(codes.max()) + 1 if codes.size else 0
    return ClassificationEvaluation(
        labels=tuple(labels),
        multi_label=multi_label,
        n_images=int(p.shape[0]),
        per_label=per_label,
        macro_precision=macro[0],
        macro_recall=macro[1],
        macro_f1=macro[2],
        macro_f1_interval=_not_certain(percentile_interval(macro_samples, confidence_level), units),
        accuracy=float(correct.mean()),
        accuracy_interval=_not_certain(
            _accuracy_interval(correct, n_resamples, seed, confidence_level, codes), units
        ),
        top1_macro_precision=top1_scores[0],
        top1_macro_recall=top1_scores[1],
        top1_macro_f1=top1_scores[2],
        confusion=confusion,
        images=_image_results(labels, image_ids, p, truth, predicted, correct),
        warnings=_warnings(labels, truth, n_groups),
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        seed=seed,
        threshold_source=source,
        n_groups=n_groups,
    )


def _given_thresholds(thresholds: Sequence[float | None], n_labels: int) -> list[float | None]:
    """The caller's thresholds as plain floats (JSON-ready); one per label, finite or None."""
    if len(thresholds) != n_labels:
        raise InvalidInput(f"need one threshold per label ({n_labels}), got {len(thresholds)}")
    result: list[float | None] = []
    for t in thresholds:
        if t is not None and (isinstance(t, bool) or not np.isfinite(t)):
            raise InvalidInput("thresholds must be finite numbers or None")
        result.append(None if t is None else float(t))
    return result


def _validate(
    y_true: GroundTruth,
    probs: npt.ArrayLike,
    labels: Sequence[str],
    image_ids: Sequence[str] | None,
    n_resamples: int,
    confidence_level: float,
) -> FloatArray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise InvalidInput("probabilities must be a non-empty [n_images, n_labels] matrix")
    if p.shape[1] != len(labels) or len(set(labels)) != len(labels):
        raise InvalidInput("need one distinct label name per probability column")
    if len(y_true) != p.shape[0] or (image_ids is not None and len(image_ids) != p.shape[0]):
        raise InvalidInput("ground truth, image ids and probabilities must cover the same images")
    if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
        raise InvalidInput("probabilities must be finite and within 0..1")
    if n_resamples < 0 or not 0.0 < confidence_level < 1.0:
        raise InvalidInput("n_resamples must be ≥ 0 and confidence_level within (0, 1)")
    return p


def _per_label(
    labels: Sequence[str],
    truth: BoolArray,
    predicted: BoolArray,
    thresholds: Sequence[float | None],
    f1_samples: FloatArray,
    confidence_level: float,
) -> tuple[LabelMetrics, ...]:
    tp, fp, fn = binary_counts(truth, predicted)
    precision, recall, f1 = label_scores(truth, predicted)
    support = truth.sum(axis=0)
    result = []
    for j, name in enumerate(labels):
        has_images = bool(support[j] > 0)
        result.append(
            LabelMetrics(
                label=name,
                n_test_images=int(support[j]),
                threshold=thresholds[j],
                precision=float(precision[j]) if has_images else None,
                recall=float(recall[j]) if has_images else None,
                f1=float(f1[j]) if has_images else None,
                f1_interval=percentile_interval(f1_samples[:, j], confidence_level) if has_images else None,
                true_positives=int(tp[j]),
                false_positives=int(fp[j]),
                false_negatives=int(fn[j]),
            )
        )
    return tuple(result)


def _macro_of(per_label: Sequence[LabelMetrics]) -> tuple[float | None, float | None, float | None]:
    """Unweighted means of per-label precision, recall, F1 over labels with test images."""
    rows = [(m.precision, m.recall, m.f1) for m in per_label if m.f1 is not None]
    if not rows:
        return None, None, None
    p, r, f = np.array(rows, dtype=np.float64).mean(axis=0).tolist()
    return float(p), float(r), float(f)


def _macro(truth: BoolArray, predicted: BoolArray) -> tuple[float | None, float | None, float | None]:
    """Macro precision, recall, F1 of fixed predictions over labels with test images."""
    present = truth.any(axis=0)
    if not present.any():
        return None, None, None
    p, r, f = (float(s[present].mean()) for s in label_scores(truth, predicted))
    return p, r, f


def _not_certain(interval: Interval | None, units: int) -> Interval | None:
    """A bootstrap of a perfect score is a point: every resample is perfect too. Its lower bound then
    becomes 1 − 3/n for n groups (images without groups): the rule of three, the 95% bound on an error
    rate after n independent successes, so a small perfect TEST set does not claim certainty."""
    if interval is None or interval.lower < 1.0 or units == 0:
        return interval
    return Interval(max(0.0, 1.0 - 3.0 / units), interval.upper)


def _accuracy_interval(
    correct: BoolArray, n_resamples: int, seed: int, confidence_level: float, groups: IntArray
) -> Interval | None:
    """Percentile interval of accuracy over the same resamples as the F1 intervals (same seed)."""
    if n_resamples == 0:
        return None
    samples = []
    for w, n_groups in _group_resamples(groups, n_resamples, seed):
        hits = _sum_by_group(correct.astype(np.float64), groups, n_groups)
        sizes = _sum_by_group(np.ones(correct.size), groups, n_groups)
        samples.append((w @ hits) / (w @ sizes))
    return percentile_interval(np.concatenate(samples), confidence_level)


def _image_results(
    labels: Sequence[str],
    image_ids: Sequence[str] | None,
    probs: FloatArray,
    truth: BoolArray,
    predicted: BoolArray,
    correct: BoolArray,
) -> tuple[ImageResult, ...]:
    names = np.array(labels, dtype=object)
    top = np.argmax(probs, axis=1)

    def pick(mask: BoolArray) -> tuple[str, ...]:
        return tuple(str(n) for n in names[mask])

    return tuple(
        ImageResult(
            index=i,
            image_id=None if image_ids is None else image_ids[i],
            true_labels=pick(truth[i]),
            predicted_label=labels[top[i]],
            confidence=float(probs[i, top[i]]),
            correct=bool(correct[i]),
            predicted_labels=pick(predicted[i]),
            false_positives=pick(predicted[i] & ~truth[i]),
            false_negatives=pick(truth[i] & ~predicted[i]),
            scores=tuple(round(float(p), 6) for p in probs[i]),
        )
        for i in range(probs.shape[0])
    )


def _warnings(labels: Sequence[str], truth: BoolArray, n_groups: int | None) -> tuple[str, ...]:
    messages = []
    n_images = truth.shape[0]
    if n_images < MIN_TEST_IMAGES or (n_groups is not None and n_groups < MIN_TEST_GROUPS):
        size = _count(n_images, "image") + ("" if n_groups is None else f", {_count(n_groups, 'group')}")
        messages.append(f"the TEST set is small ({size}): its F1 may be far from the F1 on new photos")
    for name, count in zip(labels, truth.sum(axis=0).tolist(), strict=True):
        if count == 0:
            messages.append(f"label '{name}' has no test images; its metrics cannot be computed")
        elif count < MIN_RELIABLE_TEST_IMAGES:
            messages.append(f"label '{name}' has only {_count(count, 'test image')}; its F1 is not reliable")
    return tuple(messages)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
