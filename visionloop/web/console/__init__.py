"""The operators' web console under /console/: the whole product in the browser for someone who does
not program (issue 8). Server-rendered pages (Jinja2 templates under templates/console/, a vendored htmx
and small scripts under static/), on the same sign-in sessions as the review pages.

    projects.py    /console/, /console/projects: list (with the serving version), create, delete
    datasets.py    /console/projects/{p}/datasets/{train|test}: the dataset browser, uploads, imports
    training.py    /console/projects/{p}/train: the Train button and the job's live progress
    (versions, Try it and the operators' workflow pages live in modules of their own beside these)

Every route needs an operator: declare the session as ``session: Operator`` (GET) or
``session: OperatorForm`` (POST, checks the CSRF token too), from web.auth, in a router whose
route_class is web.routing.PageRoute (``console_router()`` makes one). A reviewer gets 403, no session
the sign-in page, and no account at all a page saying how to create the first operator.

install() mounts every module of this package that has a ``router``, in name order, so a new page
module needs no edit here. A module's ``NAV`` (links in the top bar) and ``PROJECT_TABS`` (tabs on a
project's pages; ``{project}`` in a path is replaced) add its links. Templates get ``console_nav`` and
``project_tabs``; console pages extend ``console/base.html`` (or ``console/project.html`` for a
project's pages, which draws the tabs)."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from urllib.parse import quote

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from visionloop.web.pages import set_global
from visionloop.web.routing import PageRoute

PREFIX = "/console"


@dataclass(frozen=True)
class Link:
    """A navigation link. ``current`` is the path prefix, or a tuple of them, that marks it as the
    current page (default: ``path``); ``order`` sorts the links (10, 20, …; the review pages come last,
    at 90)."""

    label: str
    path: str
    order: int = 50
    current: str | tuple[str, ...] = ""

    def for_project(self, project: str) -> Link:
        name = quote(project, safe="")
        prefixes = (self.current,) if isinstance(self.current, str) else self.current
        return Link(
            self.label,
            self.path.replace("{project}", name),
            self.order,
            tuple(p.replace("{project}", name) for p in prefixes),
        )

    def __post_init__(self) -> None:
        if not self.current:
            object.__setattr__(self, "current", self.path)


REVIEW = Link("Review", "/review/", 90)


def console_router() -> APIRouter:
    """A router for console pages: failures become pages, nothing appears in the API's OpenAPI."""
    return APIRouter(prefix=PREFIX, route_class=PageRoute, include_in_schema=False)


def page_modules() -> list[ModuleType]:
    """The modules of this package, in name order (those with a ``router`` serve pages)."""
    found = sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
    return [importlib.import_module(f"{__name__}.{info.name}") for info in found]


def routers() -> list[APIRouter]:
    """The page routers install() mounts (the not-found fallback last)."""
    found = [getattr(m, "router", None) for m in page_modules()]
    return [r for r in found if isinstance(r, APIRouter)] + [_fallback]


def install(app: FastAPI) -> None:
    """Mount the console's page modules and publish their links to the templates."""
    nav = [REVIEW]
    tabs: list[Link] = []
    for module in page_modules():
        nav.extend(getattr(module, "NAV", ()))
        tabs.extend(getattr(module, "PROJECT_TABS", ()))
    for router in routers():
        app.include_router(router)
    set_global("console_nav", sorted(nav, key=lambda link: link.order))
    set_global("project_tabs", sorted(tabs, key=lambda link: link.order))


_fallback = console_router()


@_fallback.get("", include_in_schema=False)
def console_root(_: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


@_fallback.api_route("/{rest:path}", methods=["GET", "POST"])
def not_found(request: Request, rest: str) -> Response:
    from visionloop.web.auth import require_operator
    from visionloop.web.pages import error_page

    session = require_operator(request)  # strangers see the sign-in page, not what exists
    return error_page(request, 404, "Not found", "There is no such console page.", session=session)
