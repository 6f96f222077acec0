"""An object-detection model through the AWS API with the fast colour engine (engines/fake.py finds
coloured shapes on a grey ground): a Ground Truth manifest with bounding boxes makes the project a
detection project, CreateProjectVersion trains it in the server's worker, DescribeProjectVersions shows
its F1 and Rekognition's summary, and a started version answers DetectCustomLabels with
Geometry.BoundingBox, MinConfidence and MaxResults applied per box. The real detector goes the same
way in tests/workflows/test_detection_real.py."""

from __future__ import annotations

import io
import json
import random
from typing import Any

from PIL import Image, ImageDraw

from tests.aws.conftest import Server, put_manifest
from tests.factories import detection_line

FAST = {"Delay": 1, "MaxAttempts": 60}
W, H = 160, 120
COLOURS = {"red": (220, 30, 30), "blue": (30, 40, 220)}


def shape(rng: random.Random, label: str) -> tuple[bytes, tuple[int, int, int, int]]:
    """A grey JPEG with one rectangle of the label's colour, and its box in pixels."""
    w, h = rng.randint(30, 60), rng.randint(30, 50)
    x, y = rng.randint(0, W - w), rng.randint(0, H - h)
    image = Image.new("RGB", (W, H), (128, 128, 128))
    ImageDraw.Draw(image).rectangle([x, y, x + w - 1, y + h - 1], fill=COLOURS[label])
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=95)
    return buf.getvalue(), (x, y, w, h)


def test_a_detector_trains_and_answers_with_boxes(rek: Any, server: Server) -> None:
    rng = random.Random(7)
    name = server.name("shapes")
    project = rek.create_project(ProjectName=name)["ProjectArn"]
    server.svc.buckets.create_bucket("shapes")
    lines = []
    for i in range(20):
        label = "red" if i % 2 else "blue"
        data, (x, y, w, h) = shape(rng, label)
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
        image, (x, y, w, h) = shape(rng, "red")
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
