"""A2I runtime semantics over core.review. Names of operations are A2I's, in snake_case (moto's habit).

* StartHumanLoop: the flow definition ARN names a project's flow (a project's default flow, named after
  it, is created on first use). Same name and same input again: the same loop. Same name, another
  input: ConflictException. The image already has an open loop: ConflictException. The image the input
  names is missing or not an image: ValidationException.
* DeleteHumanLoop of an InProgress or Stopping loop: ValidationException (stop it first).
* StopHumanLoop of a Completed or Failed loop: ValidationException."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from visionloop.a2i.exceptions import (
    ConflictException,
    ResourceNotFoundException,
    ValidationException,
)
from visionloop.core import review
from visionloop.core.records.review import FlowDefinition, HumanLoop
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, Conflict, NotFound, QuotaExceeded


@dataclass
class A2IBackend:
    svc: Services
    region: str
    account: str

    def flow(self, arn: str, create: bool = True) -> FlowDefinition | None:
        try:
            return review.flow_by_arn(self.svc, arn, region=self.region, account=self.account, create=create)
        except NotFound as e:
            raise ResourceNotFoundException(e.message) from None

    def start_human_loop(
        self, name: str, flow_arn: str, input_content: str, data_attributes: tuple[str, ...]
    ) -> HumanLoop:
        flow = self.flow(flow_arn)
        assert flow is not None
        try:
            return review.start_loop(self.svc, flow, name, input_content, data_attributes=data_attributes)
        except AlreadyExists as e:
            raise ConflictException(e.message) from None
        except QuotaExceeded:
            raise
        except Conflict as e:
            raise ConflictException(e.message) from None
        except NotFound as e:  # the image the input names
            raise ValidationException(
                f"The input content names an image that does not exist: {e.message}"
            ) from None

    def describe_human_loop(self, name: str) -> HumanLoop:
        try:
            return review.describe_loop(self.svc, name)
        except NotFound as e:
            raise ResourceNotFoundException(e.message) from None

    def list_human_loops(
        self,
        flow_arn: str,
        created_after: datetime | None,
        created_before: datetime | None,
        ascending: bool,
        offset: int,
        limit: int,
    ) -> list[HumanLoop]:
        flow = self.flow(flow_arn, create=False)
        if flow is None:  # a project without a flow yet has no loops
            return []
        return review.list_loops(
            self.svc,
            flow,
            created_after=created_after,
            created_before=created_before,
            ascending=ascending,
            offset=offset,
            limit=limit,
        )

    def stop_human_loop(self, name: str) -> None:
        try:
            review.stop_loop(self.svc, name)
        except NotFound as e:
            raise ResourceNotFoundException(e.message) from None
        except Conflict as e:
            raise ValidationException(e.message) from None

    def delete_human_loop(self, name: str) -> None:
        try:
            review.delete_loop(self.svc, name)
        except NotFound as e:
            raise ResourceNotFoundException(e.message) from None
        except Conflict as e:
            raise ValidationException(e.message) from None
