"""The core's records as Rekognition's JSON shapes: PascalCase members, timestamps as epoch seconds (a JSON
number, which every SDK reads), and members left out rather than sent as null."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from visionloop.aws.backend import ProjectView, VersionView
from visionloop.aws.datasets import DatasetView
from visionloop.aws.version_manifests import VersionManifests
from visionloop.core.entities import Prediction
from visionloop.core.entries import LabelStat

Json = dict[str, Any]
FEATURE = "CUSTOM_LABELS"


def timestamp(ts: datetime) -> float:
    return round(ts.timestamp(), 3)


def project_description(v: ProjectView) -> Json:
    return {
        "ProjectArn": v.arn,
        "CreationTimestamp": timestamp(v.project.created_at),
        "Status": "CREATED",
        "Datasets": [dataset_metadata(d) for d in v.datasets],
        "Feature": FEATURE,
    }


def dataset_metadata(v: DatasetView) -> Json:
    return {
        "CreationTimestamp": timestamp(v.dataset.created_at),
        "DatasetType": v.dataset.type.value.upper(),
        "DatasetArn": v.arn,
        "Status": v.state.status,
        "StatusMessage": v.state.message,
        "StatusMessageCode": v.state.code,
    }


def dataset_description(v: DatasetView) -> Json:
    out: Json = {
        "CreationTimestamp": timestamp(v.dataset.created_at),
        "LastUpdatedTimestamp": round(v.state.updated, 3),
        "Status": v.state.status,
        "StatusMessage": v.state.message,
        "StatusMessageCode": v.state.code,
    }
    if v.counts is not None:
        out["DatasetStats"] = {
            "LabeledEntries": v.counts.labeled,
            "TotalEntries": v.counts.total,
            "TotalLabels": v.counts.labels,
            "ErrorEntries": v.counts.errors,
        }
    return out


def label_description(s: LabelStat) -> Json:
    return {"LabelName": s.label, "LabelStats": {"EntryCount": s.entries, "BoundingBoxCount": s.boxes}}


def version_description(v: VersionView) -> Json:
    mv = v.version
    out: Json = {
        "ProjectVersionArn": v.arn,
        "CreationTimestamp": timestamp(mv.created_at),
        "Status": mv.status.value,
        "StatusMessage": mv.status_message,
        "Feature": FEATURE,
    }
    if mv.min_inference_units is not None:  # recorded by the first start
        out["MinInferenceUnits"] = mv.min_inference_units
        # AWS describes a started version with both bounds, the maximum equal to the minimum when the start
        # gave none (the core records an omitted maximum as the minimum): code reads both without .get
        out["MaxInferenceUnits"] = mv.max_inference_units or mv.min_inference_units
    if mv.training_ended_at is not None:
        out["TrainingEndTimestamp"] = timestamp(mv.training_ended_at)
    if mv.training_seconds is not None:
        out["BillableTrainingTimeInSeconds"] = max(0, round(mv.training_seconds))
    if v.extras is not None:
        out["OutputConfig"] = {"S3Bucket": v.extras.bucket, "S3KeyPrefix": v.extras.prefix}
        if v.extras.description:
            out["VersionDescription"] = v.extras.description
    if mv.f1 is not None and mv.artifact_key is not None:
        result: Json = {"F1Score": round(float(mv.f1), 6)}
        if v.summary is not None:
            result["Summary"] = {"S3Object": {"Bucket": v.summary.bucket, "Name": v.summary.key}}
        out["EvaluationResult"] = result
    if v.manifests is not None:
        out.update(data_results(v.manifests))
    return out


def data_results(m: VersionManifests) -> Json:
    """TrainingDataResult, TestingDataResult and ManifestSummary: each names objects in the bucket."""

    def assets(key: str) -> Json:
        return {"Assets": [{"GroundTruthManifest": {"S3Object": {"Bucket": m.bucket, "Name": key}}}]}

    return {
        "TrainingDataResult": {
            "Input": assets(m.training.input),
            "Output": assets(m.training.output),
            "Validation": assets(m.training.validation),
        },
        "TestingDataResult": {
            "Input": {**assets(m.testing.input), "AutoCreate": m.auto_create},
            "Output": {**assets(m.testing.output), "AutoCreate": m.auto_create},
            "Validation": assets(m.testing.validation),
        },
        "ManifestSummary": {"S3Object": {"Bucket": m.bucket, "Name": m.summary}},
    }


def custom_labels(labels: list[Prediction]) -> Json:
    """DetectCustomLabels' answer: labels sorted by confidence; Geometry only for detection models."""
    out = []
    for p in labels:
        label: Json = {"Name": p.label, "Confidence": p.confidence}
        if p.box is not None:
            box = {"Width": p.box.width, "Height": p.box.height, "Left": p.box.left, "Top": p.box.top}
            label["Geometry"] = {"BoundingBox": box}
        out.append(label)
    return {"CustomLabels": out}
