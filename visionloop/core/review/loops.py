"""Human loops: start_loop (A2I StartHumanLoop), describe_loop, list_loops, stop_loop, delete_loop,
loop_answers, loop_output, expire_loops, waiting_counts; the events a loop publishes."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from visionloop.core.entities import Project
from visionloop.core.events import publish
from visionloop.core.images import check_image, content_hash, store_image
from visionloop.core.projects import list_projects
from visionloop.core.records.events import EventType
from visionloop.core.records.review import (
    DELETABLE_STATUSES,
    OPEN_STATUSES,
    FlowDefinition,
    HumanLoop,
    LoopPurpose,
    LoopStatus,
    NewLoop,
    ReviewAnswer,
)
from visionloop.core.review.checks import MAX_INPUT_CHARS, MAX_OPEN_LOOPS, check_loop_name, new_loop_name
from visionloop.core.review.inputs import input_doc, input_image, input_predictions, margin, s3_uri
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound, QuotaExceeded

log = logging.getLogger("visionloop.review")


def start_loop(
    svc: Services,
    flow: FlowDefinition,
    name: str | None,
    input_content: str | Mapping[str, Any],
    *,
    image: bytes | None = None,
    purpose: LoopPurpose = LoopPurpose.EXPLICIT,
    data_attributes: Sequence[str] = (),
    now: datetime | None = None,
) -> HumanLoop:
    """Start a loop explicitly (A2I StartHumanLoop). ``input_content`` is a JSON object (or its text)
    naming the image: ``taskObject`` or ``source-ref`` (``s3://bucket/key`` in the server's buckets),
    ``aiServiceRequest.image.s3Object {bucket, name}`` or ``.bytes`` (base64), or ``contentHash`` (an image
    the server already stores); ``image`` bytes may be given instead. The model's answer may come as
    ``customLabels`` (or ``aiServiceResponse.customLabels``): ``[{"Name", "Confidence"}]``.
    Same name and same input again returns the same loop; another input under the name is AlreadyExists;
    an image with an open loop in the project is Conflict."""
    now = now or svc.clock.now()
    name = check_loop_name(name) if name is not None else new_loop_name(now)
    text = input_content if isinstance(input_content, str) else json.dumps(input_content)
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidInput(f"the input content may be at most {MAX_INPUT_CHARS:,} characters")
    digest = content_hash(image) if image is not None else ""  # the image is part of the input
    input_hash = hashlib.sha256((text + digest).encode("utf-8", "surrogatepass")).hexdigest()
    existing = svc.repo.find_loop(name)
    if existing is not None:
        return _same_loop(svc, existing, input_hash)
    doc = input_doc(text)
    check_quota(svc, flow)
    data, source_ref = (image, "upload") if image is not None else input_image(svc, doc)
    info = check_image(data, svc.inspector)
    predictions = input_predictions(doc)
    new = NewLoop(
        name=name,
        flow_id=flow.id,
        purpose=LoopPurpose(purpose),
        expires_at=now + timedelta(seconds=flow.settings.time_limit_seconds),
        image=info,
        source_ref=source_ref,
        input_content=text,
        input_hash=input_hash,
        answers_needed=flow.settings.reviewers_per_item,
        predictions=predictions,
        model_answer=predictions[0].label if predictions else None,
        margin=margin([p.confidence / 100 for p in predictions]) if predictions else None,
        data_attributes=tuple(data_attributes),
    )
    store_image(svc.store, data, info.content_hash)
    try:
        return loop_created(svc, svc.repo.create_loop(new, now), now)
    except AlreadyExists:
        found = svc.repo.find_loop(name)
        if found is None:
            raise
        return _same_loop(svc, found, input_hash)


def check_quota(svc: Services, flow: FlowDefinition) -> None:
    if svc.repo.count_loops(flow.id, OPEN_STATUSES) >= MAX_OPEN_LOOPS:
        raise QuotaExceeded(
            f"flow {flow.name!r} has {MAX_OPEN_LOOPS:,} open human loops, the most it may have; "
            "let reviewers finish some, or stop some"
        )


def _same_loop(svc: Services, loop: HumanLoop, input_hash: str) -> HumanLoop:
    if svc.repo.loop_input_hash(loop.id) != input_hash:
        raise AlreadyExists(f"a human loop named {loop.name!r} exists with a different input")
    return loop


def loop_created(svc: Services, loop: HumanLoop, now: datetime) -> HumanLoop:
    payload = {
        "loop": loop.name,
        "arn": loop.arn,
        "purpose": loop.purpose.value,
        "model_answer": loop.model_answer,
        "version": loop.model_version,
    }
    publish_loop_event(svc, loop, EventType.HUMAN_LOOP_CREATED, payload, now)
    return loop


def publish_loop_event(
    svc: Services, loop: HumanLoop, type: EventType, payload: dict[str, Any], now: datetime
) -> None:
    """The loop's event (core.events); a failure to publish is logged and never fails the loop."""
    try:
        publish(svc, svc.repo.get_project_by_id(loop.project_id), type, payload, now=now)
    except Exception:
        log.exception("human review: the %s event of loop %s was not published", type.value, loop.name)


def expire_loops(svc: Services, now: datetime | None = None) -> int:
    """InProgress loops past their time limit Fail ("Expired"); Stopping loops whose leases are all gone
    are Stopped. Returns how many loops changed."""
    return svc.repo.expire_loops(now or svc.clock.now())


def describe_loop(svc: Services, name: str, now: datetime | None = None) -> HumanLoop:
    expire_loops(svc, now)
    loop = svc.repo.find_loop(name)
    if loop is None:
        raise NotFound(f"human loop {name[:80]!r} does not exist")
    return loop


def waiting_counts(svc: Services, now: datetime | None = None) -> list[tuple[Project, int]]:
    """Each project that has a flow, in creation order, with how many of its loops wait for answers
    (InProgress) once the expired ones are closed."""
    expire_loops(svc, now)
    waiting = []
    for project in list_projects(svc):
        flow = svc.repo.find_flow(project.id)
        if flow is not None:
            waiting.append((project, svc.repo.count_loops(flow.id, [LoopStatus.IN_PROGRESS])))
    return waiting


def list_loops(
    svc: Services,
    flow: FlowDefinition,
    *,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    ascending: bool = False,
    status: LoopStatus | None = None,
    offset: int = 0,
    limit: int | None = None,
    now: datetime | None = None,
) -> list[HumanLoop]:
    """The flow's loops by creation time (newest first unless ``ascending``)."""
    expire_loops(svc, now)
    return svc.repo.list_loops(
        flow.id,
        created_after=created_after,
        created_before=created_before,
        ascending=ascending,
        status=status,
        offset=offset,
        limit=limit,
    )


def stop_loop(svc: Services, name: str, now: datetime | None = None) -> HumanLoop:
    """StopHumanLoop: InProgress → Stopping while a reviewer holds a lease (Stopped once it ends),
    else Stopped. Stopping or Stopped again is a no-op; a Completed or Failed loop is Conflict."""
    now = now or svc.clock.now()
    loop = describe_loop(svc, name, now)
    if loop.status in (LoopStatus.STOPPING, LoopStatus.STOPPED):
        return loop
    held = any(lease.expires_at > now for lease in svc.repo.list_leases(loop.id))
    target = LoopStatus.STOPPING if held else LoopStatus.STOPPED
    done = svc.repo.transition_loop(loop.id, [LoopStatus.IN_PROGRESS], status=target)
    if done is None:
        current = describe_loop(svc, name, now)
        if current.status in (LoopStatus.STOPPING, LoopStatus.STOPPED):
            return current
        raise Conflict(f"human loop {name!r} is {current.status.value}; it cannot be stopped")
    return done


def delete_loop(svc: Services, name: str, now: datetime | None = None) -> HumanLoop:
    """DeleteHumanLoop: only a Stopped, Completed or Failed loop (an open one is Conflict). Its output
    file and any training entry it added stay."""
    loop = describe_loop(svc, name, now)
    if loop.status not in DELETABLE_STATUSES:
        raise Conflict(f"human loop {name!r} is {loop.status.value}; stop it before deleting it")
    if not svc.repo.delete_loop(loop.id, DELETABLE_STATUSES):
        raise Conflict(f"human loop {name!r} changed meanwhile; try again")
    return loop


def loop_answers(svc: Services, loop: HumanLoop | str) -> list[ReviewAnswer]:
    return svc.repo.list_answers(get_loop(svc, loop).id)


def loop_output(svc: Services, loop: HumanLoop | str) -> dict[str, Any] | None:
    """The loop's output document (A2I's shape) once Completed, else None."""
    found = get_loop(svc, loop)
    if found.output_uri is None:
        return None
    bucket, key = s3_uri(found.output_uri)
    doc: dict[str, Any] = json.loads(svc.buckets.get(bucket, key))
    return doc


def get_loop(svc: Services, loop: HumanLoop | str) -> HumanLoop:
    name = loop.name if isinstance(loop, HumanLoop) else loop
    found = svc.repo.find_loop(name)
    if found is None:
        raise NotFound(f"human loop {str(name)[:80]!r} does not exist")
    return found
