"""Native REST: a project's notification channels and their deliveries (core.notifications)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, StrictBool

from visionloop.api.deps import RowId, ServicesDep
from visionloop.core import notifications

router = APIRouter(tags=["workflow"])


class ChannelIn(BaseModel):
    name: str = Field(description="1-64 of a-z, 0-9, '_' and '-'")
    kind: str = Field(description="webhook or email")
    url: str | None = Field(default=None, description="webhook: the http(s) URL events are POSTed to")
    addresses: list[str] | None = Field(default=None, description="email: the recipients")
    events: list[str] | None = Field(
        default=None, description="Event types wanted; default all but detection"
    )
    secret: str | None = Field(
        default=None, description="webhook: the HMAC-SHA256 key (16-256 characters); default generated"
    )
    enabled: StrictBool = True


class ChannelPatch(BaseModel):
    enabled: StrictBool | None = None
    events: list[str] | None = None


@router.get("/projects/{project}/channels")
def list_channels(project: str, svc: ServicesDep) -> dict[str, Any]:
    return {"channels": [c.to_dict() for c in notifications.list_channels(svc, project)]}


@router.post("/projects/{project}/channels", status_code=201)
def add_channel(project: str, body: ChannelIn, svc: ServicesDep, request: Request) -> dict[str, Any]:
    """The answer carries the webhook's ``secret``: the only time it is shown."""
    channel = notifications.add_channel(
        svc,
        project,
        body.name,
        body.kind,
        url=body.url,
        addresses=body.addresses,
        events=body.events,
        secret=body.secret,
        enabled=body.enabled,
        allow_private=request.app.state.settings.webhook_allow_private,
    )
    return channel.to_dict(with_secret=True)


@router.get("/projects/{project}/channels/{name}")
def get_channel(project: str, name: str, svc: ServicesDep) -> dict[str, Any]:
    return notifications.get_channel(svc, project, name).to_dict()


@router.patch("/projects/{project}/channels/{name}")
def update_channel(project: str, name: str, body: ChannelPatch, svc: ServicesDep) -> dict[str, Any]:
    changed = notifications.update_channel(svc, project, name, enabled=body.enabled, events=body.events)
    return changed.to_dict()


@router.delete("/projects/{project}/channels/{name}", status_code=204)
def remove_channel(project: str, name: str, svc: ServicesDep) -> Response:
    notifications.remove_channel(svc, project, name)
    return Response(status_code=204)


@router.get("/projects/{project}/deliveries")
def list_deliveries(
    project: str,
    svc: ServicesDep,
    channel: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=notifications.MAX_LIST)] = 100,
) -> dict[str, Any]:
    found = notifications.list_deliveries(svc, project, channel=channel or None, status=status, limit=limit)
    return {"deliveries": [d.to_dict() for d in found]}


@router.get("/projects/{project}/deliveries/{delivery_id}")
def get_delivery(project: str, delivery_id: RowId, svc: ServicesDep) -> dict[str, Any]:
    delivery = notifications.get_delivery(svc, project, delivery_id)
    attempts = notifications.list_attempts(svc, project, delivery_id)
    return {**delivery.to_dict(), "attempts": [a.to_dict() for a in attempts]}
