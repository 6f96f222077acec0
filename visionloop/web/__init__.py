"""Pages for people, served by this server (Jinja2 templates, one stylesheet, a small script; no CDN).

    web/
      sessions.py   signed session cookies and CSRF tokens (the accounts themselves: core.accounts)
      routing.py    the web context on app.state and PageRoute, which renders every failure as a page
      pages.py      the Jinja2 environment, security headers (CSP 'self' only), error pages
      signin.py     /review/sign-in, /review/sign-out
      review.py     /review/: the reviewer's queue (over core.review)
      templates/    one template per page, all extending base.html
      static/       visionloop.css, review.js (served at /static/)

These paths authenticate with the session cookie, not with the API's bearer keys: api/auth.py lets
is_session_path() through, and a new page prefix is added there. The operators' console (issue 8) is
meant to sit beside review.py with its own router, templates and a role check, on the same sessions."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from visionloop.core.accounts import Accounts, SignInThrottle
from visionloop.core.services import Services
from visionloop.settings import Settings
from visionloop.web.pages import STATIC
from visionloop.web.routing import Web
from visionloop.web.sessions import SessionCookies, Signer, load_session_secret


def install(app: FastAPI, services: Services, settings: Settings, accounts: Accounts) -> None:
    """Mount the reviewer pages and the static files on ``app``."""
    from visionloop.web import review, signin

    cookies = SessionCookies(Signer(load_session_secret(settings)), accounts, settings.secure_cookies)
    app.state.web = Web(services, accounts, cookies, SignInThrottle(accounts.clock))
    app.include_router(signin.router)
    app.include_router(review.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
