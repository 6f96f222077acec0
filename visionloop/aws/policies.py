"""PutProjectPolicy, ListProjectPolicies and DeleteProjectPolicy over core.policies: the members checked
as Rekognition checks them, its errors (InvalidPolicyRevisionIdException, MalformedPolicyDocumentException,
LimitExceededException at the sixth policy, ResourceAlreadyExistsException for a name taken without a
revision id) and the ProjectPolicy shape. What the policies decide is core.policies' docstring."""

from __future__ import annotations

import re
from typing import Any

from visionloop.aws.backend import RekognitionBackend
from visionloop.aws.exceptions import (
    InvalidParameterException,
    InvalidPolicyRevisionIdException,
    LimitExceededException,
    MalformedPolicyDocumentException,
)
from visionloop.aws.pagination import page
from visionloop.aws.params import Params
from visionloop.aws.shapes import timestamp
from visionloop.core import policies, project_policies
from visionloop.core.records.policies import MAX_POLICIES, ProjectPolicy, RevisionMismatch
from visionloop.errors import QuotaExceeded

Json = dict[str, Any]
POLICY_NAME = re.compile(r"^[a-zA-Z0-9_.\-]+$")
REVISION = re.compile(r"^[0-9A-Fa-f]+$")


def put_project_policy(backend: RekognitionBackend, p: Params) -> Json:
    project = backend.res.project(p.arn("ProjectArn"))
    name = _name(p)
    revision = p.string("PolicyRevisionId", min_len=1, max_len=64, pattern=REVISION)
    document = p.required_string("PolicyDocument", max_len=policies.MAX_DOCUMENT)
    try:
        policy = project_policies.put_policy(backend.svc, project, name, document, revision)
    except policies.MalformedPolicy as e:
        raise MalformedPolicyDocumentException(e.message) from None
    except RevisionMismatch as e:
        raise InvalidPolicyRevisionIdException(e.message) from None
    except QuotaExceeded as e:
        raise LimitExceededException(e.message) from None
    return {"PolicyRevisionId": policy.revision_id}


def list_project_policies(backend: RekognitionBackend, p: Params) -> Json:
    arn = p.arn("ProjectArn")
    max_results = p.integer("MaxResults")
    if max_results is not None and not 1 <= max_results <= MAX_POLICIES:
        raise InvalidParameterException(
            f"MaxResults must be between 1 and {MAX_POLICIES}; it is {max_results}."
        )
    project = backend.res.project(arn)
    pg = page(p, "ListProjectPolicies", {"arn": arn}, default=MAX_POLICIES)
    chunk, token = pg.slice(project_policies.list_policies(backend.svc, project))
    out: Json = {"ProjectPolicies": [_policy(arn, x) for x in chunk]}
    return {**out, "NextToken": token} if token else out


def delete_project_policy(backend: RekognitionBackend, p: Params) -> Json:
    project = backend.res.project(p.arn("ProjectArn"))
    name = _name(p)
    revision = p.string("PolicyRevisionId", min_len=1, max_len=64, pattern=REVISION)
    try:
        project_policies.delete_policy(backend.svc, project, name, revision)
    except RevisionMismatch as e:
        raise InvalidPolicyRevisionIdException(e.message) from None
    return {}


def _name(p: Params) -> str:
    return p.required_string("PolicyName", max_len=128, pattern=POLICY_NAME)


def _policy(project_arn: str, x: ProjectPolicy) -> Json:
    return {
        "ProjectArn": project_arn,
        "PolicyName": x.name,
        "PolicyRevisionId": x.revision_id,
        "PolicyDocument": x.document,
        "CreationTimestamp": timestamp(x.created_at),
        "LastUpdatedTimestamp": timestamp(x.updated_at),
    }
