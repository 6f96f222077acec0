"""Native REST: a project's parameters (core.parameters), their history, and its events (core.events)."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from visionloop.api.deps import ServicesDep
from visionloop.core import events, parameters
from visionloop.errors import InvalidInput

router = APIRouter(tags=["workflow"])


def changed_by(request: Request) -> str:
    """Who changes something through the API: ``api:<access key id>`` when the request carries one of the
    server's keys (the server checked it already), else ``api``."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        given = token.strip().encode("utf-8", "surrogateescape")
        for key in request.app.state.settings.access_keys:
            if hmac.compare_digest(given, key.secret.encode()):
                return f"api:{key.id}"
    return "api"


@router.get("/projects/{project}/parameters")
def get_parameters(project: str, svc: ServicesDep) -> dict[str, Any]:
    return {"project": project, "parameters": parameters.get_parameters(svc, project).to_dict()}


@router.patch("/projects/{project}/parameters")
def patch_parameters(
    project: str,
    svc: ServicesDep,
    request: Request,
    changes: Annotated[dict[str, Any], Body(description="The keys to change, with their new values")],
) -> dict[str, Any]:
    done = parameters.update_parameters(svc, project, changes, changed_by=changed_by(request))
    return {
        "project": project,
        "parameters": done.parameters.to_dict(),
        "changes": [c.to_dict() for c in done.changes],
    }


@router.get("/projects/{project}/parameters/history")
def parameter_history(
    project: str,
    svc: ServicesDep,
    key: str | None = None,
    offset: Annotated[int, Query(ge=0, lt=2**63)] = 0,
    limit: Annotated[int, Query(ge=1, le=parameters.MAX_HISTORY)] = 100,
) -> dict[str, Any]:
    found = parameters.parameter_history(svc, project, key=key or None, offset=offset, limit=limit)
    return {"project": project, "changes": [c.to_dict() for c in found]}


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 time (a time without zone is UTC); InvalidInput names the parameter."""
    if value is None or value == "":
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 time such as 2026-03-01T09:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@router.get("/projects/{project}/events")
def list_events(
    project: str,
    svc: ServicesDep,
    type: str | None = None,
    since: Annotated[str | None, Query(description="ISO 8601 time: events at or after it")] = None,
    after_id: Annotated[
        int | None, Query(ge=0, lt=2**63, description="Events with a greater id (paging)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=events.MAX_LIST)] = 100,
) -> dict[str, Any]:
    found = events.list_events(
        svc, project, type=type or None, since=parse_time(since, "since"), after_id=after_id, limit=limit
    )
    return {"project": project, "events": [e.to_dict() for e in found]}
