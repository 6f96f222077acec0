"""Serving through boto3 and the AWS CLI against the real server: StartProjectVersion, boto3's
project_version_running waiter, DetectCustomLabels with Bytes and with an S3Object, StopProjectVersion,
the serving fields of DescribeProjectVersions, DeleteProjectVersion of a served version, and each bad
request answered with its modelled error (the §7 compatibility checks 16-20, and 24's endpoint part). The
inference units are real processes that load the colour engine."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.aws.conftest import Server, put_labelled_images, put_manifest
from tests.factories import image_bytes
from visionloop.aws import shapes
from visionloop.aws.responses import Deferred
from visionloop.aws.urls import settle
from visionloop.core.entities import Box, Prediction
from visionloop.core.training import MODELS_BUCKET
from visionloop.errors import NotReady, Unavailable

RED = image_bytes(color=(210, 30, 30))
BLUE = image_bytes(color=(30, 40, 210))
WAIT = {"Delay": 0.2, "MaxAttempts": 150}  # the waiters' own pace is 30 s (running), 120 s (trained)
MISSING_PROJECT = "arn:aws:rekognition:us-east-1:123456789012:project/nope/1690474772815"


def _trained(rek: Any, server: Server, *versions: str) -> tuple[str, dict[str, str]]:
    """A project whose TRAIN dataset has red and blue images, and the ARNs of its trained ``versions``."""
    name = server.name("serve")
    project = rek.create_project(ProjectName=name)["ProjectArn"]
    lines = put_labelled_images(server, "serving", name, {"red": 6, "blue": 6})
    manifest = put_manifest(server, "serving", f"{name}.manifest", lines)
    source = {"GroundTruthManifest": {"S3Object": manifest}}
    rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)
    arns = {
        v: rek.create_project_version(ProjectArn=project, VersionName=v, OutputConfig={"S3Bucket": "out"})[
            "ProjectVersionArn"
        ]
        for v in versions
    }
    rek.get_waiter("project_version_training_completed").wait(ProjectArn=project, WaiterConfig=WAIT)
    return project, arns


def _describe(rek: Any, project: str, version: str) -> dict[str, Any]:
    (found,) = rek.describe_project_versions(ProjectArn=project, VersionNames=[version])[
        "ProjectVersionDescriptions"
    ]
    return dict(found)


def _start(rek: Any, project: str, version: str, arn: str, **units: int) -> dict[str, Any]:
    """Start a version, wait with boto3's waiter, and return its description."""
    answer = rek.start_project_version(ProjectVersionArn=arn, **(units or {"MinInferenceUnits": 1}))
    assert answer["Status"] == "STARTING"
    rek.get_waiter("project_version_running").wait(
        ProjectArn=project, VersionNames=[version], WaiterConfig=WAIT
    )
    return _describe(rek, project, version)


def _wait_for(rek: Any, project: str, version: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        found = _describe(rek, project, version)
        if found["Status"] == status:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.1)


def _labels(answer: dict[str, Any]) -> list[str]:
    labels = answer["CustomLabels"]
    confidences = [lab["Confidence"] for lab in labels]
    assert confidences == sorted(confidences, reverse=True) and all(0 <= c <= 100 for c in confidences)
    assert all(set(lab) == {"Name", "Confidence"} for lab in labels)  # no Geometry: a classifier
    return [lab["Name"] for lab in labels]


def _code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


# --- the life of a served version ----------------------------------------------------------------------


def test_start_wait_detect_stop_delete(rek: Any, server: Server) -> None:
    project, arns = _trained(rek, server, "v1")
    v1 = arns["v1"]
    trained = _describe(rek, project, "v1")
    assert trained["Status"] == "TRAINING_COMPLETED" and "MinInferenceUnits" not in trained
    with pytest.raises(rek.exceptions.ResourceNotReadyException) as e:  # §7.16: not started
        rek.detect_custom_labels(ProjectVersionArn=v1, Image={"Bytes": RED})
    assert "start it first" in e.value.response["Error"]["Message"]
    with pytest.raises(rek.exceptions.ResourceInUseException):  # not started: nothing to stop
        rek.stop_project_version(ProjectVersionArn=v1)

    assert rek.start_project_version(ProjectVersionArn=v1, MinInferenceUnits=1)["Status"] == "STARTING"
    with pytest.raises(rek.exceptions.ResourceInUseException):  # §7.17: a second start
        rek.start_project_version(ProjectVersionArn=v1, MinInferenceUnits=1)
    rek.get_waiter("project_version_running").wait(ProjectArn=project, VersionNames=["v1"], WaiterConfig=WAIT)
    running = _describe(rek, project, "v1")
    assert running["Status"] == "RUNNING" and running["StatusMessage"] == "The model is running."
    assert running["MinInferenceUnits"] == running["MaxInferenceUnits"] == 1  # no autoscaling
    assert running["EvaluationResult"]["F1Score"] >= 0  # the training half is still there
    with pytest.raises(rek.exceptions.ResourceInUseException):
        rek.start_project_version(ProjectVersionArn=v1, MinInferenceUnits=1)

    # §7.18: labels above their own assumed threshold (0.5 here) without MinConfidence; all with 0
    assert _labels(rek.detect_custom_labels(ProjectVersionArn=v1, Image={"Bytes": RED})) == ["red"]
    answer = rek.detect_custom_labels(ProjectVersionArn=v1, Image={"Bytes": BLUE}, MinConfidence=0)
    assert _labels(answer) == ["blue", "red"] and answer["CustomLabels"][0]["Confidence"] > 50
    answer = rek.detect_custom_labels(
        ProjectVersionArn=v1, Image={"Bytes": BLUE}, MinConfidence=0, MaxResults=1
    )
    assert _labels(answer) == ["blue"]
    assert _labels(rek.detect_custom_labels(ProjectVersionArn=v1, Image={"Bytes": RED}, MaxResults=0)) == []
    assert len(answer["ResponseMetadata"]["RequestId"]) == 36
    # an S3Object, including one over the 4 MB that Bytes may have (objects may have 15 MB)
    server.svc.buckets.create_bucket("inbox")
    server.svc.buckets.put("inbox", "photos/blue.png", image_bytes(color=(30, 40, 210), fmt="PNG"))
    server.svc.buckets.put("inbox", "photos/red-large.jpg", RED + bytes(5 * 1024 * 1024))
    blue = {"S3Object": {"Bucket": "inbox", "Name": "photos/blue.png"}}
    assert _labels(rek.detect_custom_labels(ProjectVersionArn=v1, Image=blue)) == ["blue"]
    large = {"S3Object": {"Bucket": "inbox", "Name": "photos/red-large.jpg", "Version": "7"}}
    assert _labels(rek.detect_custom_labels(ProjectVersionArn=v1, Image=large)) == ["red"]

    # §7.19 and §7.20
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.detect_custom_labels(ProjectVersionArn=v1.replace("/v1/", "/zz/"), Image={"Bytes": RED})
    with pytest.raises(rek.exceptions.ResourceInUseException) as e:
        rek.delete_project_version(ProjectVersionArn=v1)
    assert "RUNNING" in e.value.response["Error"]["Message"]
    assert rek.stop_project_version(ProjectVersionArn=v1)["Status"] == "STOPPING"
    stopped = _wait_for(rek, project, "v1", "STOPPED")
    assert stopped["StatusMessage"] == "The model is stopped." and stopped["MinInferenceUnits"] == 1
    with pytest.raises(rek.exceptions.ResourceNotReadyException):
        rek.detect_custom_labels(ProjectVersionArn=v1, Image={"Bytes": RED})
    with pytest.raises(rek.exceptions.ResourceInUseException):
        rek.stop_project_version(ProjectVersionArn=v1)
    with pytest.raises(rek.exceptions.ResourceInUseException):  # versions left
        rek.delete_project(ProjectArn=project)
    assert rek.delete_project_version(ProjectVersionArn=v1)["Status"] == "DELETING"
    assert rek.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"] == []
    assert not list(server.svc.store.list_objects(MODELS_BUCKET, f"{project.split('/')[1]}/"))
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.start_project_version(ProjectVersionArn=v1, MinInferenceUnits=1)
    assert rek.delete_project(ProjectArn=project)["Status"] == "DELETING"
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.delete_project(ProjectArn=MISSING_PROJECT)


def test_a_version_can_be_started_again_and_scales(rek: Any, server: Server) -> None:
    project, arns = _trained(rek, server, "v1")
    first = _start(rek, project, "v1", arns["v1"], MinInferenceUnits=1, MaxInferenceUnits=2)
    assert (first["MinInferenceUnits"], first["MaxInferenceUnits"]) == (1, 2)
    rek.stop_project_version(ProjectVersionArn=arns["v1"])
    _wait_for(rek, project, "v1", "STOPPED")
    again = _start(rek, project, "v1", arns["v1"], MinInferenceUnits=2)
    assert again["MinInferenceUnits"] == again["MaxInferenceUnits"] == 2  # no maximum: the minimum
    assert _labels(rek.detect_custom_labels(ProjectVersionArn=arns["v1"], Image={"Bytes": BLUE})) == ["blue"]
    rek.stop_project_version(ProjectVersionArn=arns["v1"])
    _wait_for(rek, project, "v1", "STOPPED")


def test_a_start_that_fails_fails_the_waiter(rek: Any, server: Server) -> None:
    project, arns = _trained(rek, server, "v1")
    (artifact,) = [
        o.key
        for o in server.svc.store.list_objects(MODELS_BUCKET, f"{project.split('/')[1]}/")
        if o.key.endswith("/artifact.json")
    ]
    server.svc.store.put(MODELS_BUCKET, artifact, b'{"files": {}}')  # no longer its checksum
    rek.start_project_version(ProjectVersionArn=arns["v1"], MinInferenceUnits=1)
    with pytest.raises(WaiterError) as e:
        rek.get_waiter("project_version_running").wait(
            ProjectArn=project, VersionNames=["v1"], WaiterConfig=WAIT
        )
    assert "FAILED" in str(e.value)
    failed = _describe(rek, project, "v1")
    assert failed["Status"] == "FAILED" and "corrupt" in failed["StatusMessage"]
    with pytest.raises(rek.exceptions.ResourceNotReadyException):
        rek.detect_custom_labels(ProjectVersionArn=arns["v1"], Image={"Bytes": RED})
    assert rek.delete_project_version(ProjectVersionArn=arns["v1"])["Status"] == "DELETING"


# --- bad requests ---------------------------------------------------------------------------------------


def test_start_and_stop_errors(rek: Any, rek_raw: Any, server: Server) -> None:
    project, arns = _trained(rek, server, "v1")
    v1 = arns["v1"]
    bad_units = [
        {"MinInferenceUnits": 0},  # botocore checks the minimum; the server does too
        {"MinInferenceUnits": -3},
        {"MinInferenceUnits": 2, "MaxInferenceUnits": 1},
        {"MinInferenceUnits": 1, "MaxInferenceUnits": 0},
        {"MinInferenceUnits": 1, "MaxInferenceUnits": 33},  # at most 32 units serve one version
        {},  # MinInferenceUnits is required
    ]
    for units in bad_units:
        with pytest.raises(rek_raw.exceptions.InvalidParameterException):
            rek_raw.start_project_version(ProjectVersionArn=v1, **units)
    with pytest.raises(ClientError) as e:
        rek_raw.start_project_version(ProjectVersionArn=v1, MinInferenceUnits="1")
    assert _code(e) == "SerializationException"
    with pytest.raises(rek.exceptions.InvalidParameterException):  # a project ARN, not a version ARN
        rek.start_project_version(ProjectVersionArn=project, MinInferenceUnits=1)
    for call in (rek.start_project_version, rek.stop_project_version):
        kwargs = {"MinInferenceUnits": 1} if call == rek.start_project_version else {}
        with pytest.raises(rek.exceptions.ResourceNotFoundException):
            call(ProjectVersionArn=v1.replace("/v1/", "/v9/"), **kwargs)
        with pytest.raises(rek.exceptions.ResourceNotFoundException):
            call(ProjectVersionArn=v1.replace(":123456789012:", ":999999999999:"), **kwargs)
    assert _describe(rek, project, "v1")["Status"] == "TRAINING_COMPLETED"  # nothing was started

    with server.worker.paused():  # a version in training can be neither started nor stopped
        pending = rek.create_project_version(
            ProjectArn=project, VersionName="v2", OutputConfig={"S3Bucket": "out"}
        )["ProjectVersionArn"]
        with pytest.raises(rek.exceptions.ResourceInUseException) as e:
            rek.start_project_version(ProjectVersionArn=pending, MinInferenceUnits=1)
        assert "TRAINING_IN_PROGRESS" in e.value.response["Error"]["Message"]
        with pytest.raises(rek.exceptions.ResourceInUseException):
            rek.stop_project_version(ProjectVersionArn=pending)
    rek.get_waiter("project_version_training_completed").wait(
        ProjectArn=project, VersionNames=["v2"], WaiterConfig=WAIT
    )


@pytest.fixture(scope="module")
def running(rek: Any, server: Server) -> Iterator[str]:
    """The ARN of a RUNNING version, stopped after the module's tests."""
    project, arns = _trained(rek, server, "v1")
    _start(rek, project, "v1", arns["v1"])
    yield arns["v1"]
    rek.stop_project_version(ProjectVersionArn=arns["v1"])
    _wait_for(rek, project, "v1", "STOPPED")


def test_detect_errors(
    rek: Any, rek_raw: Any, server: Server, running: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server.svc.buckets.create_bucket("inbox")
    server.svc.buckets.put("inbox", "huge.jpg", RED + bytes(15 * 1024 * 1024))
    outside = tmp_path_factory.mktemp("outside")  # a bucket that is a link out of the buckets folder
    (outside / "red.jpg").write_bytes(RED)
    (Path(server.settings.resolved_buckets_url) / "linked-out").symlink_to(outside)
    ok = {"Bytes": RED}
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (
            rek,
            {"Image": {"Bytes": RED, "S3Object": {"Bucket": "inbox", "Name": "x.jpg"}}},
            "InvalidParameter",
        ),
        (rek, {"Image": {}}, "InvalidParameter"),
        (rek, {"Image": {"Bytes": RED + bytes(4 * 1024 * 1024)}}, "ImageTooLarge"),  # §7.19: over 4 MB
        (rek, {"Image": {"S3Object": {"Bucket": "inbox", "Name": "huge.jpg"}}}, "ImageTooLarge"),  # 15 MB
        (rek, {"Image": {"Bytes": image_bytes(4100, 300)}}, "ImageTooLarge"),  # over 4096 px
        (rek, {"Image": {"Bytes": b"not an image at all"}}, "InvalidImageFormat"),
        (rek, {"Image": {"Bytes": image_bytes(fmt="GIF")}}, "InvalidImageFormat"),
        (rek, {"Image": {"Bytes": image_bytes(40, 40)}}, "InvalidParameter"),  # under 64 px
        (rek, {"Image": {"Bytes": image_bytes(1400, 64)}}, "InvalidParameter"),  # aspect over 20:1
        (rek, {"Image": {"S3Object": {"Bucket": "inbox", "Name": "nothing.jpg"}}}, "InvalidS3Object"),
        (rek, {"Image": {"S3Object": {"Bucket": "no-such-bucket", "Name": "x.jpg"}}}, "InvalidS3Object"),
        (rek, {"Image": {"S3Object": {"Bucket": "inbox", "Name": "../escape.jpg"}}}, "InvalidS3Object"),
        (rek, {"Image": {"S3Object": {"Bucket": "linked-out", "Name": "red.jpg"}}}, "InvalidS3Object"),
        (rek_raw, {"Image": {"S3Object": {"Bucket": "b", "Name": "x.jpg"}}}, "InvalidParameter"),
        (rek, {"Image": ok, "MinConfidence": 101}, "InvalidParameter"),  # §7.5: botocore lets it through
        (rek_raw, {"Image": ok, "MinConfidence": -1}, "InvalidParameter"),
        (rek_raw, {"Image": ok, "MaxResults": -1}, "InvalidParameter"),
        (rek_raw, {}, "InvalidParameter"),  # no Image
    ]
    for i, (client, kwargs, code) in enumerate(cases):
        with pytest.raises(ClientError) as e:
            client.detect_custom_labels(ProjectVersionArn=running, **kwargs)
        err = e.value.response
        assert _code(e) == f"{code}Exception", (i, err)
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 400 and err["Error"]["Message"], (i, err)
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.detect_custom_labels(ProjectVersionArn=running.split("/version/")[0] + "/1", Image=ok)
    for odd in (float("nan"), float("inf")):  # botocore sends them as the strings "NaN", "Infinity"
        with pytest.raises(rek.exceptions.InvalidParameterException):
            rek.detect_custom_labels(ProjectVersionArn=running, Image=ok, MinConfidence=odd)
    r = httpx.post(
        server.url,
        json={"ProjectVersionArn": running, "Image": {"Bytes": "AAAA"}, "MinConfidence": "50"},
        headers={"X-Amz-Target": "RekognitionService.DetectCustomLabels"},
    )
    assert r.status_code == 400 and r.json()["__type"] == "SerializationException"
    # fractional and boundary values are fine
    assert _labels(rek.detect_custom_labels(ProjectVersionArn=running, Image=ok, MinConfidence=99.5)) == [
        "red"
    ]
    assert _labels(rek.detect_custom_labels(ProjectVersionArn=running, Image=ok, MinConfidence=100)) == []


# --- the AWS CLI ----------------------------------------------------------------------------------------


def test_the_aws_cli(server: Server, running: str, tmp_path: Path) -> None:
    aws = Path(sys.executable).parent / "aws"
    assert aws.exists(), "the AWS CLI is part of the test extra: run `make install`"
    image = tmp_path / "red.jpg"
    image.write_bytes(RED)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),  # no ~/.aws of the machine's
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    def cli(*args: str, **extra_env: str) -> dict[str, Any]:
        done = subprocess.run(
            [str(aws), "rekognition", *args],
            env={**env, **extra_env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        doc: dict[str, Any] = json.loads(done.stdout)
        return doc

    found = cli(
        "detect-custom-labels",
        "--endpoint-url",
        server.url,
        "--region",
        "us-east-1",
        "--project-version-arn",
        running,
        "--image-bytes",
        f"fileb://{image}",
        "--min-confidence",
        "0",
    )
    assert [lab["Name"] for lab in found["CustomLabels"]] == ["red", "blue"]
    assert found["CustomLabels"][0]["Confidence"] > 50
    # the endpoint from the environment, as AWS_ENDPOINT_URL_REKOGNITION is documented to work
    project_arn_prefix = running.split("/version/")[0]  # ...:project/<name>; the project ARN adds its ms
    project = project_arn_prefix.split("/")[1]
    projects = cli("describe-projects", "--project-names", project, AWS_ENDPOINT_URL_REKOGNITION=server.url)
    (desc,) = projects["ProjectDescriptions"]
    assert desc["ProjectArn"].rsplit("/", 1)[0] == project_arn_prefix
    assert desc["Status"] == "CREATED" and desc["Datasets"][0]["DatasetType"] == "TRAIN"


def test_boto3_finds_the_endpoint_in_the_environment(
    server: Server, running: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§7.24: no endpoint_url in the code, only AWS_ENDPOINT_URL_REKOGNITION."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_REKOGNITION", server.url)
    client = boto3.client(
        "rekognition", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    assert client.meta.endpoint_url == server.url
    found = client.detect_custom_labels(ProjectVersionArn=running, Image={"Bytes": BLUE})
    assert _labels(found) == ["blue"]


# --- pieces, in-process ---------------------------------------------------------------------------------


def test_geometry_only_for_boxes() -> None:
    box = Box("logo", left=0.25, top=0.5, width=0.125, height=0.25)
    answer = shapes.custom_labels([Prediction("logo", 97.5, box), Prediction("cat", 60.0)])
    assert answer == {
        "CustomLabels": [
            {
                "Name": "logo",
                "Confidence": 97.5,
                "Geometry": {"BoundingBox": {"Width": 0.125, "Height": 0.25, "Left": 0.25, "Top": 0.5}},
            },
            {"Name": "cat", "Confidence": 60.0},
        ]
    }


def test_a_deferred_answer_that_fails_is_an_aws_error() -> None:
    def settled(exc: Exception) -> tuple[int, dict[str, Any]]:
        future: Future[list[Prediction]] = Future()
        future.set_exception(exc)
        return asyncio.run(settle(Deferred(future, shapes.custom_labels), "request-1"))

    status, doc = settled(NotReady("model version 'v1' is STOPPED; start it first"))
    assert status == 400 and doc["__type"] == "ResourceNotReadyException" and doc["Logref"] == "request-1"
    status, doc = settled(Unavailable("an inference unit died"))  # SDKs retry a 500
    assert status == 500 and doc["__type"] == "InternalServerError"
    status, doc = settled(RuntimeError("/secret/path"))
    assert status == 500 and doc["__type"] == "InternalServerError" and "secret" not in json.dumps(doc)
    future: Future[list[Prediction]] = Future()
    future.set_result([Prediction("red", 99.0)])
    assert asyncio.run(settle(Deferred(future, shapes.custom_labels), "r")) == (
        200,
        {"CustomLabels": [{"Name": "red", "Confidence": 99.0}]},
    )
