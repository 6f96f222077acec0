"""A project's human-review settings in the console (issue 18): what the API's PUT …/flow and
``visionloop review flow`` set, for the three things a person setting up review decides: the
instructions reviewers read, how many reviewers answer each image, and how long an image may wait.

GET  /console/projects/{p}/review    the settings (the defaults when none are saved yet), how many items
                                     wait, links to the items and to the people who review
POST /console/projects/{p}/review    save them (core.review.put_flow checks every value); the other
                                     settings (label choices, the detection rule, queue order, budget)
                                     are kept as they are"""

from __future__ import annotations

import math
from dataclasses import replace

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from visionloop.api.errors import status_for
from visionloop.core.accounts import ReviewerSession
from visionloop.core.entities import Project
from visionloop.core.projects import get_project
from visionloop.core.records.review import FlowSettings
from visionloop.core.review import find_flow, put_flow, waiting_counts
from visionloop.core.review.checks import MAX_REVIEWERS
from visionloop.errors import InvalidInput, VisionloopError
from visionloop.web.auth import Operator, OperatorForm
from visionloop.web.console import PREFIX, Link, console_router
from visionloop.web.console.reviewers import sentence
from visionloop.web.pages import render
from visionloop.web.routing import web

router = console_router()
PROJECT_TABS = (Link("Review", f"{PREFIX}/projects/{{project}}/review", 70),)
UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


def time_limit_parts(seconds: int) -> tuple[int | float, str]:
    """A time limit in the largest unit that shows it whole (10 days, 36 hours, 90 minutes)."""
    for unit in ("days", "hours"):
        if seconds % UNITS[unit] == 0:
            return seconds // UNITS[unit], unit
    return round(seconds / 60, 2), "minutes"


def _url(project: str) -> str:
    return f"{PREFIX}/projects/{project}/review"


def _page(
    request: Request,
    session: ReviewerSession,
    project: Project,
    *,
    status: int = 200,
    message: str = "",
    notice: str = "",
    typed: dict[str, str] | None = None,
) -> Response:
    svc = web(request).services
    flow = find_flow(svc, project.name)
    settings = flow.settings if flow else FlowSettings()
    amount, unit = time_limit_parts(settings.time_limit_seconds)
    shown = {
        "instructions": settings.instructions,
        "reviewers_per_item": str(settings.reviewers_per_item),
        "time_limit": f"{amount:g}",
        "time_unit": unit,
        **(typed or {}),
    }
    waiting = {p.name: n for p, n in waiting_counts(svc)}.get(project.name, 0)
    return render(
        request,
        "console/review_settings.html",
        status=status,
        session=session,
        title=f"Review · {project.name}",
        project=project,
        flow=flow,
        settings=settings,
        form=shown,
        units=list(UNITS),
        max_reviewers=MAX_REVIEWERS,
        waiting=waiting,
        message=message,
        notice=notice,
    )


@router.get("/projects/{name}/review")
def review_settings_page(request: Request, name: str, session: Operator, notice: str = "") -> Response:
    project = get_project(web(request).services, name)
    return _page(request, session, project, notice="The review settings were saved." if notice else "")


def _whole(value: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise InvalidInput(f"{what} must be a whole number, not {value[:20]!r}") from None


def _reviewers(value: str) -> int:
    """The form's number in its own words (core.review.put_flow checks it again, in the API's)."""
    n = _whole(value, "reviewers per image")
    if not 1 <= n <= MAX_REVIEWERS:
        raise InvalidInput(f"reviewers per image must be between 1 and {MAX_REVIEWERS}, not {n}")
    return n


def _seconds(amount: str, unit: str) -> int:
    if unit not in UNITS:
        raise InvalidInput(f"unknown time unit {unit[:20]!r}: choose minutes, hours or days")
    try:
        value = float(amount.strip())
    except ValueError:
        raise InvalidInput(f"the time limit must be a number, not {amount[:20]!r}") from None
    if not math.isfinite(value) or not math.isfinite(value * UNITS[unit]):
        raise InvalidInput(f"the time limit must be a finite number, not {amount[:20]!r}")
    return round(value * UNITS[unit])


@router.post("/projects/{name}/review")
def save_review_settings(
    request: Request,
    name: str,
    session: OperatorForm,
    instructions: str = Form(""),
    reviewers_per_item: str = Form(""),
    time_limit: str = Form(""),
    time_unit: str = Form("days"),
) -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    typed = {
        "instructions": instructions,
        "reviewers_per_item": reviewers_per_item,
        "time_limit": time_limit,
        "time_unit": time_unit,
    }
    flow = find_flow(svc, project.name)
    config = request.app.state.settings
    try:
        seconds = _seconds(time_limit, time_unit)
        if not 60 <= seconds <= 365 * 86400:
            raise InvalidInput("the time limit must be between 1 minute and 365 days")
        changed = replace(
            flow.settings if flow else FlowSettings(),
            instructions=instructions.replace("\r\n", "\n").strip(),
            reviewers_per_item=_reviewers(reviewers_per_item),
            time_limit_seconds=seconds,
        )
        put_flow(svc, project.name, changed, region=config.region, account=config.account_id)
    except VisionloopError as e:
        message = sentence(e.message)
        return _page(request, session, project, status=status_for(e), message=message, typed=typed)
    return RedirectResponse(f"{_url(project.name)}?notice=saved", status_code=303)
