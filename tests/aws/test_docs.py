"""docs/aws.md lists exactly the operations the dispatcher serves, each a real Rekognition operation."""

from __future__ import annotations

from pathlib import Path

import botocore.session

from visionloop.aws.coverage import operations_table, render
from visionloop.aws.responses import OPERATIONS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "aws.md"


def test_the_operations_table_is_generated_from_the_dispatcher() -> None:
    page = PAGE.read_text()
    assert render(page) == page, "docs/aws.md is stale: run `python -m visionloop.aws.coverage docs/aws.md`"
    assert operations_table() in page


def test_every_operation_is_one_of_rekognition_and_documented() -> None:
    model = botocore.session.get_session().get_service_model("rekognition")
    assert set(OPERATIONS) <= set(model.operation_names)
    assert all((handler.__doc__ or "").strip() for handler in OPERATIONS.values())
    assert {
        "CreateProject", "DescribeProjects", "DeleteProject", "CreateDataset", "DescribeDataset",
        "ListDatasetEntries", "ListDatasetLabels", "UpdateDatasetEntries", "DistributeDatasetEntries",
        "DeleteDataset", "CreateProjectVersion", "DescribeProjectVersions", "DeleteProjectVersion",
        "TagResource", "UntagResource", "ListTagsForResource",
        "StartProjectVersion", "StopProjectVersion", "DetectCustomLabels",
    } <= set(OPERATIONS)  # fmt: skip
