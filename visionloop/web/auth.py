"""Who may open which page, as FastAPI dependencies over the session cookie (web.sessions) and the
account's role (core.accounts.Role):

    require_session     any signed-in account (the review pages)
    require_operator    an operator: every /console/ page. No session → the sign-in page (a form post or
                        a script gets 401); a reviewer → 403 "Operators only"; no operator yet → a 403
                        page pointing to the one-time setup link the server printed (console/setup.py)
                        and to the command line
    operator_form       require_operator plus the CSRF token of a POST (form field ``csrf_token`` or
                        header ``X-CSRF-Token``); refused with 403 "Form refused" before anything is done

Use them as annotated types, e.g. ``def page(request: Request, session: Operator) -> Response`` and
``def change(request: Request, session: OperatorForm, ...) -> Response`` in a router whose route_class is
web.routing.PageRoute, which turns these refusals into pages. There is no unauthenticated console, not
even on loopback: another site's page in the operator's browser could otherwise drive it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request

from visionloop.core.accounts import ReviewerSession, has_operator
from visionloop.web.routing import PageError, web
from visionloop.web.sessions import SignInRequired

FIRST_OPERATOR = "visionloop user add NAME --role operator"


class OperatorOnly(PageError):
    status = 403
    title = "Operators only"


class NoAccounts(PageError):
    status = 403
    title = "Create the first operator"


def require_session(request: Request) -> ReviewerSession:
    """The request's live session, whatever its role; SignInRequired otherwise."""
    session = web(request).cookies.session(request)
    request.state.session = session  # error pages keep the top bar
    return session


def require_operator(request: Request) -> ReviewerSession:
    w = web(request)
    try:
        session = require_session(request)
    except SignInRequired:
        if not has_operator(w.accounts):
            raise NoAccounts(
                "Nobody can sign in to the console yet: there is no account with the operator role. "
                "Open the one-time setup link the server printed when it started (in the output of "
                "“make serve” or “visionloop serve”: “first run: create the first operator at …”), or "
                f"on the server run “{FIRST_OPERATOR}” (it asks for a password), then sign in here.",
                command=FIRST_OPERATOR,
                back="/console/",
                back_text="Done: sign in",
            ) from None
        raise
    if not session.is_operator:
        raise OperatorOnly(
            f"This page is for operators; {session.reviewer} is a reviewer and sees the review pages only. "
            "An operator can change that with “visionloop user role "
            f"{session.reviewer} operator”.",
            back="/review/",
            back_text="Go to the review pages",
        )
    return session


Session = Annotated[ReviewerSession, Depends(require_session)]
Operator = Annotated[ReviewerSession, Depends(require_operator)]


def operator_form(request: Request, session: Operator, csrf_token: str = Form("")) -> ReviewerSession:
    web(request).cookies.check_csrf(request, session, csrf_token)
    return session


OperatorForm = Annotated[ReviewerSession, Depends(operator_form)]
