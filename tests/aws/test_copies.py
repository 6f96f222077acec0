"""CopyProjectVersion through boto3 against the real server: a copy into another project and within the
project, what DescribeProjectVersions says of it (COPYING_COMPLETED, SourceProjectVersionArn, the source's
evaluation), the copy served and detecting like its source after the source is deleted (its files are
its own), the source project's policies allowing or denying copies (AccessDeniedException), and each
bad request answered with its modelled error."""

from __future__ import annotations

from typing import Any

import pytest

from tests.aws.conftest import Server, put_labelled_images, put_manifest
from tests.aws.test_policies import policy
from tests.factories import image_bytes
from visionloop.core.training import MODELS_BUCKET

RED = image_bytes(color=(210, 30, 30))
BLUE = image_bytes(color=(30, 40, 210))
WAIT = {"Delay": 0.2, "MaxAttempts": 150}
OUT = {"S3Bucket": "copies", "S3KeyPrefix": "copied"}


def _trained(rek: Any, server: Server) -> tuple[str, str]:
    """A project with a trained version v1 (red and blue images): the project's and version's ARNs."""
    name = server.name("copysrc")
    project = rek.create_project(ProjectName=name)["ProjectArn"]
    lines = put_labelled_images(server, "copying", name, {"red": 6, "blue": 6})
    manifest = put_manifest(server, "copying", f"{name}.manifest", lines)
    source = {"GroundTruthManifest": {"S3Object": manifest}}
    rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)
    version = rek.create_project_version(ProjectArn=project, VersionName="v1", OutputConfig=OUT)
    rek.get_waiter("project_version_training_completed").wait(ProjectArn=project, WaiterConfig=WAIT)
    return project, version["ProjectVersionArn"]


def _describe(rek: Any, project: str, version: str) -> dict[str, Any]:
    (found,) = rek.describe_project_versions(ProjectArn=project, VersionNames=[version])[
        "ProjectVersionDescriptions"
    ]
    return dict(found)


def _copy(rek: Any, source: str, version: str, destination: str, name: str, **extra: Any) -> str:
    arn: str = rek.copy_project_version(
        SourceProjectArn=source,
        SourceProjectVersionArn=version,
        DestinationProjectArn=destination,
        VersionName=name,
        OutputConfig=OUT,
        **extra,
    )["ProjectVersionArn"]
    return arn


def _labels(answer: dict[str, Any]) -> list[str]:
    return [lab["Name"] for lab in answer["CustomLabels"]]


def test_a_copy_is_a_version_of_its_own_that_serves_like_the_source(rek: Any, server: Server) -> None:
    source, v1 = _trained(rek, server)
    destination = rek.create_project(ProjectName=server.name("copydst"))["ProjectArn"]
    copy = _copy(rek, source, v1, destination, "imported", Tags={"from": "v1"}, KmsKeyId="alias/x")
    assert f":project/{destination.split('/')[1]}/version/imported/" in copy
    described = _describe(rek, destination, "imported")
    original = _describe(rek, source, "v1")
    assert described["ProjectVersionArn"] == copy and described["Status"] == "COPYING_COMPLETED"
    assert described["SourceProjectVersionArn"] == v1 and "SourceProjectVersionArn" not in original
    assert described["EvaluationResult"]["F1Score"] == original["EvaluationResult"]["F1Score"]
    assert described["OutputConfig"] == {"S3Bucket": "copies", "S3KeyPrefix": "copied"}
    summary = described["EvaluationResult"]["Summary"]["S3Object"]
    assert summary["Name"] == f"copied/EvaluationResultSummary-{destination.split('/')[1]}-imported.json"
    assert server.svc.buckets.exists(summary["Bucket"], summary["Name"])
    assert rek.list_tags_for_resource(ResourceArn=copy)["Tags"] == {"from": "v1"}
    # the source's training and testing manifests, copied beside the copy's summary
    for part in ("TrainingDataResult", "TestingDataResult"):
        for kind in ("Input", "Output", "Validation"):
            (asset,) = described[part][kind]["Assets"]
            ref, theirs = asset["GroundTruthManifest"]["S3Object"], original[part][kind]["Assets"][0]
            assert ref["Name"].startswith(f"copied/manifests/{destination.split('/')[1]}/imported/")
            mine = server.svc.buckets.get(ref["Bucket"], ref["Name"])
            source_ref = theirs["GroundTruthManifest"]["S3Object"]
            assert mine == server.svc.buckets.get(source_ref["Bucket"], source_ref["Name"])
    assert described["TestingDataResult"]["Input"]["AutoCreate"] is True  # TEST was split off TRAIN
    summary_ref = described["ManifestSummary"]["S3Object"]
    assert server.svc.buckets.exists(summary_ref["Bucket"], summary_ref["Name"])
    within = _copy(rek, source, v1, source, "v1-again")  # within the project too
    assert _describe(rek, source, "v1-again")["SourceProjectVersionArn"] == v1
    assert rek.delete_project_version(ProjectVersionArn=within)["Status"] == "DELETING"

    # the source goes; the copy keeps its own files, starts and detects
    assert rek.delete_project_version(ProjectVersionArn=v1)["Status"] == "DELETING"
    assert not list(server.svc.store.list_objects(MODELS_BUCKET, f"{source.split('/')[1]}/"))
    assert rek.start_project_version(ProjectVersionArn=copy, MinInferenceUnits=1)["Status"] == "STARTING"
    rek.get_waiter("project_version_running").wait(
        ProjectArn=destination, VersionNames=["imported"], WaiterConfig=WAIT
    )
    assert _describe(rek, destination, "imported")["Status"] == "RUNNING"
    assert _labels(rek.detect_custom_labels(ProjectVersionArn=copy, Image={"Bytes": RED})) == ["red"]
    assert _labels(rek.detect_custom_labels(ProjectVersionArn=copy, Image={"Bytes": BLUE})) == ["blue"]
    rek.stop_project_version(ProjectVersionArn=copy)


def test_the_source_projects_policies_decide_copies_into_other_projects(rek: Any, server: Server) -> None:
    source, v1 = _trained(rek, server)
    destination = rek.create_project(ProjectName=server.name("copydst"))["ProjectArn"]
    other = "arn:aws:rekognition:*:*:project/someone-else/*"
    revision = rek.put_project_policy(ProjectArn=source, PolicyName="share", PolicyDocument=policy(other))[
        "PolicyRevisionId"
    ]
    with pytest.raises(rek.exceptions.AccessDeniedException) as e:
        _copy(rek, source, v1, destination, "denied")
    assert "no statement" in e.value.response["Error"]["Message"]
    assert rek.describe_project_versions(ProjectArn=destination)["ProjectVersionDescriptions"] == []
    _copy(rek, source, v1, source, "same-project")  # policies decide copies into other projects only

    mine = f"{source.rsplit('/', 1)[0]}/version/v?/*"
    revision = rek.put_project_policy(
        ProjectArn=source, PolicyName="share", PolicyDocument=policy(mine), PolicyRevisionId=revision
    )["PolicyRevisionId"]
    _copy(rek, source, v1, destination, "allowed")
    rek.put_project_policy(ProjectArn=source, PolicyName="deny", PolicyDocument=policy(v1, "Deny"))
    with pytest.raises(rek.exceptions.AccessDeniedException) as e:
        _copy(rek, source, v1, destination, "denied")
    assert "Deny" in e.value.response["Error"]["Message"]
    rek.delete_project_policy(ProjectArn=source, PolicyName="deny")
    rek.delete_project_policy(ProjectArn=source, PolicyName="share", PolicyRevisionId=revision)
    _copy(rek, source, v1, destination, "no-policy-left")


def test_bad_copies(rek: Any, rek_raw: Any, server: Server) -> None:
    source, v1 = _trained(rek, server)
    destination = rek.create_project(ProjectName=server.name("copydst"))["ProjectArn"]
    _copy(rek, source, v1, destination, "taken")
    with pytest.raises(rek.exceptions.ResourceInUseException):  # the name is taken
        _copy(rek, source, v1, destination, "taken")
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        _copy(rek, source, v1.replace("/v1/", "/nope/"), destination, "x")
    missing = "arn:aws:rekognition:us-east-1:123456789012:project/nope/1690474772815"
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        _copy(rek, source, v1, missing, "x")
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        _copy(rek, missing, v1, destination, "x")
    with pytest.raises(rek.exceptions.InvalidParameterException):  # v1 is not the destination's
        _copy(rek, destination, v1, destination, "x")
    with pytest.raises(rek.exceptions.InvalidParameterException):
        _copy(rek_raw, source, v1, destination, "bad name")
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek_raw.copy_project_version(
            SourceProjectArn=source,
            SourceProjectVersionArn=v1,
            DestinationProjectArn=destination,
            VersionName="x",
        )
    with server.worker.paused():  # a version still training has no model to copy
        training = rek.create_project_version(ProjectArn=source, VersionName="v2", OutputConfig=OUT)
        with pytest.raises(rek.exceptions.ResourceInUseException) as e:
            _copy(rek, source, training["ProjectVersionArn"], destination, "x")
    assert "TRAINING_IN_PROGRESS" in e.value.response["Error"]["Message"]
    names = [
        d["ProjectVersionArn"].split("/")[-2]
        for d in rek.describe_project_versions(ProjectArn=destination)["ProjectVersionDescriptions"]
    ]
    assert names == ["taken"]  # no failed copy left anything
