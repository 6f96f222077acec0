"""Human review set up in the console (issue 18, item 5): operators add and remove reviewer accounts,
set a project's instructions, reviewers per image and time limit, and follow the review items with their
state (pending, leased by whom, answered, expired), filtered by state and project."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.factories import make_project
from tests.web.conftest import PASSWORD, Clock, review_project, sign_in
from visionloop.core import review
from visionloop.core.accounts import Accounts, authenticate, list_reviewers
from visionloop.core.review.states import ItemState, review_items
from visionloop.core.services import Services
from visionloop.errors import Unauthenticated

NEW = "a new password"


def names(accounts: Accounts) -> dict[str, str]:
    return {r.name: r.role.value for r in list_reviewers(accounts)}


def test_operators_add_reset_and_remove_accounts(client: TestClient, accounts: Accounts, olga: str) -> None:
    page = client.get("/console/reviewers")
    assert page.status_code == 200 and 'href="/console/reviewers" aria-current="page"' in page.text
    assert "olga" in page.text and "(you)" in page.text
    assert 'href="/console/flows"' in page.text  # the read-only flows page (flows.py)
    add = {"csrf_token": olga, "name": "Carol", "role": "reviewer", "password": NEW, "password_again": NEW}
    r = client.post("/console/reviewers", data=add)
    assert r.status_code == 303 and r.headers["location"] == "/console/reviewers?notice=added&name=carol"
    assert "carol can sign in now" in client.get(r.headers["location"]).text
    assert names(accounts)["carol"] == "reviewer" and authenticate(accounts, "carol", NEW)
    r = client.post("/console/reviewers", data={**add, "name": "dave", "role": "operator"})
    assert r.status_code == 303 and names(accounts)["dave"] == "operator"

    refused = [
        ({**add, "name": "erin", "password_again": "other one"}, 400, "The two passwords differ."),
        ({**add, "name": "bad name!"}, 400, "is not valid"),
        ({**add, "name": "erin", "password": "short", "password_again": "short"}, 400, "too short"),
        ({**add, "name": "erin", "role": "boss"}, 400, "Unknown role"),
        (add, 409, "already exists"),
    ]
    for data, status, message in refused:
        r = client.post("/console/reviewers", data=data)
        assert r.status_code == status and message in r.text, (data, r.text)
        assert 'id="error"' in r.text
    assert "erin" not in names(accounts)
    assert 'value="bad name!"' in client.post("/console/reviewers", data={**add, "name": "bad name!"}).text

    pw = {"csrf_token": olga, "password": "another one!", "password_again": "another one!"}
    r = client.post("/console/reviewers/carol/password", data=pw)
    assert r.status_code == 303 and authenticate(accounts, "carol", "another one!")
    r = client.post("/console/reviewers/carol/password", data={**pw, "password_again": "x"})
    assert r.status_code == 400 and "differ" in r.text
    assert client.post("/console/reviewers/ghost/password", data=pw).status_code == 404

    r = client.post("/console/reviewers/carol/remove", data={"csrf_token": olga})
    assert r.status_code == 303 and "carol" not in names(accounts)
    with pytest.raises(Unauthenticated):
        authenticate(accounts, "carol", "another one!")
    r = client.post("/console/reviewers/olga/remove", data={"csrf_token": olga})
    assert r.status_code == 409 and "You cannot remove the account you are signed in with." in r.text
    assert client.post("/console/reviewers/ghost/remove", data={"csrf_token": olga}).status_code == 404
    # every form needs the CSRF token
    assert (
        client.post("/console/reviewers", data={**add, "csrf_token": "forged", "name": "x1"}).status_code
        == 403
    )
    assert client.post("/console/reviewers/dave/remove", data={}).status_code == 403
    assert "olga" in names(accounts) and "dave" in names(accounts) and "x1" not in names(accounts)


def test_review_settings_are_saved_and_refused_with_reasons(
    client: TestClient, services: Services, olga: str
) -> None:
    make_project(services, "fruit")
    url = "/console/projects/fruit/review"
    page = client.get(url)
    assert page.status_code == 200 and "Nothing is" in page.text and 'value="10"' in page.text  # 10 days
    assert f'href="{url}" aria-current="page"' in page.text
    assert review.find_flow(services, "fruit") is None
    form = {
        "csrf_token": olga,
        "instructions": "Which fruit is in the middle?\r\nIgnore the background.",
        "reviewers_per_item": "3",
        "time_limit": "36",
        "time_unit": "hours",
    }
    r = client.post(url, data=form)
    assert r.status_code == 303 and r.headers["location"] == f"{url}?notice=saved"
    flow = review.get_flow(services, "fruit")
    s = flow.settings
    assert s.instructions == "Which fruit is in the middle?\nIgnore the background."
    assert (s.reviewers_per_item, s.time_limit_seconds) == (3, 36 * 3600)
    page = client.get(r.headers["location"])
    assert "The review settings were saved." in page.text and 'value="36"' in page.text
    assert flow.arn in page.text

    refused = [
        ({"reviewers_per_item": "many"}, "Reviewers per image must be a whole number"),
        ({"reviewers_per_item": "10"}, "Reviewers per image must be between 1 and 9, not 10"),
        ({"time_limit": "soon"}, "The time limit must be a number"),
        ({"time_limit": "inf"}, "The time limit must be a finite number"),
        ({"time_limit": "nan"}, "The time limit must be a finite number"),
        ({"time_limit": "1e400"}, "The time limit must be a finite number"),
        ({"time_limit": "1e307", "time_unit": "days"}, "The time limit must be a finite number"),
        ({"time_limit": "30", "time_unit": "seconds"}, "Unknown time unit"),
        ({"time_limit": "0.5", "time_unit": "minutes"}, "between 1 minute and 365 days"),
        ({"time_limit": "366", "time_unit": "days"}, "between 1 minute and 365 days"),
        ({"instructions": "x" * 10_001}, "at most 10,000 characters"),
    ]
    for changes, message in refused:
        r = client.post(url, data={**form, **changes})
        assert r.status_code == 400 and message in r.text, (changes, r.text[:300])
        typed = next(iter(changes.values()))
        assert typed[:50] in r.text  # what was typed stays in the form
    assert review.get_flow(services, "fruit").settings == s  # nothing refused was saved
    assert client.post(url, data={**form, "csrf_token": "forged"}).status_code == 403
    assert client.get("/console/projects/ghost/review").status_code == 404


def test_saving_keeps_the_settings_the_form_does_not_show(
    client: TestClient, services: Services, olga: str
) -> None:
    review_project(services, "logos", n=0)
    before = review.get_flow(services, "logos").settings
    form = {"csrf_token": olga, "instructions": "New words", "reviewers_per_item": "2", "time_limit": "90",
            "time_unit": "minutes"}  # fmt: skip
    assert client.post("/console/projects/logos/review", data=form).status_code == 303
    after = review.get_flow(services, "logos").settings
    assert (after.instructions, after.reviewers_per_item, after.time_limit_seconds) == ("New words", 2, 5400)
    assert (after.labels, after.min_confidence, after.lease_seconds) == (
        before.labels,
        before.min_confidence,
        before.lease_seconds,
    )
    assert 'value="90"' in client.get("/console/projects/logos/review").text  # 90 minutes, shown whole


def _states(html: str) -> list[str]:
    return re.findall(r'class="status s-item-(\w+)"', html)


def test_review_items_with_their_state_filtered(
    client: TestClient, services: Services, clock: Clock, olga: str
) -> None:
    loops = review_project(services, "logos", n=3)
    review_project(services, "fruit", n=1)
    item = review.next_item(services, "alice", project="logos")
    assert item is not None
    other = review.next_item(services, "bob", project="logos")
    assert other is not None
    review.submit_answer(services, other.loop, "bob", "apple")
    by_name = {r.loop.name: r for r in review_items(services)}
    assert by_name[item.loop.name].state is ItemState.LEASED
    assert by_name[item.loop.name].leased_by == ("alice",)
    assert by_name[other.loop.name].state is ItemState.ANSWERED and by_name[other.loop.name].answers == 1
    assert sorted(r.state.value for r in by_name.values()) == ["answered", "leased", "pending", "pending"]

    page = client.get("/console/review-items")
    assert page.status_code == 200 and sorted(_states(page.text)) == [
        "answered",
        "leased",
        "pending",
        "pending",
    ]
    assert "leased</span> by alice" in page.text and "1 of 1: apple" in page.text
    page = client.get("/console/review-items?state=pending&project=logos")
    assert _states(page.text) == ["pending"] and "fruit-0" not in page.text
    page = client.get("/console/review-items?project=fruit")
    assert _states(page.text) == ["pending"] and "fruit-0" in page.text
    assert _states(client.get("/console/review-items?state=leased").text) == ["leased"]

    clock.advance(days=11)  # past the 10-day time limit: the open ones expire (and olga's session)
    sign_in(client, "olga")
    page = client.get("/console/review-items?state=expired")
    assert sorted(_states(page.text)) == ["expired"] * 3
    assert {r.loop.name for r in review_items(services, state=ItemState.EXPIRED)} == {
        loops[0].name,
        loops[1].name,
        loops[2].name,
        "fruit-0",
    } - {other.loop.name}

    r = client.get("/console/review-items?state=lost")
    assert r.status_code == 400 and "Unknown review item state &#39;lost&#39;" in r.text
    r = client.get("/console/review-items?project=ghost")
    assert r.status_code == 404 and "has no review settings" in r.text


def test_reviewers_do_not_see_these_pages(client: TestClient, services: Services) -> None:
    make_project(services, "fruit")
    sign_in(client, "alice", PASSWORD)
    for path in ("/console/reviewers", "/console/review-items", "/console/projects/fruit/review"):
        r = client.get(path)
        assert r.status_code == 403 and "Operators only" in r.text
