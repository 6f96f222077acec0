"""The review queue in-process: leasing through the pages, answering, skipping, giving back, and errors
that come back as pages."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from fastapi.testclient import TestClient

from tests.web.conftest import Clock, review_project, sign_in
from visionloop.core import review
from visionloop.core.entities import Box, DatasetType, EntrySource, Prediction, TaskType
from visionloop.core.records.review import NONE_OF_THE_ABOVE, LoopResult, LoopStatus
from visionloop.core.services import Services
from visionloop.web.review import _item_view


def _loop_on_page(html: str) -> str:
    found = re.search(r'data-loop="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_queue_shows_the_leased_item_and_answers_flow_into_train(
    client: TestClient, services: Services
) -> None:
    loops = review_project(services)
    csrf = sign_in(client)
    index = client.get("/review/")
    assert "logos" in index.text and '<td class="num">3</td>' in index.text

    page = client.get("/review/queue?project=logos")
    assert page.status_code == 200
    name = _loop_on_page(page.text)
    assert name == loops[0].name
    for text in (
        "Which fruit?",
        "apple",
        "55.5%",
        "pear",
        "40.0%",
        NONE_OF_THE_ABOVE,
        "<kbd>1</kbd>",
        "<kbd>0</kbd>",
    ):
        assert text in page.text
    assert _loop_on_page(client.get("/review/queue?project=logos").text) == name  # the same item again

    img = client.get(f"/review/items/{name}/image")
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert img.content == review.item_image(services, loops[0]) and "no-store" in img.headers["cache-control"]

    r = client.post(
        f"/review/items/{name}/answer",
        data={"csrf_token": csrf, "label": "pear", "project": "logos", "done": "0"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/review/queue?project=logos&done=1"
    loop = review.describe_loop(services, name)
    assert loop.status is LoopStatus.COMPLETED and loop.result is LoopResult.ADDED
    assert loop.human_answer == "pear" and loop.agrees is False
    entry = services.repo.get_entry(loop.entry_id or 0)
    assert entry.labels == ("pear",) and entry.source is EntrySource.HUMAN_REVIEW
    assert review.loop_output(services, loop)["humanAnswers"][0]["workerId"] == "alice"  # type: ignore[index]
    assert client.get(f"/review/items/{name}/image").status_code == 404  # no longer leased

    # none of the above adds nothing
    name = _loop_on_page(client.get(r.headers["location"]).text)
    r = client.post(
        f"/review/items/{name}/answer", data={"csrf_token": csrf, "label": NONE_OF_THE_ABOVE, "done": "1"}
    )
    assert r.headers["location"] == "/review/queue?done=2"
    assert review.describe_loop(services, name).result is LoopResult.NONE_OF_THE_ABOVE

    # skip: never shown to alice again, but bob gets it
    name = _loop_on_page(client.get("/review/queue").text)
    r = client.post(f"/review/items/{name}/skip", data={"csrf_token": csrf})
    assert r.headers["location"] == "/review/queue?notice=skipped"
    empty = client.get(r.headers["location"])
    assert "Nothing to review right now" in empty.text and "you will not see that item again" in empty.text
    train = services.repo.find_dataset(services.repo.get_project("logos").id, DatasetType.TRAIN)
    assert train is not None and services.repo.count_entries(train.id) == 1

    client.cookies.clear()
    csrf_bob = sign_in(client, "bob")
    page = client.get("/review/queue")
    assert _loop_on_page(page.text) == name
    r = client.post(f"/review/items/{name}/release", data={"csrf_token": csrf_bob})
    assert r.status_code == 303 and r.headers["location"] == "/review/"
    assert _loop_on_page(client.get("/review/queue").text) == name  # released, so bob may get it again


def test_two_reviewers_get_different_items_and_cannot_see_each_others(
    app: object, services: Services
) -> None:
    review_project(services, n=2)
    with TestClient(app, follow_redirects=False) as a, TestClient(app, follow_redirects=False) as b:  # type: ignore[arg-type]
        sign_in(a, "alice")
        sign_in(b, "bob")
        first = _loop_on_page(a.get("/review/queue").text)
        second = _loop_on_page(b.get("/review/queue").text)
        assert first != second
        assert b.get(f"/review/items/{first}/image").status_code == 404
        r = b.post(
            f"/review/items/{first}/answer",
            data={"csrf_token": _csrf(b.get("/review/").text), "label": "apple"},
        )
        assert r.status_code == 303 and "notice=taken" in r.headers["location"]  # not bob's to answer
        assert review.describe_loop(services, first).status is LoopStatus.IN_PROGRESS


def test_expired_lease_taken_by_another_reviewer(app: object, services: Services, clock: Clock) -> None:
    review_project(services, n=1)
    with TestClient(app, follow_redirects=False) as a, TestClient(app, follow_redirects=False) as b:  # type: ignore[arg-type]
        csrf_a = sign_in(a, "alice")
        name = _loop_on_page(a.get("/review/queue").text)
        clock.advance(minutes=11)  # the 10-minute lease is gone; sessions are still alive
        sign_in(b, "bob")
        assert _loop_on_page(b.get("/review/queue").text) == name
        clock.advance(minutes=1)
        r = a.post(f"/review/items/{name}/answer", data={"csrf_token": csrf_a, "label": "apple"})
        assert r.headers["location"] == "/review/queue?notice=taken"
        assert "went to someone else" in a.get(r.headers["location"]).text


def test_answer_needs_csrf_and_a_label(client: TestClient, services: Services) -> None:
    review_project(services, n=1)
    csrf = sign_in(client)
    name = _loop_on_page(client.get("/review/queue").text)
    for data in ({"label": "apple"}, {"label": "apple", "csrf_token": "forged"}):
        r = client.post(f"/review/items/{name}/answer", data=data)
        assert r.status_code == 403 and "Form refused" in r.text
    for path in ("skip", "release"):
        assert client.post(f"/review/items/{name}/{path}", data={}).status_code == 403
    assert review.describe_loop(services, name).status is LoopStatus.IN_PROGRESS
    r = client.post(f"/review/items/{name}/answer", data={"csrf_token": csrf})
    assert r.status_code == 400 and "choose a label" in r.text
    r = client.post(f"/review/items/{name}/answer", data={"csrf_token": csrf, "label": "banana"})
    assert r.status_code == 400 and "not one of the choices" in r.text
    r = client.post(f"/review/items/{name}/answer", data={"csrf_token": csrf, "label": "apple", "done": "x"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    r = client.post("/review/items/no-such-loop/answer", data={"csrf_token": csrf, "label": "apple"})
    assert r.status_code == 404 and "does not exist" in r.text
    r = client.post(f"/review/items/{name}/answer", data={"csrf_token": csrf, "label": "apple"})
    assert r.status_code == 303


def test_detection_items_take_boxes(client: TestClient, services: Services) -> None:
    loops = review_project(services, "shapes", n=1, task=TaskType.DETECTION)
    csrf = sign_in(client)
    page = client.get("/review/queue")
    assert '<canvas id="canvas"' in page.text and "Backspace" in page.text
    data = json.loads(re.search(r'id="item-data">(.*?)</script>', page.text).group(1))  # type: ignore[union-attr]
    assert data["boxes"] is True and data["width"] == loops[0].image.width
    name = _loop_on_page(page.text)
    for bad, message in [
        ("not json", "not valid JSON"),
        ('{"label": "apple"}', "a list"),
        ('[{"label": "apple", "left": "0"}]', "numbers"),
        ('[{"label": "apple", "left": 0.5, "top": 0.5, "width": 0.9, "height": 0.2}]', "inside the image"),
    ]:
        r = client.post(
            f"/review/items/{name}/answer", data={"csrf_token": csrf, "label": "apple", "boxes": bad}
        )
        assert r.status_code == 400 and message in r.text
    box = {"label": "apple", "left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4}
    r = client.post(
        f"/review/items/{name}/answer",
        data={"csrf_token": csrf, "label": "apple", "boxes": json.dumps([box])},
    )
    assert r.status_code == 303
    loop = review.describe_loop(services, name)
    assert services.repo.get_entry(loop.entry_id or 0).boxes == (Box("apple", 0.1, 0.2, 0.3, 0.4),)


def test_model_boxes_are_suggested(services: Services) -> None:
    """The model's boxes (Prediction.box) become the reviewer's starting boxes, to keep or remove."""
    review_project(services, "shapes", n=1, task=TaskType.DETECTION)
    item = review.next_item(services, "alice")
    assert item is not None
    guesses = (
        Prediction("apple", 61.0, Box("apple", 0.1, 0.1, 0.2, 0.2)),
        Prediction("kiwi", 9.0, Box("kiwi", 0, 0, 1, 1)),
    )
    view = _item_view(replace(item, loop=replace(item.loop, predictions=guesses)))
    assert view["data"]["suggested"] == [
        {"label": "apple", "left": 0.1, "top": 0.1, "width": 0.2, "height": 0.2}
    ]
    assert [c["key"] for c in view["choices"]] == ["1", "2"]


def test_empty_queue_and_unknown_project(client: TestClient, services: Services) -> None:
    sign_in(client)
    page = client.get("/review/")
    assert "No project asks for reviews yet" in page.text
    r = client.get("/review/queue?done=3")
    assert "Nothing to review right now" in r.text and "You answered 3 items" in r.text
    r = client.get("/review/queue?project=nope")
    assert r.status_code == 404 and "nope" in r.text and r.headers["content-type"].startswith("text/html")
