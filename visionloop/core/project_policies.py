"""The project-policy use cases the interfaces call (AWS PutProjectPolicy and friends, the native API, the
CLI): core.policies holds the rules over a PolicyRepository; these find the repository in the services, so
no interface reaches storage itself."""

from __future__ import annotations

from collections.abc import Sequence

from visionloop.core import policies
from visionloop.core.entities import ModelVersion, Project
from visionloop.core.records.policies import PolicyRepository, ProjectPolicy
from visionloop.core.services import Services
from visionloop.errors import Unavailable


def policy_repo(svc: Services) -> PolicyRepository:
    if svc.policies is None:
        raise Unavailable("project policies need the SQL repository (Services.policies is not set)")
    return svc.policies


def put_policy(
    svc: Services, project: Project, name: str, document: str, expected: str | None
) -> ProjectPolicy:
    """Attach or update the project's policy ``name`` (``expected``: the revision it must have now)."""
    return policies.put_policy(policy_repo(svc), project.id, name, document, expected, svc.clock.now())


def delete_policy(svc: Services, project: Project, name: str, expected: str | None) -> None:
    policies.delete_policy(policy_repo(svc), project.id, name, expected)


def list_policies(svc: Services, project: Project) -> list[ProjectPolicy]:
    return policy_repo(svc).list_policies(project.id)


def copy_sources(svc: Services, versions: Sequence[ModelVersion]) -> dict[int, str]:
    """The ARN each copied version (by id) was copied from; versions that were trained are left out."""
    return policy_repo(svc).copy_sources([v.id for v in versions])
