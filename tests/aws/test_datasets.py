"""Datasets through boto3 against the real server: create from a manifest, copy, describe, list entries
and labels, update, distribute, delete."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.aws.conftest import Server, put_labelled_images, put_manifest
from tests.factories import detection_line, image_bytes

DATASET_ARN = re.compile(
    r"^arn:aws:rekognition:us-east-1:\d{12}:project/[a-zA-Z0-9_.\-]+/dataset/(train|test)/\d+$"
)
MISSING_PROJECT = "arn:aws:rekognition:us-east-1:123456789012:project/nope/1690474772815"


@pytest.fixture(scope="module")
def train_lines(server: Server) -> list[str]:
    return put_labelled_images(server, "datasets", "fruit", {"red": 6, "blue": 6})


@pytest.fixture
def project(rek: Any, server: Server) -> str:
    arn: str = rek.create_project(ProjectName=server.name("ds"))["ProjectArn"]
    return arn


def _create_train(
    rek: Any, server: Server, project: str, lines: list[str], key: str = "train.manifest"
) -> str:
    manifest = put_manifest(server, "datasets", key, lines)
    source = {"GroundTruthManifest": {"S3Object": manifest}}
    arn: str = rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)["DatasetArn"]
    return arn


def _stats(rek: Any, arn: str) -> dict[str, Any]:
    desc: dict[str, Any] = rek.describe_dataset(DatasetArn=arn)["DatasetDescription"]
    return desc


def _entries(rek: Any, arn: str, **filters: Any) -> list[dict[str, Any]]:
    pages = rek.get_paginator("list_dataset_entries").paginate(DatasetArn=arn, **filters)
    return [json.loads(line) for page in pages for line in page["DatasetEntries"]]


def test_create_from_manifest_and_describe(
    rek: Any, server: Server, project: str, train_lines: list[str]
) -> None:
    arn = _create_train(rek, server, project, train_lines)
    assert DATASET_ARN.match(arn) and "/dataset/train/" in arn
    desc = _stats(rek, arn)
    assert desc["Status"] == "CREATE_COMPLETE" and desc["StatusMessageCode"] == "SUCCESS"
    assert desc["DatasetStats"] == {
        "LabeledEntries": 12,
        "TotalEntries": 12,
        "TotalLabels": 2,
        "ErrorEntries": 0,
    }
    assert desc["LastUpdatedTimestamp"] >= desc["CreationTimestamp"]
    (p,) = rek.describe_projects(ProjectNames=[project.split("/")[1]])["ProjectDescriptions"]
    assert [(d["DatasetType"], d["DatasetArn"], d["Status"]) for d in p["Datasets"]] == [
        ("TRAIN", arn, "CREATE_COMPLETE")
    ]
    with pytest.raises(rek.exceptions.ResourceAlreadyExistsException):
        _create_train(rek, server, project, train_lines)


def test_list_entries_with_filters_and_pages(
    rek: Any, server: Server, project: str, train_lines: list[str]
) -> None:
    arn = _create_train(rek, server, project, train_lines)
    first = rek.list_dataset_entries(DatasetArn=arn, MaxResults=5)
    assert len(first["DatasetEntries"]) == 5 and first["NextToken"]
    entries = _entries(rek, arn, PaginationConfig={"PageSize": 5})
    assert sorted(e["source-ref"] for e in entries) == sorted(
        json.loads(line)["source-ref"] for line in train_lines
    )
    assert all(e["cl-metadata"] == {"is_labeled": True} for e in entries)
    given = {json.loads(line)["source-ref"]: json.loads(line) for line in train_lines}
    assert all({k: v for k, v in e.items() if k != "cl-metadata"} == given[e["source-ref"]] for e in entries)

    assert len(_entries(rek, arn, ContainsLabels=["red"])) == 6
    assert len(_entries(rek, arn, ContainsLabels=["red", "blue"], MaxResults=4)) == 12
    assert _entries(rek, arn, Labeled=False) == []
    assert len(_entries(rek, arn, Labeled=True)) == 12
    (one,) = _entries(rek, arn, SourceRefContains="red_3.jpg")
    assert one["source-ref"].endswith("fruit/red_3.jpg")
    assert _entries(rek, arn, HasErrors=True) == []

    labels = rek.list_dataset_labels(DatasetArn=arn)["DatasetLabelDescriptions"]
    assert labels == [
        {"LabelName": "blue", "LabelStats": {"EntryCount": 6, "BoundingBoxCount": 0}},
        {"LabelName": "red", "LabelStats": {"EntryCount": 6, "BoundingBoxCount": 0}},
    ]
    page = rek.list_dataset_labels(DatasetArn=arn, MaxResults=1)
    assert [d["LabelName"] for d in page["DatasetLabelDescriptions"]] == ["blue"]
    rest = rek.list_dataset_labels(DatasetArn=arn, NextToken=page["NextToken"])
    assert [d["LabelName"] for d in rest["DatasetLabelDescriptions"]] == ["red"] and "NextToken" not in rest
    with pytest.raises(rek.exceptions.InvalidPaginationTokenException):
        rek.list_dataset_entries(DatasetArn=arn, NextToken=page["NextToken"])


def test_update_entries_upserts_by_source_ref(
    rek: Any, server: Server, project: str, train_lines: list[str]
) -> None:
    arn = _create_train(rek, server, project, train_lines)
    relabelled = train_lines[0].replace('"class-name": "red"', '"class-name": "blue"')
    (added,) = put_labelled_images(server, "datasets", "more", {"green": 1})
    rek.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": f"{relabelled}\n{added}\n".encode()})
    desc = _stats(rek, arn)
    assert desc["Status"] == "UPDATE_COMPLETE" and "1 entries relabelled" in desc["StatusMessage"]
    assert desc["DatasetStats"]["TotalEntries"] == 13 and desc["DatasetStats"]["TotalLabels"] == 3
    counts = {
        d["LabelName"]: d["LabelStats"]["EntryCount"]
        for d in rek.list_dataset_labels(DatasetArn=arn)["DatasetLabelDescriptions"]
    }
    assert counts == {"red": 5, "blue": 7, "green": 1}
    ref = json.loads(relabelled)["source-ref"]
    (entry,) = _entries(rek, arn, SourceRefContains=ref)
    assert entry == {**json.loads(relabelled), "cl-metadata": {"is_labeled": True}}  # the new line, as given

    with pytest.raises(rek.exceptions.InvalidParameterException) as e:
        rek.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": b'{"source-ref": "nope"}\n'})
    assert "ERROR_INVALID_SOURCE_REF_FORMAT" in e.value.response["Error"]["Message"]
    assert _stats(rek, arn)["DatasetStats"]["TotalEntries"] == 13


def test_distribute_then_copy(rek: Any, server: Server, project: str, train_lines: list[str]) -> None:
    train = _create_train(rek, server, project, train_lines)
    test = rek.create_dataset(ProjectArn=project, DatasetType="TEST")["DatasetArn"]
    assert "/dataset/test/" in test and _stats(rek, test)["DatasetStats"]["TotalEntries"] == 0
    rek.distribute_dataset_entries(Datasets=[{"Arn": test}, {"Arn": train}])
    train_stats, test_stats = _stats(rek, train), _stats(rek, test)
    assert train_stats["Status"] == test_stats["Status"] == "UPDATE_COMPLETE"
    assert (
        train_stats["DatasetStats"]["TotalEntries"] == 10 and test_stats["DatasetStats"]["TotalEntries"] == 2
    )
    with pytest.raises(rek.exceptions.InvalidParameterException):  # TEST is no longer empty
        rek.distribute_dataset_entries(Datasets=[{"Arn": train}, {"Arn": test}])
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.distribute_dataset_entries(Datasets=[{"Arn": train}, {"Arn": train}])

    other = rek.create_project(ProjectName=server.name("copy"))["ProjectArn"]
    copy = rek.create_dataset(ProjectArn=other, DatasetType="TRAIN", DatasetSource={"DatasetArn": train})[
        "DatasetArn"
    ]
    assert _stats(rek, copy)["DatasetStats"]["TotalEntries"] == 10
    assert sorted(e["source-ref"] for e in _entries(rek, copy)) == sorted(
        e["source-ref"] for e in _entries(rek, train)
    )


def test_create_dataset_errors(rek: Any, server: Server, project: str, train_lines: list[str]) -> None:
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.create_dataset(ProjectArn=MISSING_PROJECT, DatasetType="TEST")
    missing = {"GroundTruthManifest": {"S3Object": {"Bucket": "datasets", "Name": "absent.manifest"}}}
    with pytest.raises(rek.exceptions.InvalidS3ObjectException):
        rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=missing)
    escaping = {"GroundTruthManifest": {"S3Object": {"Bucket": "datasets", "Name": "../x.manifest"}}}
    with pytest.raises(rek.exceptions.InvalidS3ObjectException):
        rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=escaping)
    bad_bucket = {"GroundTruthManifest": {"S3Object": {"Bucket": "no/slash", "Name": "m"}}}
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=bad_bucket)
    both = {**missing, "DatasetArn": project.replace(":project/", ":project/") + "/dataset/train/1"}
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=both)
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.create_dataset(ProjectArn=project, DatasetType="VALIDATION")
    # nothing above created a dataset
    assert (
        rek.describe_projects(ProjectNames=[project.split("/")[1]])["ProjectDescriptions"][0]["Datasets"]
        == []
    )


def test_a_manifest_with_too_many_bad_lines_fails_the_dataset(
    rek: Any, server: Server, project: str, train_lines: list[str]
) -> None:
    lines = train_lines[:4] + ["not json", '{"source-ref": 3}']
    arn = _create_train(rek, server, project, lines, key="bad.manifest")
    desc = _stats(rek, arn)
    assert desc["Status"] == "CREATE_FAILED" and desc["StatusMessageCode"] == "CLIENT_ERROR"
    assert "2 of 6 manifest lines are invalid" in desc["StatusMessage"]
    assert desc["DatasetStats"]["TotalEntries"] == 0


def test_create_dataset_replaces_a_failed_dataset_of_that_type(
    rek: Any, server: Server, project: str, train_lines: list[str]
) -> None:
    failed = _create_train(rek, server, project, train_lines[:2] + ["x", "y"], key="bad2.manifest")
    assert _stats(rek, failed)["Status"] == "CREATE_FAILED"
    with pytest.raises(rek.exceptions.ResourceInUseException, match="create it again"):  # no training on it
        rek.create_project_version(ProjectArn=project, VersionName="v1", OutputConfig={"S3Bucket": "out"})
    rek.tag_resource(ResourceArn=failed, Tags={"try": "1"})
    arn = _create_train(rek, server, project, train_lines)  # was ResourceAlreadyExistsException
    assert arn != failed and _stats(rek, arn)["Status"] == "CREATE_COMPLETE"
    assert _stats(rek, arn)["DatasetStats"]["TotalEntries"] == 12
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {}
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.describe_dataset(DatasetArn=failed)
    with pytest.raises(rek.exceptions.ResourceAlreadyExistsException):  # a complete one is not replaced
        _create_train(rek, server, project, train_lines)


def test_a_detection_manifest_makes_a_detection_project(rek: Any, server: Server, project: str) -> None:
    server.svc.buckets.put("datasets", "boxes/a.png", image_bytes(200, 100, (10, 200, 10), fmt="PNG"))
    line = detection_line(
        "s3://datasets/boxes/a.png", [("cat", 10, 20, 50, 40), ("dog", 100, 10, 60, 80)], (200, 100)
    )
    arn = _create_train(rek, server, project, [line], key="boxes.manifest")
    (entry,) = _entries(rek, arn)
    assert len(entry["bounding-box"]["annotations"]) == 2
    assert entry["bounding-box"]["annotations"][0]["left"] == pytest.approx(10)
    stats = rek.list_dataset_labels(DatasetArn=arn)["DatasetLabelDescriptions"]
    assert [(d["LabelName"], d["LabelStats"]["BoundingBoxCount"]) for d in stats] == [("cat", 1), ("dog", 1)]


def test_delete_dataset(rek: Any, server: Server, project: str, train_lines: list[str]) -> None:
    arn = _create_train(rek, server, project, train_lines)
    rek.tag_resource(ResourceArn=arn, Tags={"kind": "train"})
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"kind": "train"}
    assert rek.delete_dataset(DatasetArn=arn)["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.describe_dataset(DatasetArn=arn)
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.list_dataset_entries(DatasetArn=arn)
    assert (
        rek.describe_projects(ProjectNames=[project.split("/")[1]])["ProjectDescriptions"][0]["Datasets"]
        == []
    )
    again = _create_train(rek, server, project, train_lines)  # a new dataset, a new ARN, no old tags
    assert again != arn and rek.list_tags_for_resource(ResourceArn=again)["Tags"] == {}
