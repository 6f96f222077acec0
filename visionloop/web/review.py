"""The reviewer's pages under /review/ (over core.review):

    GET  /review/                        the projects with items waiting
    GET  /review/queue[?project=P]       the next item, leased to this reviewer (the same one again while
                                         the lease lasts); the done/empty state when there is none
    GET  /review/items/{loop}/image      the image, only to the reviewer holding the item's lease
    POST /review/items/{loop}/answer     a label (or none of the above) and, for detection, boxes
    POST /review/items/{loop}/skip       never show this item to this reviewer again
    POST /review/items/{loop}/release    give the item back to the queue and stop for now

Every page needs a session; every POST its CSRF token. The reviewer id given to core.review is the
account name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from visionloop.core import review
from visionloop.core.entities import Box
from visionloop.core.records.review import NONE_OF_THE_ABOVE, LoopStatus, ReviewItem
from visionloop.errors import Conflict, InvalidInput, NotFound
from visionloop.web.pages import error_page, render
from visionloop.web.routing import PageRoute, web

router = APIRouter(prefix="/review", route_class=PageRoute, include_in_schema=False)

SHORTCUT_KEYS = "123456789"  # the first nine labels; 0 is none of the above
MAX_BOXES = 100
NOTICES = {
    "taken": "Your answer was not recorded: your reservation of that item had expired and it went to "
    "someone else.",
    "closed": "Your answer was not recorded: that item was closed meanwhile (stopped, expired or answered "
    "by others).",
    "skipped": "Skipped: you will not see that item again.",
}


@dataclass(frozen=True)
class WaitingProject:
    name: str
    task: str
    waiting: int


def _queue_url(project: str, done: int = 0, notice: str = "") -> str:
    query = {
        k: v for k, v in (("project", project), ("done", str(done) if done else ""), ("notice", notice)) if v
    }
    return "/review/queue" + (f"?{urlencode(query)}" if query else "")


@router.get("/")
def index(request: Request) -> Response:
    w = web(request)
    session = w.cookies.session(request)
    projects = [WaitingProject(p.name, p.task.value, n) for p, n in review.waiting_counts(w.services)]
    return render(request, "index.html", session=session, title="Review", projects=projects)


@router.get("/queue")
def queue(request: Request, project: str = "", done: int = 0, notice: str = "") -> Response:
    w = web(request)
    session = w.cookies.session(request)
    item = review.next_item(w.services, session.reviewer, project=project or None)
    message = NOTICES.get(notice, "")
    if item is None:
        return render(
            request,
            "empty.html",
            session=session,
            title="Nothing to review",
            project=project,
            done=done,
            notice=message,
        )
    return render(
        request,
        "item.html",
        session=session,
        title=f"Review {item.loop.name}",
        project=project,
        done=done,
        notice=message,
        **_item_view(item),
    )


def _item_view(item: ReviewItem) -> dict[str, Any]:
    loop, flow = item.loop, item.flow
    labels = [c for c in item.choices if c != NONE_OF_THE_ABOVE]
    choices = [
        {"value": c, "key": SHORTCUT_KEYS[i] if i < len(SHORTCUT_KEYS) else ""} for i, c in enumerate(labels)
    ]
    suggested = [
        {"label": p.label, "left": p.box.left, "top": p.box.top, "width": p.box.width, "height": p.box.height}
        for p in loop.predictions
        if p.box is not None and p.label in labels
    ]
    data = {
        "boxes": flow.boxes,
        "suggested": suggested,
        "width": loop.image.width,
        "height": loop.image.height,
    }
    return {
        "item": item,
        "loop": loop,
        "flow": flow,
        "choices": choices,
        "none_label": NONE_OF_THE_ABOVE,
        "guesses": loop.predictions[: review.TOP_GUESSES],
        "data": data,
    }


@router.get("/items/{name}/image")
def image(request: Request, name: str) -> Response:
    w = web(request)
    session = w.cookies.session(request)
    loop = review.held_loop(w.services, name, session.reviewer)
    media = "image/png" if loop.image.format == "PNG" else "image/jpeg"
    return Response(
        review.item_image(w.services, loop),
        media_type=media,
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )


@router.post("/items/{name}/answer")
def answer(
    request: Request,
    name: str,
    csrf_token: str = Form(""),
    label: str = Form(""),
    boxes: str = Form(""),
    project: str = Form(""),
    done: int = Form(0),
) -> Response:
    w = web(request)
    session = w.cookies.session(request)
    w.cookies.check_csrf(request, session, csrf_token)
    if not label:
        raise InvalidInput("choose a label, or none of the above, before submitting")
    parsed = _parse_boxes(boxes)
    try:
        review.submit_answer(w.services, name, session.reviewer, label, parsed)
    except Conflict:
        return RedirectResponse(_queue_url(project, done, _why_not(request, name)), status_code=303)
    return RedirectResponse(_queue_url(project, done + 1), status_code=303)


@router.post("/items/{name}/skip")
def skip(
    request: Request, name: str, csrf_token: str = Form(""), project: str = Form(""), done: int = Form(0)
) -> Response:
    w = web(request)
    session = w.cookies.session(request)
    w.cookies.check_csrf(request, session, csrf_token)
    review.skip_item(w.services, name, session.reviewer)
    return RedirectResponse(_queue_url(project, done, "skipped"), status_code=303)


@router.post("/items/{name}/release")
def release(request: Request, name: str, csrf_token: str = Form("")) -> Response:
    w = web(request)
    session = w.cookies.session(request)
    w.cookies.check_csrf(request, session, csrf_token)
    review.release_item(w.services, name, session.reviewer)
    return RedirectResponse("/review/", status_code=303)


def _why_not(request: Request, name: str) -> str:
    try:
        loop = review.get_loop(web(request).services, name)
    except NotFound:
        return "closed"
    return "taken" if loop.status is LoopStatus.IN_PROGRESS else "closed"


def _parse_boxes(text: str) -> list[Box]:
    """The boxes field: a JSON list of {label, left, top, width, height} in ratios of the image size."""
    if not text.strip():
        return []
    try:
        raw = json.loads(text)
    except ValueError:
        raise InvalidInput("the boxes are not valid JSON") from None
    if not isinstance(raw, list) or len(raw) > MAX_BOXES:
        raise InvalidInput(f"the boxes must be a list of at most {MAX_BOXES}")
    boxes = []
    for b in raw:
        if not isinstance(b, dict) or not isinstance(b.get("label"), str):
            raise InvalidInput("each box needs a label and left, top, width, height")
        values = [b.get(k) for k in ("left", "top", "width", "height")]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise InvalidInput("box coordinates must be numbers")
        boxes.append(Box(b["label"], *(float(v) for v in values)))  # type: ignore[arg-type]
    return boxes


@router.api_route("/{rest:path}", methods=["GET", "POST"])
def not_found(request: Request, rest: str) -> Response:
    return error_page(request, 404, "Not found", "There is no such review page.")
