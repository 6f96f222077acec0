"""Pages for people, served by this server (Jinja2 templates, one stylesheet, a small script; no CDN).

    web/
      sessions.py   signed session cookies and CSRF tokens (the accounts themselves: core.accounts)
      routing.py    the web context on app.state and PageRoute, which renders every failure as a page
      auth.py       who may open what: require_session, require_operator, operator_form (+ CSRF), as
                    the annotated types Session, Operator, OperatorForm
      pages.py      the Jinja2 environment, security headers (CSP 'self' only), error pages
      signin.py     /review/sign-in, /review/sign-out (every account signs in there)
      review.py     /review/: the reviewer's queue (over core.review); operators may use it too
      console/      /console/: the operators' console (projects, datasets, training, ...); see its
                    docstring for how a page module plugs in
      templates/    one template per page, all extending base.html (console pages: console/base.html)
      static/       visionloop.css, review.js, the console's console.css and scripts, vendor/htmx.min.js
                    (served at /static/)

These paths authenticate with the session cookie, not with the API's bearer keys: api/auth.py lets
is_session_path() through, and a new page prefix is added there. Accounts have a role: operators open
everything, reviewers the review pages only (core.accounts.Role)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

from visionloop.core.accounts import Accounts, SignInThrottle
from visionloop.core.services import Services
from visionloop.settings import Settings
from visionloop.web.pages import STATIC
from visionloop.web.routing import Web
from visionloop.web.sessions import SessionCookies, Signer, load_session_secret


def install(app: FastAPI, services: Services, settings: Settings, accounts: Accounts) -> None:
    """Mount the review pages, the console and the static files on ``app``; GET / leads to the console."""
    from visionloop.web import console, review, signin

    cookies = SessionCookies(Signer(load_session_secret(settings)), accounts, settings.secure_cookies)
    app.state.web = Web(services, accounts, cookies, SignInThrottle(accounts.clock))
    app.include_router(signin.router)
    app.include_router(review.router)
    console.install(app)
    app.add_api_route("/", _to_console, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def _to_console() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=303)
