"""What every page route shares: the web context on app.state, and a route class that turns every
failure into an HTML page (or a redirect to sign-in) instead of the API's JSON envelope."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from visionloop.api.errors import status_for
from visionloop.core.accounts import Accounts, SignInThrottle
from visionloop.core.services import Services
from visionloop.errors import VisionloopError
from visionloop.web.pages import error_page
from visionloop.web.sessions import CsrfRejected, SessionCookies, SignInRequired

log = logging.getLogger("visionloop.web")

SIGN_IN = "/review/sign-in"
NEXT_PREFIXES = ("/review/", "/console/")  # where signing in may lead


class PageError(Exception):
    """A refusal rendered as a page with ``status`` and ``title`` (datasette's Base400 idea); keyword
    arguments go to the error template (``back``, ``back_text``, ``command``)."""

    status = 400
    title = "Not possible"

    def __init__(self, message: str, **context: str) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


@dataclass
class Web:
    """The web layer's services, kept on ``app.state.web``."""

    services: Services
    accounts: Accounts
    cookies: SessionCookies
    throttle: SignInThrottle


def web(request: Request) -> Web:
    found: Web = request.app.state.web
    return found


def wants_page(request: Request) -> bool:
    """A browser navigating (a page or a plain form), as opposed to a script's fetch."""
    return request.headers.get("x-requested-with", "") != "fetch"


def safe_next(path: str | None, default: str = "/review/") -> str:
    """A local review or console path to go to after signing in, never another site."""
    if path and path.startswith(NEXT_PREFIXES) and "\\" not in path:
        return path
    return default


class PageRoute(APIRoute):
    """Renders failures as pages: no session → sign-in, a bad CSRF token → 403, a domain error → its
    status with the message, anything unexpected → a 500 page that reveals nothing (and is logged)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as e:
                if request.method == "GET" and wants_page(request):
                    asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    target = f"{SIGN_IN}?next={quote(asked, safe='/')}"
                    if request.cookies.get("vl_session"):
                        target += "&ended=1"
                    return RedirectResponse(target, status_code=303)
                return error_page(
                    request, 401, "Signed out", f"{e.message}.", back=SIGN_IN, back_text="Sign in"
                )
            except PageError as e:
                return error_page(request, e.status, e.title, e.message, **e.context)
            except CsrfRejected:
                return error_page(
                    request,
                    403,
                    "Form refused",
                    "The form was out of date or came from another page. Reload the page and try again.",
                )
            except RequestValidationError:
                return error_page(request, 400, "Bad request", "The request is not valid.")
            except HTTPException as e:  # e.g. a form the parser refused (too many files or fields)
                return error_page(request, e.status_code, "Not possible", f"{e.detail}")
            except VisionloopError as e:
                return error_page(request, status_for(e), "Not possible", e.message)
            except Exception:
                log.exception("page %s %s failed", request.method, request.url.path)
                return error_page(request, 500, "Something went wrong", "An unexpected error occurred.")

        return page_handler
