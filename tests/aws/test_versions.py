"""Model versions through boto3 against the real server: train, wait with boto3's waiter, describe with
the evaluation result and its summary file, paginate, delete."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.exceptions import WaiterError

from tests.aws.conftest import Server, put_labelled_images, put_manifest

VERSION_ARN = re.compile(r"^arn:aws:rekognition:us-east-1:\d{12}:project/[a-zA-Z0-9_.\-]+/version/v1/\d+$")
MISSING_PROJECT = "arn:aws:rekognition:us-east-1:123456789012:project/nope/1690474772815"
FAST = {"Delay": 1, "MaxAttempts": 30}


def _project_with_train(rek: Any, server: Server, counts: dict[str, int]) -> tuple[str, str]:
    name = server.name("train")
    arn = rek.create_project(ProjectName=name)["ProjectArn"]
    lines = put_labelled_images(server, "versions", name, counts)
    manifest = put_manifest(server, "versions", f"{name}.manifest", lines)
    source = {"GroundTruthManifest": {"S3Object": manifest}}
    rek.create_dataset(ProjectArn=arn, DatasetType="TRAIN", DatasetSource=source)
    return name, arn


def _versions(rek: Any, project: str, *names: str) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"VersionNames": list(names)} if names else {}
    found: list[dict[str, Any]] = rek.describe_project_versions(ProjectArn=project, **kwargs)[
        "ProjectVersionDescriptions"
    ]
    return found


def test_train_wait_describe_delete(rek: Any, server: Server) -> None:
    name, project = _project_with_train(rek, server, {"red": 8, "blue": 8})
    output = {"S3Bucket": "outputs", "S3KeyPrefix": "models/run1/"}
    with server.worker.paused():
        version = rek.create_project_version(
            ProjectArn=project,
            VersionName="v1",
            OutputConfig=output,
            Tags={"run": "1"},
            VersionDescription="first",
        )["ProjectVersionArn"]
        assert VERSION_ARN.match(version) and f":project/{name}/version/v1/" in version
        (pending,) = _versions(rek, project, "v1")
        assert pending["Status"] == "TRAINING_IN_PROGRESS" and "EvaluationResult" not in pending
        with pytest.raises(rek.exceptions.ResourceInUseException):  # the name is taken
            rek.create_project_version(ProjectArn=project, VersionName="v1", OutputConfig=output)
        with pytest.raises(rek.exceptions.ResourceInUseException):  # still training
            rek.delete_project_version(ProjectVersionArn=version)

    rek.get_waiter("project_version_training_completed").wait(
        ProjectArn=project, VersionNames=["v1"], WaiterConfig=FAST
    )
    (done,) = _versions(rek, project, "v1")
    assert done["ProjectVersionArn"] == version and done["Status"] == "TRAINING_COMPLETED"
    assert done["StatusMessage"] == "The model is ready to run."
    assert done["TrainingEndTimestamp"] >= done["CreationTimestamp"]
    assert done["BillableTrainingTimeInSeconds"] >= 0
    assert done["OutputConfig"] == {"S3Bucket": "outputs", "S3KeyPrefix": "models/run1"}
    assert done["VersionDescription"] == "first" and done["Feature"] == "CUSTOM_LABELS"
    result = done["EvaluationResult"]
    assert 0 <= result["F1Score"] <= 1
    summary = result["Summary"]["S3Object"]
    assert summary == {"Bucket": "outputs", "Name": f"models/run1/EvaluationResultSummary-{name}-v1.json"}
    doc = json.loads(server.svc.buckets.get(summary["Bucket"], summary["Name"]))
    assert doc["AggregatedEvaluationResults"]["F1Score"] == pytest.approx(result["F1Score"])
    assert rek.list_tags_for_resource(ResourceArn=version)["Tags"] == {"run": "1"}

    with pytest.raises(rek.exceptions.ResourceInUseException):
        rek.delete_project(ProjectArn=project)
    assert rek.delete_project_version(ProjectVersionArn=version)["Status"] == "DELETING"
    assert _versions(rek, project) == []
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.delete_project_version(ProjectVersionArn=version)
    assert rek.delete_project(ProjectArn=project)["Status"] == "DELETING"


def test_versions_filter_and_paginate_newest_first(rek: Any, server: Server) -> None:
    _name, project = _project_with_train(rek, server, {"red": 5, "blue": 5})
    output = {"S3Bucket": "outputs"}
    for v in ("a", "b", "c"):
        rek.create_project_version(ProjectArn=project, VersionName=v, OutputConfig=output)
    rek.get_waiter("project_version_training_completed").wait(ProjectArn=project, WaiterConfig=FAST)
    pages = list(
        rek.get_paginator("describe_project_versions").paginate(
            ProjectArn=project, PaginationConfig={"PageSize": 2}
        )
    )
    names = [d["ProjectVersionArn"].split("/")[3] for p in pages for d in p["ProjectVersionDescriptions"]]
    assert names == ["c", "b", "a"] and len(pages) == 2
    assert [d["ProjectVersionArn"].split("/")[3] for d in _versions(rek, project, "a", "zz")] == ["a"]
    summary = _versions(rek, project, "b")[0]["EvaluationResult"]["Summary"]["S3Object"]
    assert summary["Name"] == f"EvaluationResultSummary-{_name}-b.json"  # no prefix: at the bucket's top


def test_failed_training_fails_the_waiter(rek: Any, server: Server) -> None:
    _name, project = _project_with_train(rek, server, {"red": 6})  # one label cannot train a classifier
    rek.create_project_version(ProjectArn=project, VersionName="v1", OutputConfig={"S3Bucket": "outputs"})
    with pytest.raises(WaiterError) as e:
        rek.get_waiter("project_version_training_completed").wait(
            ProjectArn=project, VersionNames=["v1"], WaiterConfig=FAST
        )
    assert "TRAINING_FAILED" in str(e.value)
    (failed,) = _versions(rek, project, "v1")
    assert "at least 2 labels" in failed["StatusMessage"] and "EvaluationResult" not in failed
    assert rek.delete_project_version(ProjectVersionArn=failed["ProjectVersionArn"])["Status"] == "DELETING"


def test_version_errors(rek: Any, server: Server) -> None:
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.describe_project_versions(ProjectArn=MISSING_PROJECT)
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.create_project_version(
            ProjectArn=MISSING_PROJECT, VersionName="v1", OutputConfig={"S3Bucket": "out"}
        )
    empty = rek.create_project(ProjectName=server.name("empty"))["ProjectArn"]
    with pytest.raises(rek.exceptions.InvalidParameterException) as e:  # no TRAIN dataset
        rek.create_project_version(ProjectArn=empty, VersionName="v1", OutputConfig={"S3Bucket": "out"})
    assert "CreateDataset" in e.value.response["Error"]["Message"]
    bad = [
        {"VersionName": "bad name", "OutputConfig": {"S3Bucket": "out"}},
        {"VersionName": "v1", "OutputConfig": {}},
        {"VersionName": "v1", "OutputConfig": {"S3Bucket": "out", "S3KeyPrefix": "../up"}},
        {"VersionName": "v1", "OutputConfig": {"S3Bucket": "out"}, "VersionDescription": "no <tags>"},
        {
            "VersionName": "v1",
            "OutputConfig": {"S3Bucket": "out"},
            "TrainingData": {
                "Assets": [{"GroundTruthManifest": {"S3Object": {"Bucket": "bkt", "Name": "m"}}}]
            },
        },
    ]
    for kwargs in bad:
        with pytest.raises(rek.exceptions.InvalidParameterException):
            rek.create_project_version(ProjectArn=empty, **kwargs)
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.describe_project_versions(ProjectArn=empty, VersionNames=["not a name"])
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.delete_project_version(ProjectVersionArn=empty)  # a project ARN, not a version ARN
    assert _versions(rek, empty) == []
