"""A detector's evaluation as the product stores and publishes it (numpy only, no torch).

* ``evaluation_document``: the JSON kept in ``ModelVersion.evaluation`` and read by the console, the CLI
  and the native API: ``"task": "object_detection"``, mAP@0.5, macro precision/recall/F1 over the labels
  with true boxes in TEST, the per-label table and every test image's true and predicted boxes (the
  predictions at the assumed thresholds, each marked correct or not).
* ``detection_summary``: Rekognition Custom Labels' ``EvaluationResultSummary`` for an object-detection
  version (``../shared/rekognition_api.md`` §4.1): the standard keys, no confusion matrix (Rekognition
  gives none for detection), and mAP with per-label AP under ``VisionloopExtensions``.

A label's "test images" are the TEST images with at least one of its boxes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from visionloop.core.entities import Box
from visionloop.core.records.evaluation import MIN_RELIABLE_TEST_IMAGES
from visionloop.engines.detection.metrics import IOU, DetectionEvaluation, LabelMetrics
from visionloop.engines.evaluation_summary import EXTENSIONS_KEY, SUMMARY_VERSION, evaluation_timestamp

TASK = "object_detection"


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _box(b: Box) -> dict[str, Any]:
    return {"label": b.label, "left": b.left, "top": b.top, "width": b.width, "height": b.height}


def test_images_by_label(evaluation: DetectionEvaluation) -> dict[str, int]:
    """How many TEST images hold at least one box of each label."""
    counts = {m.label: 0 for m in evaluation.per_label}
    for image in evaluation.images:
        for label in {b.label for b in image.truth}:
            counts[label] = counts.get(label, 0) + 1
    return counts


def macro(evaluation: DetectionEvaluation) -> dict[str, float | None]:
    """Macro precision, recall and F1 over the labels with true boxes in TEST (at their thresholds)."""
    scored = [m for m in evaluation.per_label if m.true_boxes > 0]
    return {
        "precision": _mean([m.precision for m in scored]),
        "recall": _mean([m.recall for m in scored]),
        "f1": _mean([m.f1 for m in scored]),
    }


def label_warnings(evaluation: DetectionEvaluation) -> list[str]:
    """The per-label warnings, worded as the classification evaluation words them."""
    out = []
    for label, n in test_images_by_label(evaluation).items():
        if n == 0:
            out.append(f"label '{label}' has no test images; its metrics cannot be computed")
        elif n < MIN_RELIABLE_TEST_IMAGES:
            images = "1 test image" if n == 1 else f"{n} test images"
            out.append(f"label '{label}' has only {images}; its F1 is not reliable")
    return out


def _label_row(m: LabelMetrics, n_images: int) -> dict[str, Any]:
    scored = m.true_boxes > 0
    return {
        "label": m.label,
        "n_test_images": n_images,
        "true_boxes": m.true_boxes,
        "ap": m.ap,
        "threshold": m.threshold,
        "precision": m.precision if scored else None,
        "recall": m.recall if scored else None,
        "f1": m.f1 if scored else None,
        "reliable": n_images >= MIN_RELIABLE_TEST_IMAGES,
    }


def evaluation_document(
    evaluation: DetectionEvaluation,
    *,
    warnings: Sequence[str] = (),
    training: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """The evaluation as JSON-ready data (see the module docstring); ``warnings`` come first (e.g. about
    the TEST set), then the per-label ones."""
    per_image = test_images_by_label(evaluation)
    figures = macro(evaluation)
    return {
        "task": TASK,
        "labels": [m.label for m in evaluation.per_label],
        "n_images": len(evaluation.images),
        "iou_threshold": IOU,
        "map50": evaluation.map50,
        "macro_precision": figures["precision"],
        "macro_recall": figures["recall"],
        "macro_f1": figures["f1"],
        "threshold_source": "test",
        "per_label": [_label_row(m, per_image[m.label]) for m in evaluation.per_label],
        "images": [
            {
                "image_id": image.image,
                "truth": [_box(b) for b in image.truth],
                "predicted": [
                    {**_box(d.box), "label": d.label, "confidence": d.confidence, "correct": ok}
                    for d, ok in zip(image.predicted, image.correct, strict=True)
                ],
            }
            for image in evaluation.images
        ],
        "warnings": list(dict.fromkeys([*warnings, *label_warnings(evaluation)])),
        "training": dict(training or {}),
    }


def detection_summary(
    evaluation: DetectionEvaluation,
    *,
    project_version_arn: str,
    n_training_images: int,
    evaluation_end: datetime | None = None,
) -> dict[str, Any]:
    """Rekognition's EvaluationResultSummary document of a detector (see the module docstring)."""
    figures = macro(evaluation)
    aggregated = {"F1Score": figures["f1"], "Precision": figures["precision"], "Recall": figures["recall"]}
    per_image = test_images_by_label(evaluation)
    scored = sorted((m for m in evaluation.per_label if m.true_boxes > 0), key=lambda m: (-m.f1, m.label))
    return {
        "Version": SUMMARY_VERSION,
        "EvaluationDetails": {
            "ProjectVersionArn": project_version_arn,
            "EvaluationEndTimestamp": evaluation_timestamp(evaluation_end),
            "Labels": [m.label for m in evaluation.per_label],
            "NumberOfTrainingImages": n_training_images,
            "NumberOfTestingImages": len(evaluation.images),
        },
        "AggregatedEvaluationResults": {**aggregated, "Metrics": dict(aggregated)},
        "LabelEvaluationResults": [
            {
                "Label": m.label,
                "NumberOfTestingImages": per_image[m.label],
                "Metrics": {
                    "F1Score": m.f1,
                    "Precision": m.precision,
                    "Recall": m.recall,
                    "Threshold": m.threshold,
                },
            }
            for m in scored
        ],
        EXTENSIONS_KEY: {
            "Version": 1,
            "Task": TASK,
            "IoUThreshold": IOU,
            "MeanAveragePrecision50": evaluation.map50,
            "Labels": [
                {"Label": m.label, "TrueBoxes": m.true_boxes, "AveragePrecision50": m.ap}
                for m in evaluation.per_label
            ],
            "LabelsWithoutTestImages": [m.label for m in evaluation.per_label if m.true_boxes == 0],
            "Warnings": label_warnings(evaluation),
        },
    }
