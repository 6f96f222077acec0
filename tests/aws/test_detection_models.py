"""An object-detection model through the AWS API with the fast colour engine (engines/fake.py finds
coloured shapes on a grey ground): a Ground Truth manifest with bounding boxes makes the project a
detection project, CreateProjectVersion trains it in the server's worker, DescribeProjectVersions shows
its F1 and Rekognition's summary, and a started version answers DetectCustomLabels with
Geometry.BoundingBox, MinConfidence and MaxResults applied per box. The real detector goes the same
way in tests/workflows/test_detection_real.py."""

from __future__ import annotations

import json
import random
from typing import Any

from tests.aws.conftest import Server, put_manifest
from tests.factories import detection_line, grey_shape

FAST = {"Delay": 1, "MaxAttempts": 60}
W, H = 160, 120


def test_a_detector_trains_and_answers_with_boxes(rek: Any, server: Server) -> None:
    rng = random.Random(7)
    name = server.name("shapes")
    project = rek.create_project(ProjectName=name)["ProjectArn"]
    server.svc.buckets.create_bucket("shapes")
    lines = []
    for i in range(20):
        label = "red" if i % 2 else "blue"
        data, (x, y, w, h) = grey_shape(rng, label)
        server.svc.buckets.put("shapes", f"{name}/{i}.jpg", data)
        lines.append(detection_line(f"s3://shapes/{name}/{i}.jpg", [(label, x, y, w, h)], (W, H)))
    manifest = put_manifest(server, "shapes", f"{name}.manifest", lines)
    rek.create_dataset(
        ProjectArn=project, DatasetType="TRAIN", DatasetSource={"GroundTruthManifest": {"S3Object": manifest}}
    )
    arn = rek.create_project_version(
        ProjectArn=project, VersionName="v1", OutputConfig={"S3Bucket": "outputs"}
    )["ProjectVersionArn"]
    rek.get_waiter("project_version_training_completed").wait(
        ProjectArn=project, VersionNames=["v1"], WaiterConfig=FAST
    )
    [done] = rek.describe_project_versions(ProjectArn=project, VersionNames=["v1"])[
        "ProjectVersionDescriptions"
    ]
    assert done["Status"] == "TRAINING_COMPLETED" and 0.5 < done["EvaluationResult"]["F1Score"] <= 1
    summary = done["EvaluationResult"]["Summary"]["S3Object"]
    doc = json.loads(server.svc.buckets.get(summary["Bucket"], summary["Name"]))
    assert "ConfusionMatrix" not in doc["AggregatedEvaluationResults"]  # Rekognition gives none for boxes
    assert doc["VisionloopExtensions"]["Task"] == "object_detection"
    assert 0 <= doc["VisionloopExtensions"]["MeanAveragePrecision50"] <= 1

    rek.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
    rek.get_waiter("project_version_running").wait(ProjectArn=project, VersionNames=["v1"], WaiterConfig=FAST)
    try:
        image, (x, y, w, h) = grey_shape(rng, "red")
        labels = rek.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image}, MinConfidence=0)[
            "CustomLabels"
        ]
        best = labels[0]
        box = best["Geometry"]["BoundingBox"]
        assert best["Name"] == "red"
        assert abs(box["Left"] - x / W) < 0.05 and abs(box["Top"] - y / H) < 0.05
        assert abs(box["Width"] - w / W) < 0.05 and abs(box["Height"] - h / H) < 0.05
        assert all("Geometry" in lab for lab in labels)
        none = rek.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image}, MaxResults=0)
        assert none["CustomLabels"] == []
        above = rek.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image}, MinConfidence=100)
        assert all(lab["Confidence"] >= 100 for lab in above["CustomLabels"])
    finally:
        rek.stop_project_version(ProjectVersionArn=arn)
