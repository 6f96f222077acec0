"""UpdateDatasetEntries with a line that does not fit the project's task, or a malformed one, through boto3
against the real server: InvalidParameterException naming the line, and nothing changes, not even the
good lines sent with it (issue 19; docs/aws.md promises it)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.aws.conftest import Server, put_labelled_images, put_manifest
from tests.factories import classification_line, detection_line, image_bytes


def _dataset(rek: Any, server: Server, lines: list[str]) -> str:
    project = rek.create_project(ProjectName=server.name("changes"))["ProjectArn"]
    manifest = put_manifest(server, "changes", f"{project.split('/')[1]}.manifest", lines)
    source = {"GroundTruthManifest": {"S3Object": manifest}}
    arn: str = rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)["DatasetArn"]
    return arn


def _state(rek: Any, arn: str) -> tuple[Any, ...]:
    """Everything UpdateDatasetEntries could change: statistics, status, labels and every entry."""
    desc = rek.describe_dataset(DatasetArn=arn)["DatasetDescription"]
    pages = rek.get_paginator("list_dataset_entries").paginate(DatasetArn=arn)
    lines = sorted(line for page in pages for line in page["DatasetEntries"])
    labels = rek.list_dataset_labels(DatasetArn=arn)["DatasetLabelDescriptions"]
    return desc["DatasetStats"], desc["Status"], desc["StatusMessage"], labels, lines


def _refused(rek: Any, arn: str, changes: list[str]) -> str:
    before = _state(rek, arn)
    with pytest.raises(rek.exceptions.InvalidParameterException) as e:
        rek.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": "\n".join(changes).encode()})
    assert _state(rek, arn) == before
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(e.value.response["Error"]["Message"])


def test_a_line_that_does_not_fit_a_classification_project_changes_nothing(rek: Any, server: Server) -> None:
    lines = put_labelled_images(server, "changes", "cls", {"red": 3, "blue": 3})
    arn = _dataset(rek, server, lines)
    assert _state(rek, arn)[0]["TotalEntries"] == 6
    server.svc.buckets.put("changes", "cls/new.jpg", image_bytes(120, 100, (90, 90, 10)))
    boxes = detection_line("s3://changes/cls/new.jpg", [("lemon", 10, 10, 40, 30)], (120, 100))
    relabel = lines[0].replace('"class-name": "red"', '"class-name": "blue"')
    message = _refused(rek, arn, [relabel, boxes])  # the good relabelling is not applied either
    assert "line 2 (s3://changes/cls/new.jpg): ERROR_UNSUPPORTED_USE_CASE_TYPE" in message
    assert "nothing was changed" in message

    two_labels = json.loads(lines[1])
    two_labels["other"], two_labels["other-metadata"] = 0, {**two_labels["label-metadata"], "class-name": "x"}
    assert "single-label" in _refused(rek, arn, [json.dumps(two_labels)])
    bad = [lines[2].replace('"class-name": "red"', '"class-name": ""'), '{"source-ref": 5}', "not json"]
    message = _refused(rek, arn, bad)
    assert message.startswith("3 of 3 lines cannot be used") and "ERROR_INVALID_JSON_LINE" in message

    rek.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": f"{relabel}\n".encode()})  # fits
    assert _state(rek, arn)[0]["TotalEntries"] == 6


def test_a_line_that_does_not_fit_a_detection_project_changes_nothing(rek: Any, server: Server) -> None:
    server.svc.buckets.create_bucket("changes")
    lines = []
    for i in range(3):
        key = f"det/{i}.jpg"
        server.svc.buckets.put("changes", key, image_bytes(120, 100, (10 + 60 * i, 120, 200)))
        lines.append(detection_line(f"s3://changes/{key}", [("lime", 5, 5, 30 + i, 20)], (120, 100)))
    arn = _dataset(rek, server, lines)
    assert _state(rek, arn)[0]["TotalEntries"] == 3
    image_level = classification_line("s3://changes/det/0.jpg", "lime")
    assert "ERROR_UNSUPPORTED_USE_CASE_TYPE" in _refused(rek, arn, [image_level])
    flat = detection_line("s3://changes/det/1.jpg", [("lime", 5, 5, 0, 20)], (120, 100))
    assert "ERROR_INVALID_BOUNDING_BOX" in _refused(rek, arn, [flat])
