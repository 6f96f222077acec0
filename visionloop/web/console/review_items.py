"""The review items for operators (issue 18): every human loop with its state (pending, leased by whom,
answered, expired, failed, stopped; core.review.states), filterable by state and project.

GET /console/review-items[?project=&state=]   newest first, at most ITEMS_SHOWN"""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from visionloop.api.errors import status_for
from visionloop.core.review import waiting_counts
from visionloop.core.review.states import ItemState, parse_state, review_items
from visionloop.errors import NotFound, VisionloopError
from visionloop.web.auth import Operator
from visionloop.web.console import console_router
from visionloop.web.console.reviewers import sentence
from visionloop.web.pages import render
from visionloop.web.routing import web

router = console_router()
ITEMS_SHOWN = 200
STATE_HELP = {
    ItemState.PENDING: "waiting for a reviewer",
    ItemState.LEASED: "a reviewer has it open",
    ItemState.ANSWERED: "answered",
    ItemState.EXPIRED: "nobody answered in time",
    ItemState.FAILED: "failed",
    ItemState.STOPPED: "stopped",
}


@router.get("/review-items")
def review_items_page(request: Request, session: Operator, project: str = "", state: str = "") -> Response:
    svc = web(request).services
    projects = [p.name for p, _ in waiting_counts(svc)]  # the projects with a review flow
    message, status = "", 200
    try:
        wanted = parse_state(state)
        chosen = project if project in projects else ""
        if project and not chosen:
            raise NotFound(f"project {project[:80]!r} has no review settings")
        rows = review_items(svc, chosen or None, wanted, limit=ITEMS_SHOWN)
    except VisionloopError as e:
        wanted, chosen, rows = None, "", []
        message, status = sentence(e.message), status_for(e)
    return render(
        request,
        "console/review_items.html",
        status=status,
        session=session,
        title="Review items",
        rows=rows,
        projects=projects,
        project_filter=chosen,
        state_filter=wanted.value if wanted else "",
        states=[(s.value, STATE_HELP[s]) for s in ItemState],
        shown=ITEMS_SHOWN,
        message=message,
    )
