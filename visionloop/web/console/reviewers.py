"""Accounts in the console (issue 18): operators make and remove the accounts of the people who review
images, as ``visionloop user``/``reviewer`` does on the command line, over the same use cases
(core.accounts).

GET  /console/reviewers                       the accounts with their roles, the form to add one
POST /console/reviewers                       add: name, role, password typed twice
POST /console/reviewers/{name}/password       a new password (typed twice); the account's sessions end
POST /console/reviewers/{name}/remove         remove the account; its sessions end at once (answers it
                                              gave stay with their loops). An operator cannot remove
                                              the account they are signed in with.

Accounts have no "disabled" state: removing one is how access is taken away (a person can be added
again under the same name later)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from visionloop.api.errors import status_for
from visionloop.core.accounts import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    ReviewerSession,
    Role,
    add_reviewer,
    change_password,
    list_reviewers,
    normalize_name,
    remove_reviewer,
)
from visionloop.errors import Conflict, VisionloopError
from visionloop.web.auth import Operator, OperatorForm
from visionloop.web.console import PREFIX, Link, console_router
from visionloop.web.pages import render
from visionloop.web.routing import web

router = console_router()
PAGES = (f"{PREFIX}/reviewers", f"{PREFIX}/review-items", f"{PREFIX}/flows")  # flows.py: read-only
NAV = (Link("Reviewers", f"{PREFIX}/reviewers", 85, PAGES),)
NOTICES = {
    "added": "{name} can sign in now, at /review/sign-in, with the password you chose.",
    "password": "{name} has a new password; their signed-in sessions have ended.",
    "removed": "{name} was removed and signed out; the answers they gave stay.",
}
ROLES = (
    (Role.REVIEWER.value, "Reviewer", "answers review items at /review/"),
    (Role.OPERATOR.value, "Operator", "this console too"),
)


def sentence(message: str) -> str:
    """A use case's error message ("reviewer name … is not valid") as a sentence on a page."""
    return f"{message[:1].upper()}{message[1:]}."


def _page(
    request: Request,
    session: ReviewerSession,
    *,
    status: int = 200,
    notice: str = "",
    message: str = "",
    form: dict[str, Any] | None = None,
) -> Response:
    return render(
        request,
        "console/reviewers.html",
        status=status,
        session=session,
        title="Reviewers",
        accounts=list_reviewers(web(request).accounts),
        roles=ROLES,
        form=form or {"role": Role.REVIEWER.value},
        notice=notice,
        message=message,
        min_password=MIN_PASSWORD,
        max_password=MAX_PASSWORD,
    )


def _done(notice: str, name: str) -> Response:
    return RedirectResponse(
        f"{PREFIX}/reviewers?notice={notice}&name={quote(name, safe='')}", status_code=303
    )


@router.get("/reviewers")
def reviewers_page(request: Request, session: Operator, notice: str = "", name: str = "") -> Response:
    return _page(request, session, notice=NOTICES.get(notice, "").format(name=name))


@router.post("/reviewers")
def add_account(
    request: Request,
    session: OperatorForm,
    name: str = Form(""),
    role: str = Form(Role.REVIEWER.value),
    password: str = Form(""),
    password_again: str = Form(""),
) -> Response:
    form = {"name": name, "role": role}
    if password != password_again:
        return _page(request, session, status=400, message="The two passwords differ.", form=form)
    try:
        account = add_reviewer(web(request).accounts, name, password, role)
    except VisionloopError as e:
        return _page(request, session, status=status_for(e), message=sentence(e.message), form=form)
    return _done("added", account.name)


@router.post("/reviewers/{name}/password")
def set_password(
    request: Request,
    name: str,
    session: OperatorForm,
    password: str = Form(""),
    password_again: str = Form(""),
) -> Response:
    if password != password_again:
        return _page(request, session, status=400, message=f"The two passwords for {name} differ.")
    try:
        account = change_password(web(request).accounts, name, password)
    except VisionloopError as e:
        return _page(request, session, status=status_for(e), message=sentence(e.message))
    return _done("password", account.name)


@router.post("/reviewers/{name}/remove")
def remove_account(request: Request, name: str, session: OperatorForm) -> Response:
    try:
        if normalize_name(name) == session.reviewer:
            raise Conflict("you cannot remove the account you are signed in with")
        account = remove_reviewer(web(request).accounts, name)
    except VisionloopError as e:
        return _page(request, session, status=status_for(e), message=sentence(e.message))
    return _done("removed", account.name)
