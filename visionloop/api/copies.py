"""Native REST: copying a model version into a project, and the project policies that decide copies
between projects (core.copies, core.policies; the same rules as CopyProjectVersion and
Put/List/DeleteProjectPolicy on the AWS API, see docs/aws.md)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from visionloop.api.deps import ServicesDep
from visionloop.api.versions import version_json
from visionloop.core import copies, ids, project_policies
from visionloop.core.projects import get_project
from visionloop.core.records.policies import ProjectPolicy
from visionloop.core.training import get_version

router = APIRouter(tags=["copies and policies"])


class CopyIn(BaseModel):
    destination: str = Field(description="The project to copy into (the same project or another)")
    version_name: str = Field(description="The copy's name in the destination project")


class PolicyIn(BaseModel):
    document: str | dict[str, Any] = Field(description="The IAM policy document: JSON text or an object")
    revision_id: str | None = Field(
        default=None, description="The policy's current revision, to replace it; leave out to create it"
    )


@router.post("/projects/{project}/versions/{version}/copy", status_code=201)
def copy_version(
    project: str, version: str, body: CopyIn, svc: ServicesDep, request: Request
) -> dict[str, Any]:
    """Copy a trained version; 403 when the source project's policies refuse a copy to another project."""
    settings = request.app.state.settings
    source = get_version(svc, project, version)
    arn = ids.version_arn(settings.region, settings.account_id, project, version, source.created_at)
    request_ = copies.CopyRequest(project, version, body.destination, body.version_name, arn)
    return {"version": version_json(copies.copy_version(svc, request_)), "copied_from": arn}


@router.get("/projects/{project}/policies")
def list_policies(project: str, svc: ServicesDep) -> dict[str, Any]:
    found = project_policies.list_policies(svc, get_project(svc, project))
    return {"policies": [_policy_json(p) for p in found]}


@router.put("/projects/{project}/policies/{name}")
def put_policy(project: str, name: str, body: PolicyIn, svc: ServicesDep) -> dict[str, Any]:
    """Create a policy (no revision_id; 409 if the name is taken) or replace it (its current revision_id)."""
    document = body.document if isinstance(body.document, str) else json.dumps(body.document)
    policy = project_policies.put_policy(svc, get_project(svc, project), name, document, body.revision_id)
    return _policy_json(policy)


@router.delete("/projects/{project}/policies/{name}", status_code=204)
def delete_policy(
    project: str,
    name: str,
    svc: ServicesDep,
    revision_id: str | None = Query(default=None, description="Refuse unless it is the current revision"),
) -> Response:
    project_policies.delete_policy(svc, get_project(svc, project), name, revision_id)
    return Response(status_code=204)


def _policy_json(p: ProjectPolicy) -> dict[str, Any]:
    return {
        "name": p.name,
        "document": p.document,
        "revision_id": p.revision_id,
        "created_at": p.created_at.isoformat(),
        "updated_at": p.updated_at.isoformat(),
    }
