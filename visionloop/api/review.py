"""Native REST: human review. A project's flow definition (its settings, and the detection hook's rule),
its human loops (list, start explicitly, describe with answers and output, stop, delete) and the
agreement of human and model answers per label. The reviewers' queue is in visionloop.web; the A2I
runtime API in visionloop.a2i."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from visionloop.api.deps import Offset, ServicesDep
from visionloop.core import review
from visionloop.core.images import content_hash
from visionloop.core.records.review import (
    FlowDefinition,
    FlowSettings,
    HumanLoop,
    LoopPurpose,
    LoopStatus,
    QueueOrder,
)
from visionloop.errors import InvalidInput
from visionloop.workflows.review_hook import ReviewHook

router = APIRouter(tags=["review"])


class FlowIn(BaseModel):
    """Fields left out keep their current value (or the default, for a new flow)."""

    name: str | None = Field(default=None, description="Only when creating; default: the project's name")
    labels: list[str] | None = Field(default=None, description="Label choices; empty: the project's labels")
    instructions: str | None = None
    reviewers_per_item: int | None = Field(default=None, description="Answers each item needs (1-9)")
    time_limit_seconds: int | None = Field(default=None, description="An unanswered item expires after this")
    lease_seconds: int | None = Field(
        default=None, description="An abandoned lease frees the item after this"
    )
    min_confidence: float | None = Field(
        default=None, description="0-100: detections whose top confidence is lower start a loop; null: never"
    )
    audit_rate: float | None = Field(
        default=None, description="0-1: share of other detections sampled for audit"
    )
    queue_order: QueueOrder | None = None
    daily_budget: int | None = Field(default=None, description="Items handed out per UTC day; null: no cap")
    output_bucket: str | None = None


class S3ObjectIn(BaseModel):
    bucket: str
    name: str


class LoopIn(BaseModel):
    name: str | None = Field(default=None, description="1-63 of a-z, 0-9 and '-'; default: generated")
    image_base64: str | None = None
    s3_object: S3ObjectIn | None = None
    input_content: dict[str, Any] | None = Field(
        default=None, description="An A2I InputContent document naming the image (instead of the image)"
    )
    purpose: Literal["explicit", "audit"] = "explicit"


def flow_json(flow: FlowDefinition, choices: tuple[str, ...]) -> dict[str, Any]:
    s = flow.settings
    return {
        "name": flow.name,
        "arn": flow.arn,
        "project": flow.project,
        "boxes": flow.boxes,
        "choices": list(choices),
        "labels": list(s.labels),
        "instructions": s.instructions,
        "reviewers_per_item": s.reviewers_per_item,
        "time_limit_seconds": s.time_limit_seconds,
        "lease_seconds": s.lease_seconds,
        "min_confidence": s.min_confidence,
        "audit_rate": s.audit_rate,
        "queue_order": s.queue_order.value,
        "daily_budget": s.daily_budget,
        "output_bucket": s.output_bucket,
        "created_at": flow.created_at.isoformat(),
        "updated_at": flow.updated_at.isoformat(),
    }


def loop_json(loop: HumanLoop) -> dict[str, Any]:
    return {
        "name": loop.name,
        "arn": loop.arn,
        "flow_arn": loop.flow_arn,
        "status": loop.status.value,
        "purpose": loop.purpose.value,
        "created_at": loop.created_at.isoformat(),
        "expires_at": loop.expires_at.isoformat(),
        "content_hash": loop.image.content_hash,
        "source_ref": loop.source_ref,
        "answers_needed": loop.answers_needed,
        "predictions": [{"label": p.label, "confidence": p.confidence} for p in loop.predictions],
        "model_answer": loop.model_answer,
        "margin": loop.margin,
        "model_version": loop.model_version,
        "failure_code": loop.failure_code,
        "failure_reason": loop.failure_reason,
        "completed_at": loop.completed_at.isoformat() if loop.completed_at else None,
        "human_answer": loop.human_answer,
        "agrees": loop.agrees,
        "disagreement": loop.disagreement,
        "result": loop.result.value if loop.result else None,
        "entry_id": loop.entry_id,
        "output_uri": loop.output_uri,
    }


def _arn_parts(request: Request) -> dict[str, str]:
    settings = request.app.state.settings
    return {"region": settings.region, "account": settings.account_id}


def _forget_rule(request: Request, project: str) -> None:
    hook = getattr(getattr(request.app.state, "serving", None), "review_hook", None)
    if isinstance(hook, ReviewHook):
        hook.invalidate(project)


@router.get("/projects/{project}/flow")
def get_flow(project: str, svc: ServicesDep) -> dict[str, Any]:
    flow = review.get_flow(svc, project)
    return flow_json(flow, review.flow_choices(svc, flow))


@router.put("/projects/{project}/flow")
def put_flow(project: str, body: FlowIn, request: Request, svc: ServicesDep) -> dict[str, Any]:
    """Create the project's flow definition or change its settings."""
    current = review.find_flow(svc, project)
    base = current.settings if current is not None else FlowSettings()
    changes = {k: getattr(body, k) for k in body.model_fields_set if k != "name"}
    if "labels" in changes:
        changes["labels"] = tuple(changes["labels"] or ())
    for nullable in ("min_confidence", "daily_budget"):
        changes.setdefault(nullable, getattr(base, nullable))
    nulls = sorted(k for k, v in changes.items() if v is None and k not in ("min_confidence", "daily_budget"))
    if nulls:
        raise InvalidInput(f"{', '.join(nulls)} cannot be null")
    settings = FlowSettings(**{**base.__dict__, **changes})
    flow = review.put_flow(svc, project, settings, name=body.name, **_arn_parts(request))
    _forget_rule(request, project)
    return flow_json(flow, review.flow_choices(svc, flow))


@router.get("/projects/{project}/loops")
def list_loops(
    project: str,
    svc: ServicesDep,
    status: Annotated[LoopStatus | None, Query()] = None,
    ascending: bool = False,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The project's human loops, newest first (unless ``ascending``)."""
    flow = review.find_flow(svc, project)
    if flow is None:
        return {"loops": []}
    loops = review.list_loops(svc, flow, status=status, ascending=ascending, offset=offset, limit=limit)
    return {"loops": [loop_json(lp) for lp in loops]}


@router.post("/projects/{project}/loops", status_code=201)
def start_loop(project: str, body: LoopIn, request: Request, svc: ServicesDep) -> dict[str, Any]:
    """Start a loop for one image: ``image_base64``, ``s3_object`` or an A2I ``input_content``."""
    given = [body.image_base64 is not None, body.s3_object is not None, body.input_content is not None]
    if sum(given) != 1:
        raise InvalidInput("give exactly one of image_base64, s3_object and input_content")
    flow = review.ensure_flow(svc, project, **_arn_parts(request))
    image = None
    content: dict[str, Any] = body.input_content or {}
    if body.s3_object is not None:
        content = {"taskObject": f"s3://{body.s3_object.bucket}/{body.s3_object.name}"}
    elif body.image_base64 is not None:
        try:
            image = base64.b64decode(body.image_base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("image_base64 is not valid base64") from None
        content = {"contentHash": content_hash(image)}
    loop = review.start_loop(svc, flow, body.name, content, image=image, purpose=LoopPurpose(body.purpose))
    return loop_json(loop)


@router.get("/loops/{name}")
def describe_loop(name: str, svc: ServicesDep) -> dict[str, Any]:
    """A loop with its reviewers' answers and, once Completed, its output document."""
    loop = review.describe_loop(svc, name)
    answers = [
        {
            "reviewer": a.reviewer,
            "answer": a.answer,
            "boxes": [b.__dict__ for b in a.boxes],
            "accepted_at": a.accepted_at.isoformat(),
            "submitted_at": a.submitted_at.isoformat(),
        }
        for a in review.loop_answers(svc, loop)
    ]
    return {**loop_json(loop), "answers": answers, "output": review.loop_output(svc, loop)}


@router.post("/loops/{name}/stop")
def stop_loop(name: str, svc: ServicesDep) -> dict[str, Any]:
    return loop_json(review.stop_loop(svc, name))


@router.delete("/loops/{name}", status_code=204)
def delete_loop(name: str, svc: ServicesDep) -> Response:
    review.delete_loop(svc, name)
    return Response(status_code=204)


@router.get("/projects/{project}/review/agreement")
def agreement(project: str, svc: ServicesDep) -> dict[str, Any]:
    """Human vs model per label, over the project's Completed loops."""
    return {"labels": [a.__dict__ for a in review.agreement_by_label(svc, project)]}
