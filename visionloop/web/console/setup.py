"""The first run in the browser: creating the first operator with a one-time setup link (issue 18).

While no operator exists, ``visionloop serve`` prints a link such as Jupyter's token URL:

    GET  /console/setup?token=…   the form: name, password twice (the rules of core.accounts)
    POST /console/setup           creates the operator, spends the link, signs the browser in and goes
                                  to the console

Whoever reads the server's output holds the token, so only they can create the first operator: without
the token (or with a wrong one) the answer is 403 with a page that says where to look. The server keeps
only the token's SHA-256, in memory (SetupLink, on ``app.state``): nothing on disk or in the database
can be replayed, and each server start prints a new link. Once an operator exists, made here or by
``visionloop user add``, the link is dead (410). The token in the form also does the CSRF check's work:
another site cannot post the form without knowing it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from starlette.responses import RedirectResponse, Response

from visionloop.core.accounts import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    Role,
    add_reviewer,
    has_operator,
    start_session,
)
from visionloop.errors import AlreadyExists, InvalidInput
from visionloop.web.auth import FIRST_OPERATOR
from visionloop.web.console import PREFIX, console_router
from visionloop.web.console.reviewers import sentence
from visionloop.web.pages import render
from visionloop.web.routing import PageError, web

router = console_router()
PATH = f"{PREFIX}/setup"
WELCOME = "welcome"  # the console's notice after the first operator signed in


class SetupLink:
    """The token of the one-time setup link, kept as its SHA-256 only. ``lock`` makes checking that no
    operator exists and creating one a single step, so two forms posted at once create one operator."""

    def __init__(self) -> None:
        self._digest: bytes | None = None
        self.lock = threading.Lock()

    def issue(self) -> str:
        """A new token (the previous one stops working)."""
        token = secrets.token_urlsafe(32)
        self._digest = hashlib.sha256(token.encode()).digest()
        return token

    def matches(self, token: str) -> bool:
        if self._digest is None or not token:
            return False
        given = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        return hmac.compare_digest(given, self._digest)

    def spend(self) -> None:
        self._digest = None


def setup_link(app: FastAPI) -> SetupLink:
    """The app's setup link (made on first use)."""
    link: SetupLink | None = getattr(app.state, "setup_link", None)
    if link is None:
        link = app.state.setup_link = SetupLink()
    return link


def issue_setup_link(app: FastAPI) -> str | None:
    """The path with a new token to create the first operator, or None when an operator exists."""
    if has_operator(app.state.web.accounts):
        return None
    return f"{PATH}?token={setup_link(app).issue()}"


class SetupRefused(PageError):
    status = 403
    title = "Setup link needed"


class SetupDone(PageError):
    status = 410
    title = "Setup is done"


def _check(request: Request, token: str) -> SetupLink:
    """The link, when ``token`` opens it; a page saying why not otherwise."""
    if has_operator(web(request).accounts):
        raise SetupDone(
            "An operator exists, so this setup link no longer works. Sign in with that account; other "
            "accounts are made by an operator (Reviewers page, or “visionloop user add”).",
            back="/review/sign-in?next=/console/",
            back_text="Sign in",
        )
    link = setup_link(request.app)
    if not link.matches(token):
        raise SetupRefused(
            "Creating the first operator needs the one-time setup link that the server printed when it "
            "started (look at the output of “make serve” or “visionloop serve”: the line “first run: "
            "create the first operator at …”). Each start prints a new link; the old ones stop working.",
            command=FIRST_OPERATOR,
            back="/console/",
            back_text="Try again",
        )
    return link


def _form(request: Request, token: str, status: int = 200, message: str = "", name: str = "") -> Response:
    context: dict[str, Any] = {
        "title": "Create the first operator",
        "token": token,
        "name": name,
        "message": message,
        "min_password": MIN_PASSWORD,
        "max_password": MAX_PASSWORD,
    }
    return render(request, "console/setup.html", status=status, **context)


@router.get("/setup")
def setup_page(request: Request, token: str = "") -> Response:
    _check(request, token)
    return _form(request, token)


@router.post("/setup")
def create_first_operator(
    request: Request,
    token: str = Form(""),
    name: str = Form(""),
    password: str = Form(""),
    password_again: str = Form(""),
) -> Response:
    w = web(request)
    with _check(request, token).lock:
        link = _check(request, token)  # again under the lock: another form may have won meanwhile
        if password != password_again:
            return _form(request, token, 400, "The two passwords differ: type the same one twice.", name)
        try:
            operator = add_reviewer(w.accounts, name, password, Role.OPERATOR)
        except InvalidInput as e:
            return _form(request, token, 400, sentence(e.message), name)
        except AlreadyExists as e:  # a reviewer with that name was made from the command line
            return _form(request, token, 409, sentence(e.message), name)
        link.spend()
    session_token, _ = start_session(w.accounts, operator)
    target = f"{PREFIX}/projects?notice={WELCOME}&name={quote(operator.name, safe='')}"
    response = RedirectResponse(target, status_code=303)
    w.cookies.set_session(request, response, session_token)
    return response
