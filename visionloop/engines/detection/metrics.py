"""Evaluation of a detector on test images (numpy), as Rekognition Custom Labels reports it.

* **Matching** at IoU ≥ 0.5, per image and label: predictions in order of confidence (highest first)
  each take the unmatched true box of their label with the highest IoU; a prediction that finds none is
  a false positive, a true box nobody takes is a false negative. One true box per prediction.
* **AP** of a label: the area under its precision–recall curve over all test images with the precision
  made monotone (the highest precision at any higher recall), summed at every recall step: the
  all-point interpolation of PASCAL VOC 2010+ and COCO's AP50 without COCO's 101-point sampling.
  **mAP@0.5** is the mean over the labels that have true boxes in the test images.
* **Assumed threshold** of a label: the confidence cut-off that maximises its F1 over the test images
  (``engines.metrics.best_f1_threshold``, true boxes nobody found counting as misses); the label's
  precision, recall and F1 are reported at it, and each image's predicted boxes are those at or above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from visionloop.core.entities import Box
from visionloop.engines.detection.decode import iou_matrix
from visionloop.engines.detection.records import Detection
from visionloop.engines.metrics import best_f1_threshold

IOU = 0.5


def _xyxy(boxes: Sequence[Box]) -> np.ndarray:
    return np.array([[b.left, b.top, b.left + b.width, b.top + b.height] for b in boxes], np.float64).reshape(
        -1, 4
    )


def match(truth: Sequence[Box], predicted: Sequence[Detection], iou: float = IOU) -> list[bool]:
    """For each prediction (in the given order), whether it is a true positive (see the module docs)."""
    hits = [False] * len(predicted)
    order = sorted(range(len(predicted)), key=lambda i: -predicted[i].confidence)
    overlaps = iou_matrix(_xyxy([d.box for d in predicted]), _xyxy(truth))
    taken = np.zeros(len(truth), dtype=bool)
    labels = np.array([b.label for b in truth], dtype=object)
    for i in order:
        candidates = np.flatnonzero((labels == predicted[i].label) & ~taken)
        if candidates.size == 0:
            continue
        best = candidates[np.argmax(overlaps[i, candidates])]
        if overlaps[i, best] >= iou:
            taken[best], hits[i] = True, True
    return hits


def average_precision(scores: Sequence[float], hits: Sequence[bool], n_truth: int) -> float:
    """All-point interpolated AP of one label from its predictions' confidences and match flags."""
    if n_truth == 0:
        raise ValueError("AP is undefined without true boxes")
    s, tp = np.asarray(scores, np.float64), np.asarray(hits, bool)
    if s.size == 0:
        return 0.0
    order = np.argsort(-s, kind="stable")
    tp_cum = np.cumsum(tp[order])
    precision = tp_cum / np.arange(1, s.size + 1)
    recall = tp_cum / n_truth
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


@dataclass(frozen=True)
class LabelMetrics:
    """One label's AP, assumed threshold (None when no cut-off finds a box) and scores at it."""

    label: str
    true_boxes: int
    ap: float | None
    threshold: float | None
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class ImageResult:
    """One test image: its true boxes and the predictions at the assumed thresholds, each marked right
    (matched a true box at IoU 0.5) or wrong."""

    image: str
    truth: tuple[Box, ...]
    predicted: tuple[Detection, ...]
    correct: tuple[bool, ...]


@dataclass(frozen=True)
class DetectionEvaluation:
    """mAP@0.5, per-label metrics and per-image results of a detector on the test images."""

    map50: float | None
    per_label: tuple[LabelMetrics, ...]
    images: tuple[ImageResult, ...]

    def thresholds(self, default: float = 0.5) -> dict[str, float]:
        """Assumed threshold per label, ``default`` where none was found."""
        return {m.label: default if m.threshold is None else m.threshold for m in self.per_label}


def _label_metrics(label: str, scores: list[float], hits: list[bool], n_truth: int) -> LabelMetrics:
    if n_truth == 0:
        return LabelMetrics(label, 0, None, None, 0.0, 0.0, 0.0)
    ap = average_precision(scores, hits, n_truth)
    threshold, f1 = best_f1_threshold(scores, hits, n_missed=n_truth - sum(hits))
    if threshold is None:
        return LabelMetrics(label, n_truth, ap, None, 0.0, 0.0, 0.0)
    kept = np.asarray(scores) >= threshold
    tp = int(np.sum(kept & np.asarray(hits, bool)))
    return LabelMetrics(label, n_truth, ap, threshold, tp / int(kept.sum()), tp / n_truth, f1)


def evaluate_detection(
    image_ids: Sequence[str],
    truth: Sequence[Sequence[Box]],
    predicted: Sequence[Sequence[Detection]],
    labels: Sequence[str],
    iou: float = IOU,
) -> DetectionEvaluation:
    """Evaluate predictions against true boxes, one entry per test image (see the module docstring)."""
    hits = [match(t, p, iou) for t, p in zip(truth, predicted, strict=True)]
    per_label = []
    for label in labels:
        scores = [d.confidence for ps in predicted for d in ps if d.label == label]
        flags = [
            h
            for ps, hs in zip(predicted, hits, strict=True)
            for d, h in zip(ps, hs, strict=True)
            if d.label == label
        ]
        n_truth = sum(1 for ts in truth for b in ts if b.label == label)
        per_label.append(_label_metrics(label, scores, flags, n_truth))
    aps = [m.ap for m in per_label if m.ap is not None]
    cut = {m.label: m.threshold for m in per_label}
    images = []
    for image, ts, ps, hs in zip(image_ids, truth, predicted, hits, strict=True):
        kept = [
            (d, h)
            for d, h in zip(ps, hs, strict=True)
            if (t := cut.get(d.label)) is not None and d.confidence >= t
        ]
        images.append(ImageResult(image, tuple(ts), tuple(d for d, _ in kept), tuple(h for _, h in kept)))
    return DetectionEvaluation(float(np.mean(aps)) if aps else None, tuple(per_label), tuple(images))
