"""The review flows in the console, read-only (issue 19): every project's flow definition with its
settings, as the SageMaker API (CreateFlowDefinition, visionloop.sagemaker), the native API or the
project's review settings made it, so an operator sees which flows exist and what they ask of reviewers.

GET /console/flows    every flow: its project (linked to the project's review settings, where they are
                      changed), the reviewers per image, how long a reviewer holds an image and how long
                      an image may wait, the instructions, the label choices, where the answers go, how
                      many images wait; for a flow made over the SageMaker API also its request source,
                      activation conditions, task title, work team and role, as given"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.responses import Response

from visionloop.core.records.review import FlowDefinition
from visionloop.core.review import waiting_counts
from visionloop.core.review.definitions import kept_definition, list_flows
from visionloop.core.services import Services
from visionloop.web.auth import Operator
from visionloop.web.console import console_router
from visionloop.web.pages import render
from visionloop.web.routing import web

router = console_router()


@dataclass(frozen=True)
class FlowRow:
    """A flow as the page shows it."""

    flow: FlowDefinition
    waiting: int  # images waiting for answers (InProgress loops)
    request_source: str  # "" when the flow takes any image (StartHumanLoop, the detection hook)
    conditions: str  # the activation conditions, indented JSON ("" when none)
    task_title: str
    workteam: str
    role: str


def flow_rows(svc: Services) -> list[FlowRow]:
    waiting = {project.name: n for project, n in waiting_counts(svc)}
    rows = []
    for flow in list_flows(svc):
        given = kept_definition(svc, flow) or {}
        activation = (given.get("HumanLoopActivationConfig") or {}).get("HumanLoopActivationConditionsConfig")
        rows.append(
            FlowRow(
                flow=flow,
                waiting=waiting.get(flow.project, 0),
                request_source=(given.get("HumanLoopRequestSource") or {}).get(
                    "AwsManagedHumanLoopRequestSource", ""
                ),
                conditions=_indented(activation.get("HumanLoopActivationConditions")) if activation else "",
                task_title=(given.get("HumanLoopConfig") or {}).get("TaskTitle", ""),
                workteam=(given.get("HumanLoopConfig") or {}).get("WorkteamArn", ""),
                role=given.get("RoleArn", ""),
            )
        )
    return rows


def _indented(text: Any) -> str:
    try:
        return json.dumps(json.loads(str(text)), indent=2)
    except ValueError:
        return str(text)


def duration(seconds: int) -> str:
    """Seconds in the largest unit that shows them whole (10 days, 36 hours, 15 minutes, 45 seconds)."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


@router.get("/flows")
def flows_page(request: Request, session: Operator) -> Response:
    return render(
        request,
        "console/flows.html",
        session=session,
        title="Review flows",
        rows=flow_rows(web(request).services),
        duration=duration,
    )
