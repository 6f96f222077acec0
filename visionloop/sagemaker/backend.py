"""Flow definitions, as SageMaker has them, over core.review.definitions: a flow definition IS a
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
from visionloop.core.records.review import FlowDefinition, FlowSettings
from visionloop.core.review import definitions
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, NotFound
from visionloop.sagemaker import conditions
from visionloop.sagemaker.exceptions import ResourceInUse, ValidationException
from visionloop.sagemaker.requests import MODERATION_SOURCE, PROJECT_TAG, FlowRequest

MODERATION_CATEGORIES = (EXPLICIT, NON_EXPLICIT, SWIMWEAR, *NOT_COVERED)  # Rekognition's top level


@dataclass
class SageMakerBackend:
    svc: Services
    region: str
    account: str

    def create_flow_definition(self, req: FlowRequest) -> FlowDefinition:
        settings = FlowSettings(
            labels=_choices(req),
            instructions=req.instructions,
            reviewers_per_item=req.reviewers_per_item,
            time_limit_seconds=req.time_limit_seconds,
            lease_seconds=req.lease_seconds,
            output_bucket=req.output_bucket,
        )
        try:
            return definitions.define_flow(
                self.svc,
                req.name,
                settings,
                req.definition,
                project=req.project,
                region=self.region,
                account=self.account,
            )
        except AlreadyExists as e:
            raise ResourceInUse(e.message) from None
        except NotFound as e:  # the project the tag names
            raise ValidationException(
                f"the tag {PROJECT_TAG} names a project that does not exist: {e.message}"
            ) from None

    def describe_flow_definition(self, name: str) -> tuple[FlowDefinition, dict[str, Any] | None]:
        flow = definitions.flow_named(self.svc, name)
        return flow, definitions.kept_definition(self.svc, flow)

    def list_flow_definitions(
        self, after: datetime | None, before: datetime | None, ascending: bool
    ) -> list[FlowDefinition]:
        """The flows created within [after, before] (compared at the milliseconds answered)."""
        flows = [
            f
            for f in definitions.list_flows(self.svc)
            if (after is None or _ms(f.created_at) >= _ms(after))
            and (before is None or _ms(f.created_at) <= _ms(before))
        ]
        return flows if ascending else flows[::-1]

    def delete_flow_definition(self, name: str) -> None:
        definitions.delete_flow(self.svc, name)  # NotFound, Conflict: ResourceNotFound, ResourceInUse


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
