"""Sign-in and sign-out pages, for reviewers and operators alike (one account table, two roles). After
signing in, an operator goes to the page asked for or the console, a reviewer to the review pages (never to
a console page, which would only refuse them)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from visionloop.core.accounts import end_session, has_accounts, has_operator, purge_sessions, sign_in
from visionloop.errors import TooManyAttempts, Unauthenticated
from visionloop.web.auth import FIRST_OPERATOR
from visionloop.web.pages import render
from visionloop.web.routing import SIGN_IN, PageRoute, safe_next, web
from visionloop.web.sessions import CsrfRejected, SignInRequired

router = APIRouter(prefix="/review", route_class=PageRoute, include_in_schema=False)


def _form(request: Request, status: int, message: str = "", name: str = "", next: str = "") -> Response:
    w = web(request)
    cookies = w.cookies
    token = cookies.sign_in_csrf(request)
    console = next.startswith("/console/")
    # no operator yet: say how the first one is made (to a reviewer only when nobody has an account)
    needed = not has_operator(w.accounts) and (console or not has_accounts(w.accounts))
    page = render(
        request,
        "sign_in.html",
        status=status,
        csrf_token=token,
        message=message,
        name=name,
        next=safe_next(next, ""),
        console=console,
        first_operator=FIRST_OPERATOR if needed else "",
    )
    cookies.set_sign_in_csrf(request, page, token)
    return page


def _landing(operator: bool, next: str) -> str:
    """Where a signed-in browser goes: the page asked for, or its home; a reviewer never to the console."""
    home = "/console/" if operator else "/review/"
    target = safe_next(next, home)
    return home if not operator and target.startswith("/console/") else target


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "", ended: str = "") -> Response:
    w = web(request)
    try:
        session = w.cookies.session(request)
    except SignInRequired:
        message = "Your session has ended: sign in again." if ended else ""
        return _form(request, 200, message, next=next)
    return RedirectResponse(_landing(session.is_operator, next), status_code=303)


@router.post("/sign-in")
def sign_in_submit(
    request: Request,
    name: str = Form(""),
    password: str = Form(""),
    csrf_token: str = Form(""),
    next: str = Form(""),
) -> Response:
    w = web(request)
    try:
        w.cookies.check_sign_in_csrf(request, csrf_token)
    except CsrfRejected:
        return _form(request, 403, "The sign-in form had expired: sign in again.", name, next)
    address = request.client.host if request.client else "unknown"
    try:
        token, session = sign_in(w.accounts, w.throttle, name, password, address)
    except TooManyAttempts as e:
        page = _form(request, 429, e.message, name, next)
        page.headers["Retry-After"] = str(e.details.get("retry_after", 60))
        return page
    except Unauthenticated as e:
        return _form(request, 401, f"Sign-in failed: {e.message}.", name, next)
    old = w.cookies.token(request)
    if old:
        end_session(w.accounts, old)
    purge_sessions(w.accounts)
    response = RedirectResponse(_landing(session.is_operator, next), status_code=303)
    w.cookies.set_session(request, response, token)
    response.delete_cookie("vl_csrf", path="/review/")
    return response


@router.post("/sign-out")
def sign_out(request: Request, csrf_token: str = Form("")) -> Response:
    w = web(request)
    session = w.cookies.session(request)
    w.cookies.check_csrf(request, session, csrf_token)
    token = w.cookies.token(request)
    if token:
        end_session(w.accounts, token)
    response = RedirectResponse(SIGN_IN, status_code=303)
    w.cookies.clear_session(request, response)
    return response
