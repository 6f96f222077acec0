"""The console's Faces pages through the real app: collections created and deleted (with a confirmation),
the empty states, photos indexed (what was not indexed and why), faces and users managed, and a search
with the searched face's box drawn; every mistake answered on the page with its reason, never a 500.

A stand-in face analyser (core tests' faces by image) serves the tests that need no model; one test runs
the real face analyser on ../shared/datasets/faces photos (skipped without dlib or the dataset)."""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import shared_dataset
from tests.core.test_collections import ANN, ANN2, EMPTY, GROUP, fake_faces
from tests.factories import image_bytes
from tests.web.conftest import sign_in
from visionloop.core.analyzing import Analysis

SVG = "{http://www.w3.org/2000/svg}"
FACE_ID = re.compile(r"<code>([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})</code>")


@pytest.fixture
def stand_in(app: FastAPI) -> Iterator[None]:
    """The app's analysers: the stand-in face analyser, whose faces are chosen by image."""
    faces = fake_faces()
    app.state.analysis = Analysis(lambda kind: faces, workers=1)
    yield
    app.state.analysis.close()


def _post(client: TestClient, csrf: str, path: str, photo: bytes | None = None, **data: Any) -> Any:
    files = {"file": ("photo.jpg", photo, "image/jpeg")} if photo is not None else None
    return client.post(path, data={"csrf_token": csrf, **data}, files=files, follow_redirects=False)


def _error(html: str) -> str:
    found = re.search(r'id="error">([^<]*)<', html)
    assert found, "no error message on the page"
    return found.group(1)


def _boxes(html: str) -> list[ET.Element]:
    svg = re.search(r"<svg xmlns=.*?</svg>", html, re.S)
    assert svg, "no picture on the page"
    return ET.fromstring(svg.group(0)).findall(f".//{SVG}rect")


def test_collections_are_created_listed_and_deleted(client: TestClient, olga: str, stand_in: None) -> None:
    page = client.get("/console/faces")
    assert page.status_code == 200 and 'id="no-collections"' in page.text
    assert '<a href="/console/faces" aria-current="page">Faces</a>' in page.text
    bad = _post(client, olga, "/console/faces", name="no spaces")
    assert (
        bad.status_code == 400
        and "a collection id must match" in bad.text
        and 'value="no spaces"' in bad.text
    )
    r = _post(client, olga, "/console/faces", name="people")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/faces/people?notice=created")
    page = client.get(r.headers["location"])
    assert "Collection people was created." in page.text
    assert 'id="no-faces"' in page.text and 'id="no-users"' in page.text and "fake-faces-1" in page.text
    assert _post(client, olga, "/console/faces", name="people").status_code == 409
    listed = client.get("/console/faces").text
    assert '<a href="/console/faces/people">people</a>' in listed and "fake-faces-1" in listed

    confirm = client.get("/console/faces/people/delete")
    assert confirm.status_code == 200 and "Delete people?" in confirm.text
    wrong = _post(client, olga, "/console/faces/people/delete", confirm="nobody")
    assert wrong.status_code == 400 and "to confirm" in wrong.text
    assert client.get("/console/faces/people").status_code == 200  # still there
    gone = _post(client, olga, "/console/faces/people/delete", confirm="people")
    assert gone.status_code == 303 and "notice=deleted" in gone.headers["location"]
    assert "Collection people was deleted" in client.get(gone.headers["location"]).text
    assert client.get("/console/faces/people").status_code == 404
    assert client.get("/console/faces/people/delete").status_code == 404
    refused = client.post("/console/faces", data={"name": "x"}, follow_redirects=False)  # no CSRF token
    assert refused.status_code == 403 and "Form refused" in refused.text


def test_bad_uploads_and_values_are_answered_on_the_page(
    client: TestClient, olga: str, stand_in: None
) -> None:
    _post(client, olga, "/console/faces", name="people")
    base = "/console/faces/people"
    cases = [
        ("/index", None, {}, 400, "choose a photo first"),
        ("/index", b"not an image", {}, 400, "image"),
        ("/index", b"", {}, 400, "the image is empty"),
        ("/index", ANN, {"max_faces": "many"}, 400, "MaxFaces must be a whole number"),
        ("/index", ANN, {"max_faces": "0"}, 400, "max_faces must be an integer from 1 to 100"),
        ("/index", ANN, {"quality_filter": "BEST"}, 400, "BEST"),
        ("/index", ANN, {"external_image_id": "a b"}, 400, "external_image_id must match"),
        ("/search", None, {}, 400, "choose a photo first"),
        ("/search", EMPTY, {}, 400, "There are no faces in the image"),
        ("/search", ANN, {"threshold": "high"}, 400, "must be a number from 0 to 100"),
        ("/search", ANN, {"threshold": "nan"}, 400, "must be a number from 0 to 100"),
        ("/search", ANN, {"threshold": "120"}, 400, "face_match_threshold must be a number from 0 to 100"),
        ("/search", ANN, {"max_faces": "-1"}, 400, "max_faces must be an integer"),
        ("/search", image_bytes(60, 60), {}, 400, "image"),  # under the 80 pixels a side
        ("/users/associate", None, {"user_id": "ann"}, 400, "tick the faces"),
        ("/users/associate", None, {"face_id": "x"}, 400, "choose a user first"),
        ("/users", None, {"user_id": "no spaces"}, 400, "a user id must match"),
        ("/users/delete", None, {"user_id": "nobody"}, 404, "nobody"),
        ("/faces/delete", None, {"face_id": "not-a-face"}, 400, "a face id must match"),
    ]
    for path, photo, data, status, text in cases:
        r = _post(client, olga, base + path, photo, **data)
        assert (r.status_code, text in _error(r.text)) == (status, True), (path, data, _error(r.text))
    big = _post(client, olga, base + "/index", b"\xff" * (5 * 1024 * 1024 + 10))
    assert big.status_code == 413 and "the limit is" in _error(big.text)
    missing = _post(client, olga, "/console/faces/nobody/index", ANN)
    assert missing.status_code == 404 and "does not exist" in missing.text


def test_index_search_users_and_faces(client: TestClient, olga: str, stand_in: None) -> None:
    _post(client, olga, "/console/faces", name="people")
    base = "/console/faces/people"
    group = _post(client, olga, base + "/index", GROUP, max_faces="1", external_image_id="group.jpg")
    assert group.status_code == 200, group.text
    assert "Indexed 1 face" in group.text and "EXCEEDS_MAX_FACES" in group.text
    assert "SMALL_BOUNDING_BOX" in group.text  # the tiny third face
    assert len(_boxes(group.text)) == 3  # the indexed face and the two left out
    index_form, search_form = group.text.split('id="index-form"')[1].split('id="search-form"')
    assert 'name="max_faces" value="1"' in index_form and 'value="group.jpg"' in index_form
    assert 'name="max_faces" value="10"' in search_form  # the search form keeps its own default
    ann = _post(client, olga, base + "/index", ANN, external_image_id="ann.jpg")
    [ann_id] = FACE_ID.findall(ann.text.split('id="indexed"')[1].split("</section>")[0])

    found = _post(client, olga, base + "/search", ANN2, threshold="90", max_faces="5")
    assert found.status_code == 200 and "2 matching faces" in found.text
    matches = found.text.split('id="matches"')[1].split("</section>")[0]
    assert ann_id in FACE_ID.findall(matches) and "ann.jpg" in matches and "group.jpg" in matches
    [searched] = _boxes(found.text)
    assert float(searched.get("width", 0)) > 0
    strict = _post(client, olga, base + "/search", ANN2, threshold="100")
    assert "0 matching faces" in strict.text and "No face of the collection is that similar" in strict.text

    assert _post(client, olga, base + "/users", user_id="ann").status_code == 303
    assert _post(client, olga, base + "/users", user_id="ann").status_code == 409
    done = _post(client, olga, base + "/users/associate", user_id="ann", face_id=[ann_id])
    assert done.status_code == 200 and "Associated 1 face" in done.text and "now active" in done.text
    held = _post(client, olga, base + "/faces/delete", face_id=ann_id)
    assert held.status_code == 409 and "belongs to the user ann" in _error(held.text)
    undone = _post(client, olga, base + "/users/disassociate", user_id="ann", face_id=[ann_id])
    assert "Disassociated 1 face" in undone.text and "now created" in undone.text
    gone = _post(client, olga, base + "/faces/delete", face_id=ann_id)
    assert gone.status_code == 303
    page = client.get(gone.headers["location"]).text
    assert f"Face {ann_id} was deleted." in page and page.count("<code>") == 1 + 1  # model, group's face
    again = _post(client, olga, base + "/faces/delete", face_id=ann_id)
    assert again.status_code == 404 and "is not in the collection" in _error(again.text)
    deleted = _post(client, olga, base + "/users/delete", user_id="ann")
    assert deleted.status_code == 303 and 'id="no-users"' in client.get(deleted.headers["location"]).text


def test_faces_are_paged(
    client: TestClient, olga: str, stand_in: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from visionloop.web.console import faces

    monkeypatch.setattr(faces, "PAGE", 2)
    _post(client, olga, "/console/faces", name="people")
    for photo in (ANN, ANN2, GROUP):  # 1 + 1 + 2 faces (the tiny one is left out)
        _post(client, olga, "/console/faces/people/index", photo)
    first = client.get("/console/faces/people").text
    assert "faces 1–2 of 4" in first and "?offset=2" in first and 'rel="prev"' not in first
    last = client.get("/console/faces/people?offset=2").text
    assert "faces 3–4 of 4" in last and 'rel="next"' not in last and "?offset=0" in last
    assert client.get("/console/faces/people?offset=99999999999999999999").status_code in (200, 400)


def test_the_real_face_analyser_finds_the_same_person(client: TestClient, olga: str) -> None:
    """Index one photo each of two people, search with another photo of the first: found, the second not."""
    if importlib.util.find_spec("dlib") is None:
        pytest.skip("the [faces] extra (dlib-bin) is not installed")
    folder = shared_dataset("faces")
    base = "/console/faces/people"
    assert _post(client, olga, "/console/faces", name="people").status_code == 303
    for person, photo in (("person_01", "img1.jpg"), ("person_03", "img47.jpg")):
        r = _post(
            client, olga, base + "/index", (folder / person / photo).read_bytes(), external_image_id=person
        )
        assert r.status_code == 200 and "Indexed 1 face" in r.text, r.text[-2000:]
    found = _post(client, olga, base + "/search", (folder / "person_01" / "img2.jpg").read_bytes())
    assert found.status_code == 200, found.text[-2000:]
    matches = found.text.split('id="matches"')[1].split("</section>")[0]
    assert "1 matching face" in found.text and "person_01" in matches and "person_03" not in matches
    similarity = float(re.findall(r'class="num">([\d.]+)%</td>', matches)[0])
    assert similarity >= 80
    assert len(_boxes(found.text)) == 1
    none = _post(client, olga, base + "/search", image_bytes(400, 300))
    assert none.status_code == 400 and "There are no faces in the image" in _error(none.text)


def test_the_pages_are_for_signed_in_operators(client: TestClient) -> None:
    r = client.get("/console/faces/people")
    assert r.status_code == 303 and r.headers["location"].startswith("/review/sign-in?next=/console/faces")
    sign_in(client, "alice")  # a reviewer
    for path in ("/console/faces", "/console/faces/people", "/console/faces/people/delete"):
        r = client.get(path)
        assert r.status_code == 403 and "Operators only" in r.text, path
