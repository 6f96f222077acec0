"""Project policies through boto3 against the real server: PutProjectPolicy, ListProjectPolicies and
DeleteProjectPolicy with their revision ids, the five-policy limit, and each bad request answered with
the error Rekognition models for it (``rek.exceptions.X`` catches it)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.aws.conftest import Server

MISSING_PROJECT = "arn:aws:rekognition:us-east-1:123456789012:project/nope/1690474772815"


def policy(resource: str = "*", effect: str = "Allow") -> str:
    statement = {
        "Effect": effect,
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "rekognition:CopyProjectVersion",
        "Resource": resource,
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _policies(rek: Any, project: str, **kwargs: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = rek.list_project_policies(ProjectArn=project, **kwargs)["ProjectPolicies"]
    return found


def test_put_list_update_delete(rek: Any, server: Server) -> None:
    project = rek.create_project(ProjectName=server.name("policies"))["ProjectArn"]
    assert _policies(rek, project) == []
    first = rek.put_project_policy(ProjectArn=project, PolicyName="share", PolicyDocument=policy())
    revision = first["PolicyRevisionId"]
    assert len(revision) == 32 and int(revision, 16) >= 0
    (listed,) = _policies(rek, project)
    assert listed["ProjectArn"] == project and listed["PolicyName"] == "share"
    assert listed["PolicyDocument"] == policy() and listed["PolicyRevisionId"] == revision
    assert listed["CreationTimestamp"] == listed["LastUpdatedTimestamp"]

    with pytest.raises(rek.exceptions.ResourceAlreadyExistsException):  # no revision: a new policy
        rek.put_project_policy(ProjectArn=project, PolicyName="share", PolicyDocument=policy())
    updated = rek.put_project_policy(
        ProjectArn=project, PolicyName="share", PolicyDocument=policy("arn:*"), PolicyRevisionId=revision
    )["PolicyRevisionId"]
    assert updated != revision
    with pytest.raises(rek.exceptions.InvalidPolicyRevisionIdException):  # the old revision
        rek.put_project_policy(
            ProjectArn=project, PolicyName="share", PolicyDocument=policy(), PolicyRevisionId=revision
        )
    with pytest.raises(rek.exceptions.InvalidPolicyRevisionIdException):  # nothing to update
        rek.put_project_policy(
            ProjectArn=project, PolicyName="other", PolicyDocument=policy(), PolicyRevisionId=revision
        )
    (listed,) = _policies(rek, project)
    assert listed["PolicyDocument"] == policy("arn:*") and listed["PolicyRevisionId"] == updated
    assert listed["LastUpdatedTimestamp"] >= listed["CreationTimestamp"]

    with pytest.raises(rek.exceptions.InvalidPolicyRevisionIdException):
        rek.delete_project_policy(ProjectArn=project, PolicyName="share", PolicyRevisionId=revision)
    assert _policies(rek, project)  # still there
    rek.delete_project_policy(ProjectArn=project, PolicyName="share", PolicyRevisionId=updated)
    assert _policies(rek, project) == []
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.delete_project_policy(ProjectArn=project, PolicyName="share")


def test_five_policies_a_project_listed_in_pages(rek: Any, server: Server) -> None:
    project = rek.create_project(ProjectName=server.name("policies"))["ProjectArn"]
    for i in range(5):
        rek.put_project_policy(ProjectArn=project, PolicyName=f"p{i}", PolicyDocument=policy())
    with pytest.raises(rek.exceptions.LimitExceededException):
        rek.put_project_policy(ProjectArn=project, PolicyName="p5", PolicyDocument=policy())
    first = rek.list_project_policies(ProjectArn=project, MaxResults=2)
    assert [p["PolicyName"] for p in first["ProjectPolicies"]] == ["p0", "p1"]
    paginator = rek.get_paginator("list_project_policies")
    pages = list(paginator.paginate(ProjectArn=project, PaginationConfig={"PageSize": 2}))
    assert [len(p["ProjectPolicies"]) for p in pages] == [2, 2, 1]
    names = [p["PolicyName"] for page in pages for p in page["ProjectPolicies"]]
    assert names == [f"p{i}" for i in range(5)]
    rek.delete_project_policy(ProjectArn=project, PolicyName="p0")
    rek.put_project_policy(ProjectArn=project, PolicyName="p5", PolicyDocument=policy())  # room again


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        '{"Statement": []}',
        json.dumps({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}),  # no Principal
        json.dumps({"Version": "1999-01-01", "Statement": json.loads(policy())["Statement"]}),
    ],
)
def test_malformed_documents(rek: Any, server: Server, document: str) -> None:
    project = rek.create_project(ProjectName=server.name("policies"))["ProjectArn"]
    with pytest.raises(rek.exceptions.MalformedPolicyDocumentException):
        rek.put_project_policy(ProjectArn=project, PolicyName="bad", PolicyDocument=document)
    assert _policies(rek, project) == []  # nothing stored


def test_bad_requests(rek: Any, rek_raw: Any, server: Server) -> None:
    project = rek.create_project(ProjectName=server.name("policies"))["ProjectArn"]
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.put_project_policy(ProjectArn=MISSING_PROJECT, PolicyName="p", PolicyDocument=policy())
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.list_project_policies(ProjectArn=MISSING_PROJECT)
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.delete_project_policy(ProjectArn=MISSING_PROJECT, PolicyName="p")
    bad = [
        {"ProjectArn": project, "PolicyName": "a b", "PolicyDocument": policy()},
        {"ProjectArn": project, "PolicyName": "x" * 129, "PolicyDocument": policy()},
        {"ProjectArn": project, "PolicyName": "p", "PolicyDocument": policy(), "PolicyRevisionId": "xyz"},
        {"ProjectArn": project, "PolicyName": "p"},
        {"ProjectArn": "not-an-arn-at-all-really", "PolicyName": "p", "PolicyDocument": policy()},
    ]
    for request in bad:
        with pytest.raises(rek.exceptions.InvalidParameterException):
            rek_raw.put_project_policy(**request)
    for size in (0, 6):
        with pytest.raises(rek.exceptions.InvalidParameterException):
            rek_raw.list_project_policies(ProjectArn=project, MaxResults=size)
    with pytest.raises(rek.exceptions.InvalidPaginationTokenException):
        rek.list_project_policies(ProjectArn=project, NextToken="garbage")
    big = json.dumps({"Statement": json.loads(policy())["Statement"], "Id": "x" * 2000})
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek_raw.put_project_policy(ProjectArn=project, PolicyName="p", PolicyDocument=big)
    assert _policies(rek, project) == []
