"""End to end on S3: a real server (tests/aws/conftest.py ``running``) whose internal store is a prefix of
one S3 bucket (``store_url = s3://visionloop-store/store``) and whose users' buckets are S3 buckets
(``buckets_url = s3://``), all on moto's S3 server. A manifest and its images written straight to S3
with boto3 are imported, the colour engine trains, and a started version answers DetectCustomLabels for
an S3Object; the images and the model live in S3 and nothing is written to local store folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from tests.aws.conftest import COLOURS, running
from tests.factories import classification_line, image_bytes, s3_server_settings
from tests.storage.test_s3 import raw_client
from visionloop.storage.s3 import S3Options

WAIT = {"Delay": 0.2, "MaxAttempts": 150}


def test_a_server_on_s3_imports_trains_and_detects(
    s3_options: S3Options,
    tmp_path: Path,
) -> None:
    s3 = raw_client(s3_options)
    s3.create_bucket(Bucket="visionloop-store")
    s3.create_bucket(Bucket="photos")
    lines = []
    for label in ("red", "blue"):
        r, g, b = COLOURS[label]
        for i in range(6):
            key = f"train/{label}_{i}.jpg"
            s3.put_object(Bucket="photos", Key=key, Body=image_bytes(96, 80, (r + i, g + i, b)))
            lines.append(classification_line(f"s3://photos/{key}", label))
    s3.put_object(Bucket="photos", Key="train.manifest", Body=("\n".join(lines) + "\n").encode())
    settings = s3_server_settings(tmp_path / "var", s3_options)
    with running(settings) as server:
        rek: Any = boto3.client(
            "rekognition",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        project = rek.create_project(ProjectName="colours")["ProjectArn"]
        manifest = {"S3Object": {"Bucket": "photos", "Name": "train.manifest"}}
        rek.create_dataset(
            ProjectArn=project, DatasetType="TRAIN", DatasetSource={"GroundTruthManifest": manifest}
        )
        arn = rek.create_project_version(
            ProjectArn=project, VersionName="v1", OutputConfig={"S3Bucket": "outputs"}
        )["ProjectVersionArn"]
        rek.get_waiter("project_version_training_completed").wait(ProjectArn=project, WaiterConfig=WAIT)
        rek.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
        rek.get_waiter("project_version_running").wait(ProjectArn=project, WaiterConfig=WAIT)
        try:
            s3.put_object(Bucket="photos", Key="new/red.jpg", Body=image_bytes(96, 80, COLOURS["red"]))
            image = {"S3Object": {"Bucket": "photos", "Name": "new/red.jpg"}}
            labels = rek.detect_custom_labels(ProjectVersionArn=arn, Image=image)["CustomLabels"]
            assert labels[0]["Name"] == "red"
        finally:
            rek.stop_project_version(ProjectVersionArn=arn)

    stored = [o["Key"] for o in s3.list_objects_v2(Bucket="visionloop-store")["Contents"]]
    assert sum(k.startswith("store/images/") for k in stored) == 12  # every imported image, by hash
    assert any(k.startswith("store/models/") for k in stored)
    outputs = s3.list_objects_v2(Bucket="outputs").get("Contents", [])  # the training summary
    assert outputs, "the version's summary was not written to the users' S3 bucket"
    assert not (tmp_path / "var" / "store").exists() and not (tmp_path / "var" / "buckets").exists()
