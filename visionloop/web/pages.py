"""Rendering pages: the Jinja2 environment (autoescaped), the headers every page carries, error pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from visionloop import __version__
from visionloop.api.errors import utf8
from visionloop.web.numbers import percent

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# Everything comes from this server: no CDN, no inline script, no framing by other sites.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals["version"] = __version__
_env.filters["percent"] = percent  # every confidence, threshold and score a person reads (web/numbers.py)


def set_global(name: str, value: Any) -> None:
    """A value every template sees (the console's navigation, for one)."""
    _env.globals[name] = value


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(request=request, **context)
    return HTMLResponse(utf8(html), status_code=status, headers=PAGE_HEADERS)  # stored bad text: U+FFFD


def error_page(request: Request, status: int, title: str, message: str, **context: Any) -> HTMLResponse:
    """The page for a refusal or failure; it keeps the top bar of the session that asked, if any."""
    context.setdefault("session", getattr(request.state, "session", None))
    return render(request, "error.html", status=status, title=title, message=message, **context)
