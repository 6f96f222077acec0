"""The web pages in-process: an app over real storage, cheap password hashes, a clock the tests move."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.factories import image_bytes, make_project, unique_colour
from tests.web.browser import CHROMIUM
from visionloop.api.app import create_app
from visionloop.core import review
from visionloop.core.accounts import Accounts, add_reviewer
from visionloop.core.entities import TaskType
from visionloop.core.records.review import FlowSettings, HumanLoop
from visionloop.core.services import Services
from visionloop.passwords import Argon2Hasher
from visionloop.settings import Settings
from visionloop.storage.accounts import SqlAccountStore
from visionloop.storage.sql import SqlRepository

PASSWORD = "correct horse"


@dataclass
class Clock:
    at: datetime = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


@pytest.fixture
def clock(services: Services) -> Clock:
    c = Clock()
    services.clock = c
    return c


@pytest.fixture
def accounts(services: Services, clock: Clock) -> Accounts:
    assert isinstance(services.repo, SqlRepository)
    cheap = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)
    accounts = Accounts(SqlAccountStore(services.repo.engine), cheap, clock)
    add_reviewer(accounts, "alice", PASSWORD)
    add_reviewer(accounts, "bob", PASSWORD)
    return accounts


@pytest.fixture
def app(services: Services, settings: Settings, accounts: Accounts) -> FastAPI:
    return create_app(services, settings, accounts=accounts)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(client: TestClient, name: str = "alice", password: str = PASSWORD) -> str:
    """Signs in; returns the session's CSRF token (from the page the sign-in leads to)."""
    page = client.get("/review/sign-in")
    r = client.post(
        "/review/sign-in", data={"name": name, "password": password, "csrf_token": csrf_of(page.text)}
    )
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/review/").text)


def review_project(
    svc: Services, name: str = "logos", n: int = 3, task: TaskType = TaskType.CLASSIFICATION
) -> list[HumanLoop]:
    """A project with labels, a review flow and ``n`` open loops with the model's guesses."""
    make_project(svc, name, task)
    svc.repo.add_labels(svc.repo.get_project(name).id, ["apple", "pear"])
    flow = review.put_flow(
        svc, name, FlowSettings(instructions="Which fruit?"), region="us-east-1", account="123456789012"
    )
    loops = []
    for i in range(n):
        doc = {"customLabels": [{"Name": "apple", "Confidence": 55.5}, {"Name": "pear", "Confidence": 40.0}]}
        data = image_bytes(color=unique_colour(500 + i))
        loops.append(review.start_loop(svc, flow, f"{name}-{i}", doc, image=data))
    return loops


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium for the real-browser tests (tests/web/browser.py), with Playwright (the test extra)
    to drive it: skipped without them, but CI must run them."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")
    if CHROMIUM is None or not Path(CHROMIUM).exists():
        reason = "Debian's chromium is not installed: apt-get install -y chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the browser tests")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
def browser(chromium: str) -> Iterator[object]:
    """A headless chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield b
        finally:
            b.close()
