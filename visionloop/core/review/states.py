"""Review items as an operator follows them: each human loop with a state a person reads (issue 18).

A loop's A2I status says InProgress both for an item nobody has opened and for one a reviewer is
answering; an operator wants to tell them apart, and to see who holds it. The states:

    pending    InProgress, no live lease: waiting in the queue
    leased     InProgress, held by reviewers now (``leased_by``: their names, with live leases only)
    answered   Completed: its answers are in (``human_answer``)
    expired    Failed with FailureCode "Expired": nobody answered within the flow's time limit
    failed     Failed for another reason
    stopped    Stopping or Stopped (StopHumanLoop)

review_items(svc, project=None, state=None, limit=…) lists them newest first, across the projects
that have a review flow, or one project."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from visionloop.core.projects import get_project, list_projects
from visionloop.core.records.review import FailureCode, FlowDefinition, HumanLoop, LoopStatus
from visionloop.core.review.loops import expire_loops
from visionloop.core.services import Services
from visionloop.errors import InvalidInput


class ItemState(StrEnum):
    PENDING = "pending"
    LEASED = "leased"
    ANSWERED = "answered"
    EXPIRED = "expired"
    FAILED = "failed"
    STOPPED = "stopped"


# the loop statuses each state is read from
_STATUSES = {
    ItemState.PENDING: (LoopStatus.IN_PROGRESS,),
    ItemState.LEASED: (LoopStatus.IN_PROGRESS,),
    ItemState.ANSWERED: (LoopStatus.COMPLETED,),
    ItemState.EXPIRED: (LoopStatus.FAILED,),
    ItemState.FAILED: (LoopStatus.FAILED,),
    ItemState.STOPPED: (LoopStatus.STOPPING, LoopStatus.STOPPED),
}


@dataclass(frozen=True)
class ReviewItemRow:
    """One loop with its state, who holds it now and how many answers it has of how many needed."""

    project: str
    loop: HumanLoop
    state: ItemState
    leased_by: tuple[str, ...]
    answers: int


def parse_state(value: str) -> ItemState | None:
    """The state a filter names ("" or "all": None), or InvalidInput listing the states."""
    if value in ("", "all"):
        return None
    try:
        return ItemState(value.strip().lower())
    except ValueError:
        names = ", ".join(s.value for s in ItemState)
        raise InvalidInput(f"unknown review item state {value[:40]!r}: choose {names}") from None


def item_state(loop: HumanLoop, leased_by: tuple[str, ...]) -> ItemState:
    if loop.status is LoopStatus.IN_PROGRESS:
        return ItemState.LEASED if leased_by else ItemState.PENDING
    if loop.status is LoopStatus.COMPLETED:
        return ItemState.ANSWERED
    if loop.status is LoopStatus.FAILED:
        return ItemState.EXPIRED if loop.failure_code == FailureCode.EXPIRED.value else ItemState.FAILED
    return ItemState.STOPPED


def review_items(
    svc: Services,
    project: str | None = None,
    state: ItemState | None = None,
    limit: int = 100,
    now: datetime | None = None,
) -> list[ReviewItemRow]:
    """The newest ``limit`` loops of ``project`` (or of every project with a flow) in ``state`` (or any),
    newest first. Loops past their time limit are closed first, so none shows as pending after it
    expired."""
    now = now or svc.clock.now()
    expire_loops(svc, now)
    projects = [get_project(svc, project)] if project else list_projects(svc)
    rows: list[ReviewItemRow] = []
    for p in projects:
        flow = svc.repo.find_flow(p.id)
        if flow is not None:
            rows.extend(_flow_rows(svc, flow, state, limit, now))
    rows.sort(key=lambda r: (r.loop.created_at, r.loop.id), reverse=True)
    return rows[:limit]


def _flow_rows(
    svc: Services, flow: FlowDefinition, state: ItemState | None, limit: int, now: datetime
) -> list[ReviewItemRow]:
    statuses: tuple[LoopStatus | None, ...] = _STATUSES[state] if state else (None,)
    # pending and leased share a status: read all open loops of the flow to tell them apart
    page = None if state in (ItemState.PENDING, ItemState.LEASED) else limit
    rows = []
    for status in statuses:
        for loop in svc.repo.list_loops(flow.id, status=status, limit=page):
            holders = tuple(
                sorted({lease.reviewer for lease in svc.repo.list_leases(loop.id) if lease.expires_at > now})
            )
            found = item_state(loop, holders)
            if state is None or found is state:
                answers = len(svc.repo.list_answers(loop.id))
                rows.append(ReviewItemRow(flow.project, loop, found, holders, answers))
    return rows
