"""Notification channels in the console (over core.notifications):

GET  /console/projects/{p}/workflow/notifications[?status=&channel=]
                                        the project's channels, the form to add one, recent deliveries
POST /console/projects/{p}/workflow/notifications/channels
                                        add a webhook (URL, optional secret) or e-mail channel (addresses)
                                        with the event types it wants; a webhook's secret is shown once
POST …/notifications/channels/{c}/enable   enabled=true|false
POST …/notifications/channels/{c}/remove   remove it with its deliveries
GET  …/notifications/deliveries/{id}       one delivery: the event, every attempt"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from visionloop.api.errors import status_for
from visionloop.core import notifications
from visionloop.core.accounts import ReviewerSession
from visionloop.core.entities import Project
from visionloop.core.events import EventType
from visionloop.core.notifications import ChannelKind, DeliveryStatus
from visionloop.core.projects import get_project
from visionloop.errors import VisionloopError
from visionloop.web.auth import Operator, OperatorForm
from visionloop.web.console import console_router
from visionloop.web.console.workflow import pretty, workflow_url
from visionloop.web.pages import render
from visionloop.web.routing import web

router = console_router()
DELIVERIES_SHOWN = 50
EVENT_HELP = {
    EventType.PARAMETER_CHANGED: "a workflow parameter changed",
    EventType.TRAINING_STARTED: "training started",
    EventType.TRAINING_COMPLETED: "training completed",
    EventType.TRAINING_FAILED: "training failed",
    EventType.VERSION_DEPLOYED: "a version was deployed",
    EventType.VERSION_REJECTED: "a new version was rejected",
    EventType.VERSION_ROLLED_BACK: "the serving version was rolled back",
    EventType.DETECTION: "every detection (many; only with detection_events_enabled)",
    EventType.HUMAN_LOOP_CREATED: "a human review loop was created",
    EventType.HUMAN_LOOP_COMPLETED: "a human review loop was completed",
    EventType.IMAGES_ADDED: "images were added to the project",
}
NOTICES = {
    "added": "Channel {channel} was added.",
    "removed": "Channel {channel} was removed.",
    "enabled": "Channel {channel} is on.",
    "disabled": "Channel {channel} is off: it gets no new deliveries.",
}


def _page(
    request: Request,
    session: ReviewerSession,
    project: Project,
    *,
    status_filter: str = "",
    channel_filter: str = "",
    status: int = 200,
    message: str = "",
    notice: str = "",
    form: dict[str, Any] | None = None,
    secret: tuple[str, str] | None = None,
) -> Response:
    svc = web(request).services
    channels = notifications.list_channels(svc, project.name)
    wanted = status_filter if status_filter in DeliveryStatus.__members__.values() else ""
    channel = channel_filter if any(c.name == channel_filter for c in channels) else ""
    deliveries = notifications.list_deliveries(
        svc, project.name, channel=channel or None, status=wanted or None, limit=DELIVERIES_SHOWN
    )
    return render(
        request,
        "console/notifications.html",
        status=status,
        session=session,
        title=f"Notifications · {project.name}",
        project=project,
        channels=channels,
        deliveries=deliveries,
        statuses=[s.value for s in DeliveryStatus],
        status_filter=wanted,
        channel_filter=channel,
        events=[(t.value, EVENT_HELP.get(t, t.value)) for t in EventType],
        default_events={t.value for t in notifications.DEFAULT_EVENTS},
        form=form or {},
        message=message,
        notice=notice,
        secret=secret,
        section="notifications",
    )


def _url(project: str, rest: str = "") -> str:
    return workflow_url(project, "notifications" + rest)


@router.get("/projects/{name}/workflow/notifications")
def notifications_page(
    request: Request,
    name: str,
    session: Operator,
    status: str = "",
    channel: str = "",
    notice: str = "",
    which: str = "",
) -> Response:
    project = get_project(web(request).services, name)
    text = NOTICES.get(notice, "").format(channel=which)
    return _page(request, session, project, status_filter=status, channel_filter=channel, notice=text)


@router.post("/projects/{name}/workflow/notifications/channels")
def add_channel(
    request: Request,
    name: str,
    session: OperatorForm,
    channel: str = Form(""),
    kind: str = Form("webhook"),
    url: str = Form(""),
    addresses: str = Form(""),
    secret: str = Form(""),
    event: list[str] = Form([]),
) -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    form = {"channel": channel, "kind": kind, "url": url, "addresses": addresses, "events": set(event)}
    try:
        webhook = kind == ChannelKind.WEBHOOK.value
        added = notifications.add_channel(
            svc,
            project.name,
            channel.strip(),
            kind,
            url=url.strip() if webhook else None,
            addresses=addresses if not webhook else None,
            events=event,
            secret=secret.strip() or None if webhook else None,
            allow_private=request.app.state.settings.webhook_allow_private,
        )
    except VisionloopError as e:
        return _page(request, session, project, status=status_for(e), message=e.message, form=form)
    if added.kind is ChannelKind.WEBHOOK and added.secret and not secret.strip():
        # the generated secret is shown this once (the receiver needs it to check signatures)
        notice = f"Channel {added.name} was added."
        return _page(request, session, project, notice=notice, secret=(added.name, added.secret))
    return RedirectResponse(_url(project.name, f"?notice=added&which={quote(added.name)}"), status_code=303)


@router.post("/projects/{name}/workflow/notifications/channels/{channel}/enable")
def enable_channel(
    request: Request, name: str, channel: str, session: OperatorForm, enabled: str = Form("")
) -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    on = enabled == "true"
    found = notifications.update_channel(svc, project.name, channel, enabled=on)
    notice = "enabled" if on else "disabled"
    return RedirectResponse(
        _url(project.name, f"?notice={notice}&which={quote(found.name)}"), status_code=303
    )


@router.post("/projects/{name}/workflow/notifications/channels/{channel}/remove")
def remove_channel(request: Request, name: str, channel: str, session: OperatorForm) -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    notifications.remove_channel(svc, project.name, channel)
    return RedirectResponse(_url(project.name, f"?notice=removed&which={quote(channel)}"), status_code=303)


@router.get("/projects/{name}/workflow/notifications/deliveries/{delivery_id}")
def delivery_page(request: Request, name: str, delivery_id: int, session: Operator) -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    delivery = notifications.get_delivery(svc, project.name, delivery_id)
    return render(
        request,
        "console/delivery.html",
        session=session,
        title=f"Delivery {delivery.id} · {project.name}",
        project=project,
        delivery=delivery,
        attempts=notifications.list_attempts(svc, project.name, delivery.id),
        pretty=pretty,
        section="notifications",
    )
