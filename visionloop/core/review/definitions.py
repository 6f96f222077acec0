"""Flow definitions as Amazon SageMaker has them (visionloop.sagemaker, the console's flows page): a flow
created under a name of its own with the request that made it kept beside it (define_flow), every flow
across projects (list_flows), a flow by name (flow_named) with its kept request (kept_definition), a flow
deleted only while it has no human loops (delete_flow), and the open loop that holds an image
(open_loop_for)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from visionloop.core.entities import Project
from visionloop.core.projects import create_project, get_project
from visionloop.core.records.review import FlowDefinition, FlowSettings, HumanLoop
from visionloop.core.review.flows import check_flow_settings, put_flow
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, Conflict, NotFound


def define_flow(
    svc: Services,
    name: str,
    settings: FlowSettings,
    definition: Mapping[str, Any],
    *,
    project: str | None,
    region: str,
    account: str,
) -> FlowDefinition:
    """Create the flow ``name`` for ``project`` (default: the project named ``name``, created as a
    classification project when there is none, so the reviewers' answers have a project to train), and
    keep ``definition`` beside it. AlreadyExists when the name is taken, when the project has a flow
    already (a project has one), or when the name is another project's (its own flow's name); NotFound
    when ``project`` does not exist; InvalidInput for a bad setting (checked before any project is made)."""
    check_flow_settings(settings)
    if svc.repo.get_flow_by_name(name) is not None:
        raise AlreadyExists(f"flow definition {name!r} already exists")
    if project not in (None, name) and _exists(svc, name):
        raise AlreadyExists(
            f"{name!r} is the name of a project, which its own flow takes; name the flow otherwise"
        )
    target = _project(svc, project or name, create=project is None)
    existing = svc.repo.find_flow(target.id)
    if existing is not None:
        raise AlreadyExists(
            f"project {target.name!r} already has the flow definition {existing.name!r} "
            "(a project has one flow)"
        )
    flow = put_flow(svc, target.name, settings, region=region, account=account, name=name)
    svc.repo.put_flow_definition(flow.id, definition)
    return flow


def _exists(svc: Services, project: str) -> bool:
    try:
        get_project(svc, project)
    except NotFound:
        return False
    return True


def _project(svc: Services, name: str, create: bool) -> Project:
    try:
        return get_project(svc, name)
    except NotFound:
        if not create:
            raise
    try:
        return create_project(svc, name)
    except AlreadyExists:  # created meanwhile
        return get_project(svc, name)


def list_flows(svc: Services) -> list[FlowDefinition]:
    """Every project's flow, oldest first."""
    return svc.repo.list_flows()


def flow_named(svc: Services, name: str) -> FlowDefinition:
    flow = svc.repo.get_flow_by_name(name)
    if flow is None:
        raise NotFound(f"flow definition {name[:80]!r} does not exist")
    return flow


def kept_definition(svc: Services, flow: FlowDefinition) -> dict[str, Any] | None:
    """The CreateFlowDefinition request the flow was made with (None: made otherwise)."""
    return svc.repo.get_flow_definition(flow.id)


def delete_flow(svc: Services, name: str) -> FlowDefinition:
    """Delete the flow ``name``; Conflict while it has human loops (delete them first: no review is lost).
    Its project stays."""
    flow = flow_named(svc, name)
    if not svc.repo.delete_flow(flow.id):
        flow_named(svc, name)  # NotFound when deleted meanwhile
        raise Conflict(
            f"flow definition {name!r} has human loops; stop and delete them first (DeleteHumanLoop), "
            "so that no review is lost"
        )
    return flow


def open_loop_for(svc: Services, flow: FlowDefinition, content_hash: str) -> HumanLoop | None:
    """The open loop of the flow's project that holds the image, if any."""
    return svc.repo.open_loop_for_image(flow.project_id, content_hash)
