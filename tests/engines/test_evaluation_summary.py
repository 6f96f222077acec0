"""The Rekognition Custom Labels evaluation summary (rekognition_api.md §4.1)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from visionloop.engines.calibration import reliability_table
from visionloop.engines.evaluation_summary import (
    EXTENSIONS_KEY,
    build_summary,
    encode_summary,
    summary_filename,
)
from visionloop.engines.metrics import ClassificationEvaluation, evaluate_classification
from visionloop.errors import InvalidInput

ARN = "arn:aws:rekognition:us-east-1:111122223333:project/fruit/version/v1/1574317227432"
END = datetime(2019, 11, 21, 7, 30, 23, 910943, tzinfo=UTC)


def three_label_evaluation() -> ClassificationEvaluation:
    """'pear' perfect, 'apple' F1 0.8 (cut-offs (0.15, 0.6]), 'plum' without test images."""
    y = [0, 0, 1, 1, 0]
    probs = [
        [0.9, 0.1, 0.0],
        [0.8, 0.15, 0.05],
        [0.3, 0.6, 0.1],
        [0.1, 0.8, 0.1],
        [0.7, 0.65, 0.1],
    ]
    return evaluate_classification(y, probs, ["pear", "apple", "plum"], n_resamples=200, seed=1)


def summary(**kwargs: Any) -> dict[str, Any]:
    return build_summary(
        three_label_evaluation(), project_version_arn=ARN, n_training_images=42, evaluation_end=END, **kwargs
    )


def test_filename() -> None:
    assert summary_filename("fruit", "v1.0") == "EvaluationResultSummary-fruit-v1.0.json"
    for project, version in [("a/b", "v1"), ("fruit", ""), ("fruit", "v 1"), ("x" * 256, "v1")]:
        with pytest.raises(InvalidInput):
            summary_filename(project, version)


def test_top_level_shape() -> None:
    doc = summary()
    assert list(doc) == [
        "Version",
        "EvaluationDetails",
        "AggregatedEvaluationResults",
        "LabelEvaluationResults",
        EXTENSIONS_KEY,
    ]
    assert doc["Version"] == 1
    assert doc["EvaluationDetails"] == {
        "ProjectVersionArn": ARN,
        "EvaluationEndTimestamp": "2019-11-21T07:30:23.910943",
        "Labels": ["pear", "apple", "plum"],
        "NumberOfTrainingImages": 42,
        "NumberOfTestingImages": 5,
    }


def test_aggregated_results_are_flat_and_mirrored_under_metrics() -> None:
    ev = three_label_evaluation()
    aggregated = summary()["AggregatedEvaluationResults"]
    assert set(aggregated) == {"F1Score", "Precision", "Recall", "ConfusionMatrix", "Metrics"}
    assert aggregated["Metrics"] == {k: v for k, v in aggregated.items() if k != "Metrics"}
    assert (aggregated["F1Score"], aggregated["Precision"], aggregated["Recall"]) == (
        ev.macro_f1,
        ev.macro_precision,
        ev.macro_recall,
    )
    # pear: scores .9+ .8+ .7+ .3- .1- → cut-off 0.7, F1 1; apple: .8+ .65- .6+ → cut-off 0.6, F1 0.8
    assert aggregated["F1Score"] == pytest.approx(0.9)


def test_confusion_matrix_is_row_normalised() -> None:
    cells = summary()["AggregatedEvaluationResults"]["ConfusionMatrix"]
    assert all(set(c) == {"GroundTruthLabel", "PredictedLabel", "Value"} for c in cells)
    value = {(c["GroundTruthLabel"], c["PredictedLabel"]): c["Value"] for c in cells}
    assert len(cells) == 6  # 2 labels with test images × 3 predicted labels; no row for 'plum'
    assert value["pear", "pear"] == 1.0 and value["pear", "apple"] == 0.0  # top-1 is right for all pears
    assert value["apple", "apple"] == 1.0 and value["apple", "plum"] == 0.0


def test_label_results_sorted_by_f1_descending() -> None:
    results = summary()["LabelEvaluationResults"]
    assert [r["Label"] for r in results] == ["pear", "apple"]  # 'plum' has no test images
    f1s = [r["Metrics"]["F1Score"] for r in results]
    assert f1s == sorted(f1s, reverse=True)
    first = results[0]
    assert set(first) == {"Label", "NumberOfTestingImages", "Metrics"}
    # thresholds: the middle of the best range of cut-offs, pear (0.3, 0.7], apple (0.15, 0.6]
    assert first["Metrics"] == {"F1Score": 1.0, "Precision": 1.0, "Recall": 1.0, "Threshold": 0.5}
    assert results[1]["NumberOfTestingImages"] == 2
    assert results[1]["Metrics"]["Threshold"] == pytest.approx(0.375)
    for result in results:
        assert all(0.0 <= v <= 1.0 for v in result["Metrics"].values())


def test_equal_f1_sorts_by_name() -> None:
    ev = evaluate_classification([0, 1, 2], [[1, 0, 0], [0, 1, 0], [0, 0, 1]], ["c", "a", "b"], n_resamples=0)
    doc = build_summary(ev, project_version_arn=ARN, n_training_images=3)
    assert [r["Label"] for r in doc["LabelEvaluationResults"]] == ["a", "b", "c"]


def test_extensions() -> None:
    ev = three_label_evaluation()
    table = reliability_table([0.9, 0.8, 0.6, 0.8, 0.7], [1, 1, 1, 1, 1], n_bins=5)
    ext = summary(calibration_error=0.04, reliability=table)[EXTENSIONS_KEY]
    assert ext["ExpectedCalibrationError"] == 0.04
    assert len(ext["ReliabilityDiagram"]) == 5 and ext["ReliabilityDiagram"][4]["Count"] == 1
    assert ext["LabelsWithoutTestImages"] == ["plum"]
    assert ext["AccuracyDefinition"] == "top-1" and ext["Accuracy"] == ev.accuracy
    assert ext["Bootstrap"] == {"Resamples": 200, "Seed": 1, "ConfidenceLevel": 0.95}
    interval = ext["F1ScoreInterval"]
    assert interval["Lower"] <= ev.macro_f1 <= interval["Upper"]
    labels = {entry["Label"]: entry for entry in ext["Labels"]}
    assert labels["plum"]["F1ScoreInterval"] is None and not labels["apple"]["Reliable"]
    assert "label 'apple' has only 2 test images; its F1 is not reliable" in ext["Warnings"]
    assert set(ext["Top1"]) == {"F1Score", "Precision", "Recall"}


def test_encoded_summary_is_strict_json() -> None:
    doc = summary()
    assert json.loads(encode_summary(doc)) == doc
    with pytest.raises(ValueError):
        encode_summary({"F1Score": float("nan")})


def test_timestamp_is_utc_without_offset() -> None:
    paris = timezone(timedelta(hours=1))
    doc = build_summary(
        three_label_evaluation(),
        project_version_arn=ARN,
        n_training_images=0,
        evaluation_end=datetime(2019, 11, 21, 8, 30, 23, 910943, tzinfo=paris),
    )
    assert doc["EvaluationDetails"]["EvaluationEndTimestamp"] == "2019-11-21T07:30:23.910943"
    now = build_summary(three_label_evaluation(), project_version_arn=ARN, n_training_images=0)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}", now["EvaluationDetails"]["EvaluationEndTimestamp"]
    )


def test_multi_label_summary() -> None:
    ev = evaluate_classification(
        [{0, 1}, {1}, set()], [[0.9, 0.8], [0.2, 0.7], [0.1, 0.3]], ["a", "b"], multi_label=True
    )
    doc = build_summary(ev, project_version_arn=ARN, n_training_images=10)
    assert doc[EXTENSIONS_KEY]["AccuracyDefinition"] == "exact-match"
    assert doc[EXTENSIONS_KEY]["Top1"] is None
    assert doc["AggregatedEvaluationResults"]["F1Score"] == 1.0


def test_refuses_an_empty_evaluation() -> None:
    ev = evaluate_classification([set()], [[0.2, 0.4]], ["a", "b"], multi_label=True)
    with pytest.raises(InvalidInput):
        build_summary(ev, project_version_arn=ARN, n_training_images=1)
    with pytest.raises(InvalidInput):
        build_summary(three_label_evaluation(), project_version_arn=ARN, n_training_images=-1)
