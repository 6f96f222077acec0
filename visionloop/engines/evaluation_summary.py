"""The Rekognition Custom Labels evaluation summary (``EvaluationResultSummary-{project}-{version}.json``).

Written after training, in the shape of ``../shared/rekognition_api.md`` §4.1: aggregated metrics flat
under ``AggregatedEvaluationResults`` and mirrored under its ``Metrics`` key (the docs' reference
schema), per-label results sorted by F1 descending. Our extras (F1 intervals, accuracy, calibration
error, warnings) live under one separate top-level key, ``VisionloopExtensions``, so AWS tooling that
reads the standard keys is undisturbed. Labels without test images have no metrics: they are listed in
``EvaluationDetails.Labels`` and in the extensions, but not in ``LabelEvaluationResults``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from visionloop.core.records.evaluation import Interval, LabelMetrics, ReliabilityBin
from visionloop.engines.metrics import ClassificationEvaluation
from visionloop.errors import InvalidInput

SUMMARY_VERSION = 1
EXTENSIONS_KEY = "VisionloopExtensions"
_NAME = re.compile(r"[a-zA-Z0-9_.\-]{1,255}")


def summary_filename(project: str, version: str) -> str:
    """``EvaluationResultSummary-{project}-{version}.json``; names must be Rekognition-style."""
    for name in (project, version):
        if not _NAME.fullmatch(name):
            raise InvalidInput(f"invalid project or version name {name!r}: use 1-255 of [a-zA-Z0-9_.-]")
    return f"EvaluationResultSummary-{project}-{version}.json"


def build_summary(
    evaluation: ClassificationEvaluation,
    *,
    project_version_arn: str,
    n_training_images: int,
    evaluation_end: datetime | None = None,
    calibration_error: float | None = None,
    reliability: Sequence[ReliabilityBin] | None = None,
    new_scenes_f1: float | None = None,
    new_photos_f1: Mapping[str, Any] | None = None,
    review_guide: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary document as a JSON-ready dict (§4.1 keys plus ``VisionloopExtensions``).
    ``new_scenes_f1``: the macro F1 of cross-validation holding out whole scenes, if measured;
    ``new_photos_f1``: the range of macro F1 to expect on new photos (``lower``, ``upper``, ``basis``);
    ``review_guide``: what min_confidence settings send to review (engines.review_guide)."""
    if evaluation.macro_f1 is None or evaluation.macro_precision is None or evaluation.macro_recall is None:
        raise InvalidInput("no label has test images, so there is no evaluation to summarise")
    if n_training_images < 0:
        raise InvalidInput("n_training_images must be ≥ 0")
    aggregated: dict[str, Any] = {
        "F1Score": evaluation.macro_f1,
        "Precision": evaluation.macro_precision,
        "Recall": evaluation.macro_recall,
        "ConfusionMatrix": _confusion_entries(evaluation),
    }
    return {
        "Version": SUMMARY_VERSION,
        "EvaluationDetails": {
            "ProjectVersionArn": project_version_arn,
            "EvaluationEndTimestamp": evaluation_timestamp(evaluation_end),
            "Labels": list(evaluation.labels),
            "NumberOfTrainingImages": n_training_images,
            "NumberOfTestingImages": evaluation.n_images,
        },
        "AggregatedEvaluationResults": {**aggregated, "Metrics": dict(aggregated)},
        "LabelEvaluationResults": [_label_entry(m) for m in _sorted_by_f1(evaluation.per_label)],
        EXTENSIONS_KEY: {
            **_extensions(evaluation, calibration_error, reliability),
            "NewScenesF1Score": new_scenes_f1,
            "NewPhotosF1Range": None
            if new_photos_f1 is None
            else {
                "Lower": new_photos_f1["lower"],
                "Upper": new_photos_f1["upper"],
                "Basis": new_photos_f1["basis"],
            },
            "ReviewGuide": None if review_guide is None else _review_guide_entry(review_guide),
        },
    }


def _review_guide_entry(guide: Mapping[str, Any]) -> dict[str, Any]:
    def level(row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "MinConfidence": row["min_confidence"],
            "WrongAnswersSent": row["wrong_caught"],
            "AnswersSent": row["sent"],
        }

    suggested = guide.get("suggested")
    return {
        "Basis": guide["basis"],
        "Images": guide["images"],
        "WrongAnswers": guide["wrong"],
        "Levels": [level(row) for row in guide["levels"]],
        "Suggested": None if suggested is None else level(suggested),
    }


def encode_summary(summary: dict[str, Any]) -> bytes:
    """UTF-8 JSON bytes for the object store; NaN or infinity is refused (not valid JSON)."""
    return json.dumps(summary, indent=2, allow_nan=False).encode("utf-8")


def evaluation_timestamp(moment: datetime | None) -> str:
    """ISO 8601 in UTC without offset, with microseconds, as Rekognition writes it."""
    moment = datetime.now(UTC) if moment is None else moment
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def _confusion_entries(evaluation: ClassificationEvaluation) -> list[dict[str, Any]]:
    """Row-normalised cells for every true label that has test images, every predicted label."""
    matrix = evaluation.confusion
    return [
        {"GroundTruthLabel": truth, "PredictedLabel": predicted, "Value": matrix.normalized[g][p]}
        for g, truth in enumerate(matrix.labels)
        if evaluation.per_label[g].n_test_images > 0
        for p, predicted in enumerate(matrix.labels)
    ]


def _sorted_by_f1(per_label: Sequence[LabelMetrics]) -> list[LabelMetrics]:
    """Labels with metrics, F1 descending, then name for a stable order."""
    scored = [m for m in per_label if m.f1 is not None]
    return sorted(scored, key=lambda m: (-(m.f1 or 0.0), m.label))


def _label_entry(metrics: LabelMetrics) -> dict[str, Any]:
    return {
        "Label": metrics.label,
        "NumberOfTestingImages": metrics.n_test_images,
        "Metrics": {
            "F1Score": metrics.f1,
            "Precision": metrics.precision,
            "Recall": metrics.recall,
            "Threshold": metrics.threshold,
        },
    }


def _interval(interval: Interval | None) -> dict[str, float] | None:
    return None if interval is None else {"Lower": interval.lower, "Upper": interval.upper}


def _extensions(
    evaluation: ClassificationEvaluation,
    calibration_error: float | None,
    reliability: Sequence[ReliabilityBin] | None,
) -> dict[str, Any]:
    """visionloop's additions: intervals, accuracy, untuned top-1 scores, calibration, warnings."""
    top1 = None
    if evaluation.top1_macro_f1 is not None:
        top1 = {
            "F1Score": evaluation.top1_macro_f1,
            "Precision": evaluation.top1_macro_precision,
            "Recall": evaluation.top1_macro_recall,
        }
    return {
        "Version": 1,
        "MultiLabel": evaluation.multi_label,
        "Accuracy": evaluation.accuracy,
        "AccuracyDefinition": "exact-match" if evaluation.multi_label else "top-1",
        "AccuracyInterval": _interval(evaluation.accuracy_interval),
        "F1ScoreInterval": _interval(evaluation.macro_f1_interval),
        "Top1": top1,
        "Bootstrap": {
            "Resamples": evaluation.n_resamples,
            "Seed": evaluation.seed,
            "ConfidenceLevel": evaluation.confidence_level,
        },
        "Labels": [_label_extension(m) for m in evaluation.per_label],
        "LabelsWithoutTestImages": [m.label for m in evaluation.per_label if m.n_test_images == 0],
        "ExpectedCalibrationError": calibration_error,
        "ReliabilityDiagram": None if reliability is None else [_bin_entry(b) for b in reliability],
        "Warnings": list(evaluation.warnings),
    }


def _label_extension(metrics: LabelMetrics) -> dict[str, Any]:
    return {
        "Label": metrics.label,
        "NumberOfTestingImages": metrics.n_test_images,
        "Reliable": metrics.reliable,
        "F1ScoreInterval": _interval(metrics.f1_interval),
        "TruePositives": metrics.true_positives,
        "FalsePositives": metrics.false_positives,
        "FalseNegatives": metrics.false_negatives,
    }


def _bin_entry(b: ReliabilityBin) -> dict[str, Any]:
    return {
        "Lower": b.lower,
        "Upper": b.upper,
        "Count": b.count,
        "MeanConfidence": b.mean_confidence,
        "Accuracy": b.accuracy,
    }
