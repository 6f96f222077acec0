"""Projects and tags through boto3 against the real server."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import Server

PROJECT_ARN = re.compile(r"^arn:aws:rekognition:us-east-1:\d{12}:project/[a-zA-Z0-9_.\-]+/\d+$")
MISSING = "arn:aws:rekognition:us-east-1:123456789012:project/nope/1690474772815"


def _code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


def test_create_describe_delete_project(rek: Any, server: Server) -> None:
    name = server.name("compat-p")
    arn = rek.create_project(ProjectName=name)["ProjectArn"]
    assert PROJECT_ARN.match(arn) and f":project/{name}/" in arn
    with pytest.raises(rek.exceptions.ResourceInUseException):
        rek.create_project(ProjectName=name)

    (desc,) = rek.describe_projects(ProjectNames=[name])["ProjectDescriptions"]
    assert desc["ProjectArn"] == arn
    assert desc["Status"] == "CREATED" and desc["Feature"] == "CUSTOM_LABELS"
    assert isinstance(desc["CreationTimestamp"], datetime) and desc["Datasets"] == []
    assert (
        rek.describe_projects(ProjectNames=[name], Features=["CONTENT_MODERATION"])["ProjectDescriptions"]
        == []
    )

    assert rek.delete_project(ProjectArn=arn)["Status"] == "DELETING"
    assert rek.describe_projects(ProjectNames=[name])["ProjectDescriptions"] == []
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.delete_project(ProjectArn=arn)


def test_an_arn_names_one_incarnation_of_a_project(rek: Any, server: Server) -> None:
    name = server.name("again")
    old = rek.create_project(ProjectName=name)["ProjectArn"]
    rek.delete_project(ProjectArn=old)
    new = rek.create_project(ProjectName=name)["ProjectArn"]
    assert new != old
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.delete_project(ProjectArn=old)
    other_account = new.replace(":123456789012:", ":999999999999:")
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.list_tags_for_resource(ResourceArn=other_account)
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.delete_project(ProjectArn=MISSING)


def test_describe_projects_paginates(rek: Any, server: Server) -> None:
    names = [server.name("page") for _ in range(3)]
    for n in names:
        rek.create_project(ProjectName=n)
    pages = list(
        rek.get_paginator("describe_projects").paginate(ProjectNames=names, PaginationConfig={"PageSize": 1})
    )
    assert [[d["ProjectArn"].split("/")[1] for d in p["ProjectDescriptions"]] for p in pages] == [
        [n] for n in names
    ]
    tokens = [p.get("NextToken") for p in pages]
    assert tokens[-1] is None and len(set(tokens[:-1])) == 2
    # the same position gives the same token; a token only fits the query that made it
    again = rek.describe_projects(ProjectNames=names, MaxResults=1)
    assert again["NextToken"] == tokens[0]
    with pytest.raises(rek.exceptions.InvalidPaginationTokenException):
        rek.describe_projects(ProjectNames=names[:2], NextToken=tokens[0])
    with pytest.raises(rek.exceptions.InvalidPaginationTokenException):
        rek.describe_projects(NextToken="not-a-token")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ProjectName": "bad name"},
        {"ProjectName": "x" * 256},
        {"ProjectName": "p", "Feature": "CONTENT_MODERATION"},
        {"ProjectName": "p", "Feature": "NOT_A_FEATURE"},
        {"ProjectName": "p", "Tags": {"aws:owner": "me"}},
    ],
)
def test_create_project_checks_what_botocore_does_not(rek: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(rek.exceptions.InvalidParameterException) as e:
        rek.create_project(**kwargs)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_out_of_range_and_malformed_inputs(rek: Any) -> None:
    with pytest.raises(ClientError) as e:
        rek.describe_projects(MaxResults=101)
    assert _code(e) in ("InvalidParameterException", "ValidationException")
    assert "less than or equal to 100" in e.value.response["Error"]["Message"]
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.delete_project(ProjectArn="arn:aws:rekognition:us-east-1:123456789012:project/x")
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.describe_projects(ProjectNames=[f"p{i}" for i in range(11)])


def test_tags_round_trip(rek: Any, server: Server) -> None:
    arn = rek.create_project(ProjectName=server.name("tagged"), Tags={"team": "cv"})["ProjectArn"]
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "cv"}
    rek.tag_resource(ResourceArn=arn, Tags={"stage": "dev", "team": "vision"})
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "vision", "stage": "dev"}
    rek.untag_resource(ResourceArn=arn, TagKeys=["team", "absent"])
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"stage": "dev"}
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.tag_resource(ResourceArn=arn, Tags={"k": "bad\u0000value"})
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.tag_resource(ResourceArn=arn, Tags={f"k{i}": "v" for i in range(201)})
    for call in (
        lambda a: rek.tag_resource(ResourceArn=a, Tags={"a": "b"}),
        lambda a: rek.untag_resource(ResourceArn=a, TagKeys=["a"]),
        lambda a: rek.list_tags_for_resource(ResourceArn=a),
    ):
        with pytest.raises(rek.exceptions.ResourceNotFoundException):
            call(MISSING)
    collection = "arn:aws:rekognition:us-east-1:123456789012:collection/faces"
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.list_tags_for_resource(ResourceArn=collection)
    rek.delete_project(ProjectArn=arn)
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.list_tags_for_resource(ResourceArn=arn)
