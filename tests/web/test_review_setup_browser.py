"""Human review set up and a rollback, in a real browser (issue 18, items 4 and 5): Playwright driving
Debian's chromium against a real server on a free port (tests/web/browser.py).

An operator adds a reviewer, writes a project's instructions, reviewers per image and time limit, and sees
the review items with their state; the reviewer then signs in and is shown the instructions. A project
whose v1 was started by hand and then replaced by v2 (a training check) rolls back to v1 with the form's
default. The new pages fit a 390 px phone. Screenshots as in tests/web/browser.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.web.browser import PASSWORD, Server, keep_screenshots, live_server
from tests.web.conftest import review_project
from tests.workflows.helpers import BLUE, add_train_images, colour_project, drive, rules, run_jobs
from visionloop.core import review
from visionloop.core.accounts import Role
from visionloop.core.deployments import serving_version
from visionloop.core.entities import VersionStatus
from visionloop.core.retraining import request_check
from visionloop.core.runkinds import RunContext
from visionloop.core.serving import start_version
from visionloop.core.training import request_training

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WIDTH = "document.documentElement.scrollWidth"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server(tmp_path_factory.mktemp("review-setup") / "var", "olga", Role.OPERATOR) as server:
        yield server


def _sign_in(page: object, url: str, name: str, password: str, asked: str) -> None:
    page.goto(f"{url}/review/sign-in?next={asked}")  # type: ignore[attr-defined]
    page.fill("input[name=name]", name)  # type: ignore[attr-defined]
    page.fill("input[name=password]", password)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]


def test_an_operator_sets_up_human_review(server: Server, browser: object, tmp_path: Path) -> None:
    svc, url = server.svc, server.url
    review_project(svc, "fruit", n=3)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    context = browser.new_context(viewport=LAPTOP)  # type: ignore[attr-defined]
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    _sign_in(page, url, "olga", PASSWORD, "/console/")

    # a reviewer account, made in the browser
    page.click("nav.nav >> text=Reviewers")
    assert page.url == f"{url}/console/reviewers"
    page.fill("#add input[name=name]", "rita")
    page.check("#add input[name=role][value=reviewer]")
    page.fill("#add input[name=password]", "rita's password")
    page.fill("#add input[name=password_again]", "rita's password")
    page.click("#add-account")
    assert "rita can sign in now" in page.inner_text("main")
    assert "reviewer" in page.inner_text("#account-rita")
    page.screenshot(path=str(shots / "console-reviewers.png"))

    # the project's review settings
    page.goto(f"{url}/console/projects/fruit/review")
    page.fill("textarea[name=instructions]", "Pick the fruit in the middle of the photo.")
    page.fill("input[name=reviewers_per_item]", "2")
    page.fill("input[name=time_limit]", "2")
    page.select_option("select[name=time_unit]", "days")
    page.click("#save-review")
    assert "The review settings were saved." in page.inner_text("main")
    settings = review.get_flow(svc, "fruit").settings
    assert settings.instructions == "Pick the fruit in the middle of the photo."
    assert (settings.reviewers_per_item, settings.time_limit_seconds) == (2, 2 * 86400)
    page.screenshot(path=str(shots / "console-review-settings.png"), full_page=True)

    # the items, then one of them leased by rita
    rita = browser.new_context(viewport=PHONE)  # type: ignore[attr-defined]
    phone = rita.new_page()
    _sign_in(phone, url, "rita", "rita's password", "/review/")
    phone.wait_for_url(f"{url}/review/**")
    phone.goto(f"{url}/review/queue?project=fruit")
    assert "Pick the fruit in the middle of the photo." in phone.inner_text("main")
    rita.close()
    page.goto(f"{url}/console/review-items")
    states = page.locator("#item-list .status").all_inner_texts()
    assert sorted(states) == ["leased", "pending", "pending"], states
    assert "by rita" in page.inner_text("#item-list")
    page.select_option("select[name=state]", "pending")
    page.click("#item-filters button")
    assert page.locator("#item-list .status").all_inner_texts() == ["pending", "pending"]
    assert "state=pending" in page.url
    page.screenshot(path=str(shots / "console-review-items.png"))
    assert not problems, problems
    context.close()

    # every new page fits a phone
    phone_context = browser.new_context(viewport=PHONE)  # type: ignore[attr-defined]
    phone = phone_context.new_page()
    _sign_in(phone, url, "olga", PASSWORD, "/console/reviewers")
    for path in ("/console/reviewers", "/console/projects/fruit/review", "/console/review-items"):
        phone.goto(f"{url}{path}")
        assert phone.evaluate(WIDTH) <= PHONE["width"], path
    phone.screenshot(path=str(shots / "console-review-items-phone.png"), full_page=True)
    phone_context.close()
    keep_screenshots(shots)


def test_rollback_to_the_version_that_was_replaced(server: Server, browser: object, tmp_path: Path) -> None:
    svc, url = server.svc, server.url
    name = colour_project(svc, tmp_path)
    rules(svc, name, auto_training_enabled=True, min_untrained_images=4, min_f1=0.7)
    request_training(svc, name)  # v1, trained and started by hand: no deployment of its own
    run_jobs(svc)
    start_version(svc, server.serving, name, "v1")
    project = svc.repo.get_project(name)
    deadline = time.monotonic() + 60
    while svc.repo.get_version(project.id, "v1").status is not VersionStatus.RUNNING:
        assert time.monotonic() < deadline, "v1 did not start"
        time.sleep(0.05)
    ctx = RunContext(svc, server.serving, step_timeout=timedelta(minutes=10))
    add_train_images(svc, name, tmp_path, "blue", BLUE, 4, start=80)
    assert drive(ctx, request_check(svc, name).id).outcome == "deployed"  # v2 replaced v1

    context = browser.new_context(viewport=LAPTOP)  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_in(page, url, "olga", PASSWORD, f"/console/projects/{name}/workflow/runs")
    page.wait_for_url(f"{url}/console/projects/{name}/workflow/runs")
    assert "v1, the previous version" in page.inner_text("#rollback-form select")
    table = page.inner_text("#serving-now table")
    assert "v2" in table and "v1" in table
    page.once("dialog", lambda d: d.accept())
    page.click("#rollback-form button")
    page.wait_for_url(f"{url}/console/projects/{name}/workflow/runs/*")
    run_id = int(page.url.rsplit("/", 1)[1])
    run = drive(ctx, run_id)
    assert run.outcome == "rolled_back" and run.output["version"] == "v1", run.error
    assert serving_version(svc, name).name == "v1"  # type: ignore[union-attr]
    page.goto(f"{url}/console/projects/{name}/workflow/runs")
    assert "Version v1 serves this project" in page.inner_text("#serving-now")
    context.close()
