"""Flow definitions, as SageMaker has them, over the review flows of core.review: a flow definition IS a
project's review flow (one per project), the one the A2I runtime starts loops on and reviewers work
through. Names of operations are SageMaker's, in snake_case (moto's habit).

* CreateFlowDefinition makes the flow of the project that the tag ``visionloop:project`` names, else of the
  project named like the flow, created (a classification project) when there is none: the reviewers'
  answers become its training data. The settings take TaskCount (reviewers per item),
  TaskTimeLimitInSeconds (how long a reviewer holds an item), TaskAvailabilityLifetimeInSeconds (the loop's
  time limit), TaskDescription (the instructions) and the bucket of S3OutputPath; the request itself is
  kept beside the flow. A flow for Rekognition's DetectModerationLabels offers the moderation labels its
  conditions name (all top-level categories when they name "*"). A taken name, or a project that has a
  flow already: ResourceInUse.
* DeleteFlowDefinition of a flow that has human loops: ResourceInUse (delete the loops first: nothing
  stored is lost). The project stays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from visionloop.analysis.moderation import EXPLICIT, NON_EXPLICIT, NOT_COVERED, SWIMWEAR
from visionloop.core.entities import Project
from visionloop.core.projects import create_project, get_project
from visionloop.core.records.review import FlowDefinition, FlowSettings
from visionloop.core.review import put_flow
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, NotFound
from visionloop.sagemaker import conditions
from visionloop.sagemaker.exceptions import ResourceInUse, ResourceNotFound, ValidationException
from visionloop.sagemaker.requests import MODERATION_SOURCE, PROJECT_TAG, FlowRequest

MODERATION_CATEGORIES = (EXPLICIT, NON_EXPLICIT, SWIMWEAR, *NOT_COVERED)  # Rekognition's top level


@dataclass
class SageMakerBackend:
    svc: Services
    region: str
    account: str

    def create_flow_definition(self, req: FlowRequest) -> FlowDefinition:
        repo = self.svc.repo
        if repo.get_flow_by_name(req.name) is not None:
            raise ResourceInUse(f"flow definition {req.name!r} already exists")
        settings = FlowSettings(
            labels=_choices(req),
            instructions=req.instructions,
            reviewers_per_item=req.reviewers_per_item,
            time_limit_seconds=req.time_limit_seconds,
            lease_seconds=req.lease_seconds,
            output_bucket=req.output_bucket,
        )
        project = self._project(req)
        existing = repo.find_flow(project.id)
        if existing is not None:
            raise ResourceInUse(
                f"project {project.name!r} already has the flow definition {existing.name!r} (a project has "
                f"one flow); tag the new flow with {PROJECT_TAG}=<another project>, or delete that one first"
            )
        try:
            flow = put_flow(
                self.svc, project.name, settings, region=self.region, account=self.account, name=req.name
            )
        except AlreadyExists:
            raise ResourceInUse(f"flow definition {req.name!r} already exists") from None
        repo.put_flow_definition(flow.id, req.definition)
        return flow

    def _project(self, req: FlowRequest) -> Project:
        if req.project not in (None, req.name) and self._exists(req.name):
            raise ResourceInUse(
                f"{req.name!r} is the name of a project, which its own flow takes; name the flow otherwise"
            )
        try:
            return get_project(self.svc, req.project or req.name)
        except NotFound:
            if req.project is not None:
                raise ValidationException(
                    f"the tag {PROJECT_TAG} names the project {req.project[:80]!r}, which does not exist"
                ) from None
        try:
            return create_project(self.svc, req.name)
        except AlreadyExists:  # created meanwhile
            return get_project(self.svc, req.name)

    def _exists(self, project: str) -> bool:
        try:
            get_project(self.svc, project)
        except NotFound:
            return False
        return True

    def describe_flow_definition(self, name: str) -> tuple[FlowDefinition, dict[str, Any] | None]:
        flow = self.svc.repo.get_flow_by_name(name)
        if flow is None:
            raise ResourceNotFound(f"flow definition {name[:80]!r} does not exist")
        return flow, self.svc.repo.get_flow_definition(flow.id)

    def list_flow_definitions(
        self, after: datetime | None, before: datetime | None, ascending: bool
    ) -> list[FlowDefinition]:
        """The flows created within [after, before] (compared at the milliseconds answered)."""
        flows = [
            f
            for f in self.svc.repo.list_flows()
            if (after is None or _ms(f.created_at) >= _ms(after))
            and (before is None or _ms(f.created_at) <= _ms(before))
        ]
        return flows if ascending else flows[::-1]

    def delete_flow_definition(self, name: str) -> None:
        flow, _ = self.describe_flow_definition(name)
        if not self.svc.repo.delete_flow(flow.id):
            if self.svc.repo.get_flow_by_name(name) is None:
                raise ResourceNotFound(f"flow definition {name[:80]!r} does not exist")
            raise ResourceInUse(
                f"flow definition {name!r} has human loops; stop and delete them first (DeleteHumanLoop), "
                "so that no review is lost"
            )


def _choices(req: FlowRequest) -> tuple[str, ...]:
    """The labels a reviewer of the flow chooses from; empty: the project's labels."""
    if req.request_source != MODERATION_SOURCE or req.conditions is None:
        return ()
    named = conditions.label_names(req.conditions)
    if not named or conditions.ANY_LABEL in named:
        return MODERATION_CATEGORIES
    return tuple(named)


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)
