"""The two rules every use case applies to a model's probabilities: which labels it predicts, and F1.

**The threshold rule** (Rekognition's): a label is predicted for an image when its probability reaches
its cut-off. The cut-off is the request's ``min_confidence`` (0-100) divided by 100 when one is given,
else the label's own assumed threshold (``ModelVersion.thresholds``), or ``DEFAULT_THRESHOLD`` for a
label that has none. So ``min_confidence=0`` predicts every label, and a ``min_confidence`` replaces the
assumed threshold whether it lies above or below it.

**F1** of one label: 2·P·R / (P + R) = 2·TP / (2·TP + FP + FN), 0 when there is nothing to divide by.
engines/metrics.py computes the same on numpy arrays (many labels and bootstrap resamples at once).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from visionloop.core.entities import Prediction
from visionloop.core.ports import FoundObject, ImageOutput, LoadedDetector, LoadedModel
from visionloop.errors import InvalidInput

DEFAULT_THRESHOLD = 0.5  # the cut-off of a label without an assumed threshold


# --- the threshold rule ---------------------------------------------------------------------------------


def cut_off(label: str, thresholds: Mapping[str, float], min_confidence: float | None = None) -> float:
    """The probability ``label`` must reach to be predicted (see the module docstring)."""
    if min_confidence is not None:
        return min_confidence / 100
    return thresholds.get(label, DEFAULT_THRESHOLD)


def predicted(
    probs: Mapping[str, float], thresholds: Mapping[str, float], min_confidence: float | None = None
) -> dict[str, float]:
    """The labels of ``probs`` (label → probability) that are predicted, with their probability, in
    the order of ``probs``."""
    return {label: p for label, p in probs.items() if p >= cut_off(label, thresholds, min_confidence)}


def check_detect_options(min_confidence: float | None, max_results: int | None) -> None:
    """InvalidInput unless ``min_confidence`` is within 0-100 and ``max_results`` is not negative."""
    if min_confidence is not None and not 0 <= min_confidence <= 100:
        raise InvalidInput("min_confidence must be between 0 and 100")
    if max_results is not None and max_results < 0:
        raise InvalidInput("max_results must not be negative")


def to_predictions(
    probs: Mapping[str, float],
    thresholds: Mapping[str, float],
    min_confidence: float | None = None,
    max_results: int | None = None,
) -> list[Prediction]:
    """The predicted labels as DetectCustomLabels returns them: confidence 0-100, highest first (ties
    by label), at most ``max_results``."""
    out = [
        Prediction(label, round(100 * p, 3))
        for label, p in predicted(probs, thresholds, min_confidence).items()
    ]
    out.sort(key=lambda pr: (-pr.confidence, pr.label))
    return out[:max_results] if max_results is not None else out


def to_box_predictions(
    objects: Sequence[FoundObject],
    thresholds: Mapping[str, float],
    min_confidence: float | None = None,
    max_results: int | None = None,
) -> list[Prediction]:
    """A detector's objects as DetectCustomLabels returns them: one entry per object at or above its
    label's cut-off, with its box, highest confidence first, at most ``max_results``."""
    out = [
        Prediction(o.label, round(100 * o.probability, 3), o.box)
        for o in objects
        if o.probability >= cut_off(o.label, thresholds, min_confidence)
    ]
    out.sort(key=lambda pr: -pr.confidence)  # stable: equal confidences keep the detector's order
    return out[:max_results] if max_results is not None else out


def output_predictions(
    output: ImageOutput,
    thresholds: Mapping[str, float],
    min_confidence: float | None = None,
    max_results: int | None = None,
) -> list[Prediction]:
    """What DetectCustomLabels answers for one image: boxes from a detector, labels from a classifier."""
    if output.objects is not None:
        return to_box_predictions(output.objects, thresholds, min_confidence, max_results)
    return to_predictions(output.probs, thresholds, min_confidence, max_results)


def model_outputs(model: LoadedModel | LoadedDetector, images: Sequence[bytes]) -> list[ImageOutput]:
    """Run a loaded model on ``images``: per image, each label's probability and a detector's objects
    (a label's probability is then that of its best object, 0 when it has none)."""
    if isinstance(model, LoadedDetector):
        outputs = []
        for objects in model.detect(images):
            probs = dict.fromkeys(model.labels, 0.0)
            for o in objects:
                probs[o.label] = max(probs.get(o.label, 0.0), o.probability)
            outputs.append(ImageOutput(probs, tuple(objects)))
        return outputs
    return [ImageOutput(dict(zip(model.labels, row, strict=True))) for row in model.predict(images)]


# --- F1 -------------------------------------------------------------------------------------------------


def f1(precision: float, recall: float) -> float:
    """The harmonic mean of precision and recall; 0 when both are 0."""
    total = precision + recall
    return 0.0 if total == 0 else 2 * precision * recall / total


def f1_from_counts(true_positives: int, false_positives: int, false_negatives: int) -> float:
    """F1 from a label's counts, 2·TP / (2·TP + FP + FN); 0 when all three are 0."""
    denominator = 2 * true_positives + false_positives + false_negatives
    return 0.0 if denominator == 0 else 2 * true_positives / denominator


def f1_by_label(
    truth: Sequence[Collection[str]],
    predictions: Sequence[Collection[str]],
    labels: Collection[str],
    *,
    absent: float = 1.0,
) -> dict[str, float]:
    """Per label F1 over the images, from each image's true and predicted labels (0 when the label is
    never right). A label neither true nor predicted on any image scores ``absent``."""
    pairs = list(zip(truth, predictions, strict=True))
    out = {}
    for label in labels:
        tp = sum(1 for t, p in pairs if label in t and label in p)
        fp = sum(1 for t, p in pairs if label not in t and label in p)
        fn = sum(1 for t, p in pairs if label in t and label not in p)
        out[label] = absent if tp + fp + fn == 0 else f1_from_counts(tp, fp, fn)
    return out


__all__ = [
    "DEFAULT_THRESHOLD",
    "check_detect_options",
    "cut_off",
    "f1",
    "f1_by_label",
    "f1_from_counts",
    "model_outputs",
    "output_predictions",
    "predicted",
    "to_box_predictions",
    "to_predictions",
]
