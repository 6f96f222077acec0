"""Who may open the console: operators only, signed in; reviewers get 403 pages, strangers the sign-in
page, and a server without accounts says how to create the first operator. Every console form needs its
CSRF token."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.web.conftest import PASSWORD, Clock, csrf_of, sign_in
from visionloop.core.accounts import Accounts, Role, add_reviewer, remove_reviewer, set_role
from visionloop.core.services import Services
from visionloop.web import console
from visionloop.web.auth import FIRST_OPERATOR

CONSOLE_PAGES = ["/console/", "/console/projects", "/console/projects/logos/delete", "/console/nothing-here"]


@pytest.fixture
def operator(accounts: Accounts) -> str:
    add_reviewer(accounts, "olga", PASSWORD, Role.OPERATOR)
    return "olga"


def test_no_session_leads_to_sign_in_and_back(client: TestClient, operator: str) -> None:
    for path in CONSOLE_PAGES:
        r = client.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/review/sign-in?next=/console/")
    r = client.get("/console/projects?notice=deleted&name=x")
    assert r.headers["location"] == "/review/sign-in?next=/console/projects%3Fnotice%3Ddeleted%26name%3Dx"
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and "Sign in to the console" in page.text
    assert FIRST_OPERATOR not in page.text  # accounts exist
    r = client.post(
        "/review/sign-in",
        data={
            "name": "olga",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "/console/projects",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/projects"
    page = client.get("/console/projects")
    assert page.status_code == 200 and "Create a project" in page.text
    assert 'aria-current="page">Projects' in page.text and 'href="/review/"' in page.text  # the nav
    # a form post without a session is refused, not redirected
    client.cookies.clear()
    r = client.post("/console/projects", data={"name": "p", "task": "classification"})
    assert r.status_code == 401 and "Sign in" in r.text


def test_operators_land_on_the_console_and_may_review(client: TestClient, operator: str) -> None:
    page = client.get("/review/sign-in")
    r = client.post(
        "/review/sign-in", data={"name": "olga", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    assert r.headers["location"] == "/console/"
    assert client.get("/console/").headers["location"] == "/console/projects"
    assert client.get("/review/").status_code == 200  # the review pages too
    assert client.get("/").headers["location"] == "/console/"


def test_reviewers_get_403_pages(client: TestClient, accounts: Accounts, operator: str) -> None:
    sign_in(client, "alice")
    for path in CONSOLE_PAGES:
        r = client.get(path)
        assert r.status_code == 403, path
        assert "Operators only" in r.text and "text/html" in r.headers["content-type"]
        assert "signed in as <strong>alice</strong>" in r.text and 'aria-label="Console"' not in r.text
    token = csrf_of(client.get("/review/").text)
    r = client.post("/console/projects", data={"name": "p", "task": "classification", "csrf_token": token})
    assert r.status_code == 403 and "Operators only" in r.text
    # a reviewer asking for a console page at sign-in lands on the review pages
    client.cookies.clear()
    page = client.get("/review/sign-in?next=/console/projects")
    r = client.post(
        "/review/sign-in",
        data={
            "name": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "/console/projects",
        },
    )
    assert r.headers["location"] == "/review/"
    # the role is read with the session: a promotion opens the console at the next request
    set_role(accounts, "alice", Role.OPERATOR)
    assert client.get("/console/projects").status_code == 200
    set_role(accounts, "alice", "reviewer")
    assert client.get("/console/projects").status_code == 403


def test_without_accounts_the_console_says_how_to_create_the_first_operator(
    client: TestClient, accounts: Accounts
) -> None:
    for name in ("alice", "bob"):
        remove_reviewer(accounts, name)
    r = client.get("/console/projects")
    assert r.status_code == 403 and FIRST_OPERATOR in r.text and "no account" in r.text
    page = client.get("/review/sign-in")
    assert FIRST_OPERATOR in page.text
    r = client.post("/console/projects", data={"name": "p", "task": "classification"})
    assert r.status_code == 403 and FIRST_OPERATOR in r.text


def test_every_console_form_needs_the_csrf_token(
    client: TestClient, services: Services, operator: str, clock: Clock
) -> None:
    token = sign_in(client, "olga")
    forms = [
        ("/console/projects", {"name": "made", "task": "classification"}),
        ("/console/projects/made/delete", {"confirm": "made"}),
    ]
    for path, data in forms:
        for bad in ({}, {"csrf_token": "forged"}):
            r = client.post(path, data={**data, **bad})
            assert r.status_code == 403 and "Form refused" in r.text, path
    assert services.repo.list_projects() == []
    for path, data in forms:
        r = client.post(path, data={**data, "csrf_token": token})
        assert r.status_code == 303, (path, r.text)


# opened by the one-time setup link's token while no operator exists, not by a session; its refusals are
# tested in tests/web/test_first_run.py
TOKEN_PAGES = {"/console/setup"}


def _console_routes(method: str) -> list[str]:
    """Every console route with ``method`` (of every page module), its path parameters filled in."""
    paths = []
    for router in console.routers():
        for route in router.routes:
            if not isinstance(route, APIRoute) or method not in (route.methods or ()):
                continue
            fallback = ":path}" in route.path  # the not-found page: 404 to any form
            if route.path in TOKEN_PAGES:
                continue
            if route.path.startswith("/console/") and not (fallback and method == "POST"):
                paths.append(re.sub(r"\{[^}]+\}", "1", route.path))
    assert paths, "no console routes"
    return sorted(set(paths))


def test_every_console_page_needs_an_operator(client: TestClient, operator: str) -> None:
    pages = _console_routes("GET")
    for path in pages:
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/review/sign-in"), path
    sign_in(client, "alice")
    for path in pages:
        r = client.get(path)
        assert r.status_code == 403 and "Operators only" in r.text, path


def test_every_console_form_post_needs_its_csrf_token(client: TestClient, operator: str) -> None:
    sign_in(client, "olga")
    for path in _console_routes("POST"):
        for bad in ({}, {"csrf_token": "forged"}):
            r = client.post(path, data=bad)
            assert r.status_code == 403 and "Form refused" in r.text, path
            assert "text/html" in r.headers["content-type"]


def test_pages_carry_little_script(client: TestClient) -> None:
    from visionloop.web.pages import STATIC

    scripts = sorted(STATIC.rglob("*.js"))
    assert sum(p.stat().st_size for p in scripts) < 1024 * 1024  # every script together is under 1 MB
    assert (STATIC / "vendor" / "htmx.LICENSE.txt").read_text().count("Zero-Clause BSD") == 1
