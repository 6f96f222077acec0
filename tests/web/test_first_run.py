"""The first run (issue 18, item 1): while no operator exists, the one-time setup link creates the first
one in the browser; without its token nothing is created, and once an operator exists the link is dead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.servers import serve_process
from tests.web.conftest import PASSWORD
from visionloop.core.accounts import Accounts, Role, add_reviewer, authenticate, list_reviewers
from visionloop.web.console.setup import issue_setup_link, setup_link

NEW_PASSWORD = "first operator pw"


def _token(path: str) -> str:
    found = re.fullmatch(r"/console/setup\?token=([A-Za-z0-9_-]{40,})", path)
    assert found, path
    return found.group(1)


def _create(client: TestClient, token: str, name: str = "olga", again: str = NEW_PASSWORD) -> Any:
    data = {"token": token, "name": name, "password": NEW_PASSWORD, "password_again": again}
    return client.post("/console/setup", data=data)


def operators(accounts: Accounts) -> list[str]:
    return [r.name for r in list_reviewers(accounts) if r.role is Role.OPERATOR]


def test_the_setup_link_creates_the_first_operator_and_signs_them_in(
    app: FastAPI, client: TestClient, accounts: Accounts
) -> None:
    path = issue_setup_link(app)
    assert path is not None
    token = _token(path)
    page = client.get(path)
    assert page.status_code == 200 and "Create the first operator" in page.text
    assert 'name="password_again"' in page.text and 'minlength="8"' in page.text
    r = _create(client, token)
    assert r.status_code == 303 and r.headers["location"] == "/console/projects?notice=welcome&name=olga"
    home = client.get(r.headers["location"])
    assert home.status_code == 200 and "Welcome, olga: you are the first operator" in home.text
    assert "signed in as <strong>olga</strong>" in home.text
    assert operators(accounts) == ["olga"]
    assert authenticate(accounts, "olga", NEW_PASSWORD).role is Role.OPERATOR
    # the link is dead now, even for the one who used it
    for r in (client.get(path), _create(client, token, "eve")):
        assert r.status_code == 410 and "Setup is done" in r.text
    assert operators(accounts) == ["olga"] and issue_setup_link(app) is None


@pytest.mark.parametrize("token", ["", "wrong", "x" * 43])
def test_without_the_token_nobody_is_created(
    app: FastAPI, client: TestClient, accounts: Accounts, token: str
) -> None:
    issue_setup_link(app)
    r = client.get("/console/setup", params={"token": token} if token else None)
    assert r.status_code == 403 and "Setup link needed" in r.text and "visionloop serve" in r.text
    r = _create(client, token)
    assert r.status_code == 403 and "vl_session" not in r.headers.get("set-cookie", "")
    assert operators(accounts) == []


def test_no_link_issued_refuses_too(client: TestClient, accounts: Accounts) -> None:
    assert client.get("/console/setup?token=anything").status_code == 403
    assert _create(client, "anything").status_code == 403
    assert operators(accounts) == []


def test_bad_input_is_answered_on_the_form_and_keeps_the_link(
    app: FastAPI, client: TestClient, accounts: Accounts
) -> None:
    token = _token(issue_setup_link(app) or "")
    cases = [
        ({"again": "something else"}, 400, "The two passwords differ"),
        ({"name": "Bad Name!"}, 400, "is not valid"),
        ({"name": "alice"}, 409, "already exists"),  # a reviewer made from the command line
    ]
    for kwargs, status, message in cases:
        r = _create(client, token, **kwargs)
        assert r.status_code == status and message in r.text, r.text
        assert 'id="setup-error"' in r.text
    r = client.post("/console/setup", data={"token": token, "name": "olga", "password": "short"})
    assert r.status_code == 400 and "The two passwords differ" in r.text
    data = {"token": token, "name": "olga", "password": "short", "password_again": "short"}
    r = client.post("/console/setup", data=data)
    assert r.status_code == 400 and "too short" in r.text
    assert operators(accounts) == []
    assert _create(client, token).status_code == 303


def test_only_the_hash_is_kept_and_a_new_link_replaces_the_old(app: FastAPI, client: TestClient) -> None:
    first = _token(issue_setup_link(app) or "")
    second = _token(issue_setup_link(app) or "")
    assert first != second
    kept = repr(vars(setup_link(app)))
    assert first not in kept and second not in kept
    assert client.get(f"/console/setup?token={first}").status_code == 403
    assert client.get(f"/console/setup?token={second}").status_code == 200


def test_an_operator_made_on_the_command_line_ends_the_link(
    app: FastAPI, client: TestClient, accounts: Accounts
) -> None:
    path = issue_setup_link(app) or ""
    add_reviewer(accounts, "olga", PASSWORD, Role.OPERATOR)
    assert client.get(path).status_code == 410
    assert issue_setup_link(app) is None


def test_before_the_first_operator_the_console_points_to_the_link(
    client: TestClient, accounts: Accounts
) -> None:
    r = client.get("/console/projects")
    assert r.status_code == 403 and "setup link the server printed" in r.text
    page = client.get("/review/sign-in?next=/console/")
    assert "one-time setup link" in page.text
    assert "one-time setup link" not in client.get("/review/sign-in").text  # reviewers exist


def _printed(data: Path, url: str) -> str:
    """What ``visionloop serve`` on ``url`` printed (tests/servers.py keeps it beside the data folder)."""
    return (data.parent / f"server-{url.rsplit(':', 1)[1]}.log").read_text()


def test_serve_prints_a_new_link_at_each_start_until_an_operator_exists(tmp_path: Path) -> None:
    data = tmp_path / "var"
    links = []
    for _ in range(2):
        with serve_process(data, start_timeout=90) as url:
            found = re.search(r"first run: create the first operator at (\S+)", _printed(data, url))
            assert found, _printed(data, url)
            links.append(found.group(1))
            assert links[-1].startswith(f"{url}/console/setup?token=")
            if len(links) == 2:
                old = links[0].replace(links[0].split("/console/")[0], url)
                assert httpx.get(old).status_code == 403  # the first start's link died with it
                form = {"token": _token(links[1].removeprefix(url)), "name": "olga"}
                form |= {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
                r = httpx.post(f"{url}/console/setup", data=form)
                assert r.status_code == 303 and "vl_session=" in r.headers["set-cookie"]
    assert links[0] != links[1]
    with serve_process(data, start_timeout=90) as url:
        assert "first run" not in _printed(data, url) and "setup?token=" not in _printed(data, url)
        assert httpx.get(links[1].replace(links[1].split("/console/")[0], url)).status_code == 410
