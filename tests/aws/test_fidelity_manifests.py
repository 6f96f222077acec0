"""DescribeProjectVersions of a trained version names its manifests as AWS does (TrainingDataResult,
TestingDataResult, ManifestSummary), and a boto3 S3 client GetObjects real content there: the lines the
version used, as the user wrote them, the lines it ignored with their warning, and the summary. The server
runs on moto's S3 server (``buckets_url = s3://``), so the objects are read exactly as from AWS. A started
version also reports MaxInferenceUnits equal to the minimum when the start gave none (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.aws.conftest import COLOURS, running
from tests.factories import classification_line, image_bytes, s3_server_settings
from visionloop.storage.s3 import S3Options

WAIT = {"Delay": 0.2, "MaxAttempts": 150}


def _client(service: str, url: str, options: S3Options | None = None) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=options.access_key_id if options else "test",
        aws_secret_access_key=options.secret_access_key if options else "test",
    )


def _lines(s3: Any, ref: dict[str, Any]) -> list[dict[str, Any]]:
    obj = ref["GroundTruthManifest"]["S3Object"] if "GroundTruthManifest" in ref else ref["S3Object"]
    body = s3.get_object(Bucket=obj["Bucket"], Key=obj["Name"])["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def _manifest(s3: Any, result: dict[str, Any], part: str) -> list[dict[str, Any]]:
    (asset,) = result[part]["Assets"]
    return _lines(s3, asset)


@pytest.fixture
def photos(s3_options: S3Options) -> tuple[Any, list[str]]:
    """moto's S3 with 6 red and 6 blue photos labelled under the attribute "fruit", 2 unlabelled, and a
    manifest naming them and a photo that does not exist."""
    s3 = _client("s3", s3_options.endpoint_url, s3_options)
    for bucket in ("visionloop-store", "photos"):
        s3.create_bucket(Bucket=bucket)
    lines = []
    for label in ("red", "blue"):
        r, g, b = COLOURS[label]
        for i in range(6):
            key = f"train/{label}_{i}.jpg"
            s3.put_object(Bucket="photos", Key=key, Body=image_bytes(96, 80, (r + i, g + i, b)))
            lines.append(classification_line(f"s3://photos/{key}", label, attr="fruit"))
    for i in range(2):
        key = f"train/unlabelled_{i}.jpg"
        s3.put_object(Bucket="photos", Key=key, Body=image_bytes(96, 80, (120, 120 + 40 * i, 20)))
        lines.append(json.dumps({"source-ref": f"s3://photos/{key}"}))
    lines.append(classification_line("s3://photos/train/missing.jpg", "red", attr="fruit"))  # rejected
    s3.put_object(Bucket="photos", Key="train.manifest", Body=("\n".join(lines) + "\n").encode())
    return s3, lines


def test_trained_versions_name_their_manifests_and_they_hold_what_was_used(
    s3_options: S3Options, photos: tuple[Any, list[str]], tmp_path: Path
) -> None:
    s3, lines = photos
    given = {json.loads(line)["source-ref"]: json.loads(line) for line in lines}
    settings = s3_server_settings(tmp_path / "var", s3_options)
    with running(settings) as server:
        rek = _client("rekognition", server.url)
        project = rek.create_project(ProjectName="fruit")["ProjectArn"]
        source = {"GroundTruthManifest": {"S3Object": {"Bucket": "photos", "Name": "train.manifest"}}}
        rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)
        output = {"S3Bucket": "outputs", "S3KeyPrefix": "runs"}
        v1 = rek.create_project_version(ProjectArn=project, VersionName="v1", OutputConfig=output)
        rek.get_waiter("project_version_training_completed").wait(ProjectArn=project, WaiterConfig=WAIT)
        (d,) = rek.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"]

        training, testing = d["TrainingDataResult"], d["TestingDataResult"]
        assert testing["Input"]["AutoCreate"] is testing["Output"]["AutoCreate"] is True  # split off TRAIN
        used = _manifest(s3, training, "Output") + _manifest(s3, testing, "Output")
        unused = {r for r in given if "unlabelled" in r or "missing" in r}
        assert sorted(ln["source-ref"] for ln in used) == sorted(set(given) - unused)
        assert all(ln == given[ln["source-ref"]] for ln in used)  # as the user wrote them ("fruit")
        given_in = _manifest(s3, training, "Input") + _manifest(s3, testing, "Input")
        assert sorted(ln["source-ref"] for ln in given_in) == sorted(given)
        checked = _manifest(s3, training, "Validation") + _manifest(s3, testing, "Validation")
        assert {ln["source-ref"] for ln in checked if ln.get("errors")} == unused
        codes = {
            ln["source-ref"].rsplit("/", 1)[1]: [e["code"] for e in ln.get("errors", ())] for ln in checked
        }
        assert codes["unlabelled_0.jpg"] == codes["unlabelled_1.jpg"] == ["WARNING_NO_ANNOTATIONS"]
        assert codes["missing.jpg"] and codes["missing.jpg"][0].startswith("ERROR_")  # its import's errors
        for part in (training, testing):
            for kind in ("Input", "Output", "Validation"):
                (asset,) = part[kind]["Assets"]
                obj = asset["GroundTruthManifest"]["S3Object"]
                assert obj["Bucket"] == "outputs" and obj["Name"].startswith("runs/")

        summary_ref = d["ManifestSummary"]["S3Object"]
        summary = json.loads(s3.get_object(Bucket="outputs", Key=summary_ref["Name"])["Body"].read())
        assert summary["version"] == 1 and summary["errors"] == []
        stats = summary["statistics"]
        assert [stats[k]["use_case"] for k in ("training", "testing")] == ["IMAGE_LEVEL_LABELS"] * 2
        assert sum(s["total_json_lines"] for s in stats.values()) == 15
        assert sum(s["valid_json_lines"] for s in stats.values()) == 12
        assert sum(s["ignored_json_lines"] for s in stats.values()) == 2
        assert (stats["training"]["invalid_json_lines"], stats["testing"]["invalid_json_lines"]) == (1, 0)
        (bad,) = stats["training"]["error_json_line_indices"]  # the rejected line stays in TRAIN
        assert _manifest(s3, training, "Validation")[bad]["source-ref"] == "s3://photos/train/missing.jpg"
        assert stats["training"]["valid_json_lines"] == len(_manifest(s3, training, "Output"))

        # a version trained with the TEST dataset as it is now: no automatic split
        rek.create_project_version(ProjectArn=project, VersionName="v2", OutputConfig=output)
        rek.get_waiter("project_version_training_completed").wait(ProjectArn=project, WaiterConfig=WAIT)
        (v2,) = rek.describe_project_versions(ProjectArn=project, VersionNames=["v2"])[
            "ProjectVersionDescriptions"
        ]
        assert v2["TestingDataResult"]["Input"]["AutoCreate"] is False
        assert _manifest(s3, v2["TestingDataResult"], "Output") == _manifest(s3, testing, "Output")

        # MaxInferenceUnits is reported with the minimum when the start gave no maximum
        rek.start_project_version(ProjectVersionArn=v1["ProjectVersionArn"], MinInferenceUnits=1)
        rek.get_waiter("project_version_running").wait(
            ProjectArn=project, VersionNames=["v1"], WaiterConfig=WAIT
        )
        try:
            (running_v1,) = rek.describe_project_versions(ProjectArn=project, VersionNames=["v1"])[
                "ProjectVersionDescriptions"
            ]
            assert running_v1["MinInferenceUnits"] == running_v1["MaxInferenceUnits"] == 1
        finally:
            rek.stop_project_version(ProjectVersionArn=v1["ProjectVersionArn"])
