"""Evaluation of image classifiers on the TEST dataset, in plain numpy (fast, no heavy import).

Definitions, following Rekognition Custom Labels:

* **Predicted at a threshold.** A label is predicted for an image when the image's probability for that
  label is ≥ the threshold. Every label is judged on its own column (one-vs-rest), for single-label
  projects too, so an image's *prediction set* (the labels that reach their own thresholds) may be
  empty or hold several labels: exactly what DetectCustomLabels returns with its default cut-offs.
* **Assumed threshold.** For each label, the cut-off in 0–1 that maximises that label's F1 on the test
  set. Candidates are the label's distinct test probabilities: any cut-off in (next lower score, s] gives
  the same predictions as s, and we report s, the highest. Among equal F1 the highest threshold wins
  (fewer false positives). Because it is tuned on the test set, this F1 is slightly optimistic; the
  untuned ``top1_*`` figures are reported beside it for single-label projects.
* **Per-label metrics** are reported at the assumed threshold; **macro** precision, recall and F1 are
  their unweighted means over the labels that have test images.
* **Accuracy** is top-1 (the arg-max label is the true label; ties go to the first label) for
  single-label, and exact match (the prediction set equals the true set) for multi-label.
* **Confusion matrix.** Single-label: top-1 counts, rows = true label, columns = arg-max label, and the
  same row-normalised. Multi-label: ``counts[g, p]`` = images whose true set holds ``g`` and whose
  prediction set holds ``p``; normalised by the images holding ``g`` (rows need not sum to 1).
* **Confidence intervals** are percentile bootstraps over test images at the fixed assumed thresholds;
  a resample without a label's images leaves that label out of that resample.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
GroundTruth = Sequence[int | Collection[int]]  # one index (single-label) or a set (multi-label)

MIN_RELIABLE_TEST_IMAGES = 5
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
class Interval:
    """A two-sided confidence interval."""

    lower: float
    upper: float

    def to_dict(self) -> dict[str, Any]:
        return {"lower": self.lower, "upper": self.upper}


@dataclass(frozen=True, slots=True)
class LabelMetrics:
    """One label's metrics at its assumed threshold; None where the label has no test images."""

    label: str
    n_test_images: int
    threshold: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    f1_interval: Interval | None
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def reliable(self) -> bool:
        """Whether the label has enough test images for its F1 to mean much."""
        return self.n_test_images >= MIN_RELIABLE_TEST_IMAGES

    def to_dict(self) -> dict[str, Any]:
        return dict(to_jsonable(self), reliable=self.reliable)


@dataclass(frozen=True, slots=True)
class ConfusionMatrix:
    """Counts and row-normalised rates; rows are true labels, columns predicted labels."""

    labels: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    normalized: tuple[tuple[float, ...], ...]
    basis: str  # "top1" (single-label) or "threshold" (multi-label prediction sets)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = to_jsonable(self)
        return result


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
    """Per-column true positives, false positives and false negatives."""
    tp = np.count_nonzero(truth & predicted, axis=0).astype(np.int64)
    fp = np.count_nonzero(~truth & predicted, axis=0).astype(np.int64)
    fn = np.count_nonzero(truth & ~predicted, axis=0).astype(np.int64)
    return tp, fp, fn


def precision_recall_f1(
    tp: npt.ArrayLike, fp: npt.ArrayLike, fn: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Precision, recall and F1 from counts; 0 where a denominator is 0 (never a warning)."""
    tp_, fp_, fn_ = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    return _ratio(tp_, tp_ + fp_), _ratio(tp_, tp_ + fn_), _ratio(2 * tp_, 2 * tp_ + fp_ + fn_)


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def best_f1_threshold(
    scores: npt.ArrayLike, is_positive: npt.ArrayLike, n_missed: int = 0
) -> tuple[float | None, float]:
    """The cut-off that maximises F1 when items with score ≥ cut-off are predicted positive.

    Returns ``(threshold, f1)``; among equal F1 the highest threshold wins. ``n_missed`` counts
    positives that have no score at all (e.g. ground-truth boxes no detection matched), so object
    detection can reuse this. The threshold is None when no cut-off yields a true positive.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    pos = np.asarray(is_positive, dtype=bool).ravel()
    n_pos = int(pos.sum()) + n_missed
    if n_pos == 0 or s.size == 0:
        return None, 0.0
    order = np.argsort(-s, kind="stable")
    s, pos = s[order], pos[order]
    last_of_tie = np.append(s[1:] != s[:-1], True)
    tp = np.cumsum(pos)[last_of_tie]
    fp = np.cumsum(~pos)[last_of_tie]
    f1 = 2.0 * tp / (tp + fp + n_pos)  # = 2tp / (2tp + fp + fn)
    best = int(np.argmax(f1))  # first maximum = highest threshold
    if f1[best] == 0.0:
        return None, 0.0
    return float(s[last_of_tie][best]), float(f1[best])


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


def bootstrap_f1(
    truth: BoolArray, predicted: BoolArray, n_resamples: int, seed: int
) -> tuple[FloatArray, FloatArray]:
    """Per-resample per-label F1 (NaN where the resample lacks the label) and macro F1 (NaN if none)."""
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _BOOTSTRAP_CELLS // max(1, truth.shape[0]))
    tp_i, fp_i, fn_i = (
        m.astype(np.float64) for m in (truth & predicted, ~truth & predicted, truth & ~predicted)
    )
    chunks = []
    for start in range(0, n_resamples, per_chunk):
        w = bootstrap_weights(truth.shape[0], min(per_chunk, n_resamples - start), rng)
        tp, fp, fn = w @ tp_i, w @ fp_i, w @ fn_i
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
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
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    seed: int = 0,
) -> ClassificationEvaluation:
    """Evaluate predicted probabilities [n, n_labels] against ground truth on a test set.

    ``y_true`` holds one label index per image (single-label) or a collection of indices per image
    (multi-label, possibly empty). ``n_resamples=0`` skips the bootstrap intervals.
    """
    p = _validate(y_true, probs, labels, image_ids, n_resamples, confidence_level)
    truth = indicator_matrix(y_true, len(labels), multi_label)
    thresholds = [best_f1_threshold(p[:, j], truth[:, j])[0] for j in range(len(labels))]
    predicted = predict_at(p, thresholds)
    top1 = one_hot_top1(p)
    correct = np.all(predicted == truth, axis=1) if multi_label else np.any(top1 & truth, axis=1)
    f1_samples, macro_samples = bootstrap_f1(truth, predicted, n_resamples, seed)
    per_label = _per_label(labels, truth, predicted, thresholds, f1_samples, confidence_level)
    top1_scores = (None, None, None) if multi_label else _macro(truth, top1)
    macro = _macro_of(per_label)
    if multi_label:
        confusion = confusion_matrix(truth, predicted, labels, "threshold")
    else:
        confusion = confusion_matrix(truth, top1, labels, "top1")
    return ClassificationEvaluation(
        labels=tuple(labels),
        multi_label=multi_label,
        n_images=int(p.shape[0]),
        per_label=per_label,
        macro_precision=macro[0],
        macro_recall=macro[1],
        macro_f1=macro[2],
        macro_f1_interval=percentile_interval(macro_samples, confidence_level),
        accuracy=float(correct.mean()),
        accuracy_interval=_accuracy_interval(correct, n_resamples, seed, confidence_level),
        top1_macro_precision=top1_scores[0],
        top1_macro_recall=top1_scores[1],
        top1_macro_f1=top1_scores[2],
        confusion=confusion,
        images=_image_results(labels, image_ids, p, truth, predicted, correct),
        warnings=_warnings(labels, truth),
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        seed=seed,
    )


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
    precision, recall, f1 = precision_recall_f1(tp, fp, fn)
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
    scores = precision_recall_f1(*binary_counts(truth, predicted))
    p, r, f = (float(s[present].mean()) for s in scores)
    return p, r, f


def _accuracy_interval(
    correct: BoolArray, n_resamples: int, seed: int, confidence_level: float
) -> Interval | None:
    """Percentile interval of accuracy over the same resamples as the F1 intervals (same seed)."""
    if n_resamples == 0:
        return None
    rng = np.random.default_rng(seed)
    samples = []
    per_chunk = max(1, _BOOTSTRAP_CELLS // correct.size)
    for start in range(0, n_resamples, per_chunk):
        w = bootstrap_weights(correct.size, min(per_chunk, n_resamples - start), rng)
        samples.append(w @ correct.astype(np.float64) / correct.size)
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


def _warnings(labels: Sequence[str], truth: BoolArray) -> tuple[str, ...]:
    messages = []
    for name, count in zip(labels, truth.sum(axis=0).tolist(), strict=True):
        if count == 0:
            messages.append(f"label '{name}' has no test images; its metrics cannot be computed")
        elif count < MIN_RELIABLE_TEST_IMAGES:
            noun = "image" if count == 1 else "images"
            messages.append(f"label '{name}' has only {count} test {noun}; its F1 is not reliable")
    return tuple(messages)
