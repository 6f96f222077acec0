"""The reviewers' queue: next_item leases an item to one reviewer; skip_item, release_item and
submit_answer give it back; item_image is the image under review, held_loop the loop a reviewer holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from visionloop.core.entities import Box
from visionloop.core.images import load_image
from visionloop.core.projects import get_project
from visionloop.core.records.review import (
    NONE_OF_THE_ABOVE,
    FlowDefinition,
    HumanLoop,
    LoopStatus,
    ReviewItem,
)
from visionloop.core.review.answers import finish_loop
from visionloop.core.review.checks import check_loop_name, check_reviewer
from visionloop.core.review.flows import flow_choices
from visionloop.core.review.loops import expire_loops, get_loop
from visionloop.core.services import Services
from visionloop.errors import Conflict, InvalidInput, NotFound


def item_image(svc: Services, loop: HumanLoop | ReviewItem) -> bytes:
    """The bytes of the image under review."""
    found = loop.loop if isinstance(loop, ReviewItem) else loop
    return load_image(svc.store, found.image.content_hash)


def held_loop(svc: Services, name: str, reviewer: str, now: datetime | None = None) -> HumanLoop:
    """The loop ``name`` when ``reviewer`` holds a live lease on it; NotFound otherwise, whether or not it
    exists (a reviewer sees only the items leased to them)."""
    try:
        loop = svc.repo.find_loop(check_loop_name(name))
    except InvalidInput:
        loop = None
    now = now or svc.clock.now()
    if loop is None or not any(
        lease.reviewer == reviewer and lease.expires_at > now for lease in svc.repo.list_leases(loop.id)
    ):
        raise NotFound("this item is not reserved for you (its reservation may have expired)")
    return loop


def next_item(
    svc: Services, reviewer: str, now: datetime | None = None, *, project: str | None = None
) -> ReviewItem | None:
    """Lease the next item to ``reviewer`` (None: nothing to do, or every flow's daily budget is spent).
    A reviewer holding a live lease gets that item again. Items are ordered by their flow's
    ``queue_order``; one a reviewer answered or skipped never comes back to them; an item needing n
    reviewers is leased to at most n - answers reviewers at once. Atomic: two reviewers never hold the
    same slot."""
    reviewer = check_reviewer(reviewer)
    now = now or svc.clock.now()
    project_id = get_project(svc, project).id if project is not None else None
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    leased = svc.repo.lease_next_loop(reviewer, now, day_start, project_id)
    if leased is None:
        return None
    loop, lease = leased
    flow = svc.repo.get_flow_by_id(loop.flow_id)
    answers = len(svc.repo.list_answers(loop.id))
    return ReviewItem(loop, flow, flow_choices(svc, flow), reviewer, lease.expires_at, answers)


def skip_item(svc: Services, loop: HumanLoop | str, reviewer: str, now: datetime | None = None) -> None:
    """Give the item back; it is never offered to this reviewer again."""
    found = get_loop(svc, loop)
    svc.repo.release_lease(found.id, check_reviewer(reviewer), skip=True)
    expire_loops(svc, now)


def release_item(svc: Services, loop: HumanLoop | str, reviewer: str, now: datetime | None = None) -> None:
    """Give the item back to the queue (this reviewer may get it again)."""
    found = get_loop(svc, loop)
    svc.repo.release_lease(found.id, check_reviewer(reviewer), skip=False)
    expire_loops(svc, now)


def submit_answer(
    svc: Services,
    loop: HumanLoop | str,
    reviewer: str,
    label_or_none: str | None,
    boxes: Sequence[Box] | None = None,
    now: datetime | None = None,
) -> HumanLoop:
    """Record ``reviewer``'s answer to a loop they lease: a label among the flow's choices, or None /
    NONE_OF_THE_ABOVE; ``boxes`` (ratios, labelled with choices) only for flows with boxes. When the
    loop has its answers it is Completed (see core.review's docstring). Conflict when the reviewer holds
    no lease on it, the lease expired and another reviewer took the item, or the loop is no longer
    InProgress. Returns the loop as it is now."""
    reviewer = check_reviewer(reviewer)
    now = now or svc.clock.now()
    found = get_loop(svc, loop)
    if found.status is LoopStatus.STOPPING:  # the answer comes too late: the loop can now be Stopped
        svc.repo.release_lease(found.id, reviewer, skip=False)
        expire_loops(svc, now)
        raise Conflict(
            f"human loop {found.name!r} was stopped; the answer is not recorded", status="Stopping"
        )
    flow = svc.repo.get_flow_by_id(found.flow_id)
    choices = flow_choices(svc, flow)
    label = None if label_or_none in (None, NONE_OF_THE_ABOVE) else label_or_none
    if label is not None and label not in choices:
        raise InvalidInput(f"{str(label)[:80]!r} is not one of the choices: {', '.join(choices)}")
    checked = _check_boxes(flow, choices, boxes or ())
    if checked and label is None:
        raise InvalidInput("an answer of none of the above has no boxes")
    answers = svc.repo.record_answer(found.id, reviewer, label, checked, now)
    if len(answers) < found.answers_needed:
        return svc.repo.get_loop_by_id(found.id)
    return finish_loop(svc, flow, found, answers, now)


def _check_boxes(flow: FlowDefinition, choices: Sequence[str], boxes: Sequence[Box]) -> tuple[Box, ...]:
    if boxes and not flow.boxes:
        raise InvalidInput("this project's reviewers choose labels; boxes are for object-detection projects")
    for b in boxes:
        if b.label not in choices or b.label == NONE_OF_THE_ABOVE:
            raise InvalidInput(f"box label {b.label[:80]!r} is not one of the choices")
        values = (b.left, b.top, b.width, b.height)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise InvalidInput("box coordinates must be numbers")
        if b.left < 0 or b.top < 0 or b.width <= 0 or b.height <= 0:
            raise InvalidInput("a box needs left, top ≥ 0 and a positive width and height (ratios)")
        if b.left + b.width > 1.0001 or b.top + b.height > 1.0001:
            raise InvalidInput("a box must lie inside the image (ratios of its size, at most 1)")
    return tuple(boxes)
