"""POST /api/v1/faces/detect and /compare in-process with the real face models: every input form, options
from the query and the JSON body, and bad requests answered with the error envelope (never a 500)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import shared_dataset
from tests.factories import image_bytes
from visionloop.analysis.registry import create_analyser
from visionloop.api.app import create_app
from visionloop.core.analyzing import Analysis
from visionloop.core.services import Services
from visionloop.settings import Settings

pytest.importorskip("dlib", reason="the [faces] extra (dlib-bin) is not installed")
NO_FACE = image_bytes(320, 240, (90, 140, 200))


@pytest.fixture(scope="module")
def photos() -> tuple[bytes, bytes, bytes]:
    """Two photos of one person and one of another."""
    folder = shared_dataset("faces")
    return tuple(
        (folder / n).read_bytes() for n in ("person_01/img1.jpg", "person_01/img2.jpg", "person_03/img47.jpg")
    )  # type: ignore[return-value]


@pytest.fixture
def client(services: Services, settings: Settings) -> Iterator[TestClient]:
    app = create_app(services, settings)
    app.state.analysis = Analysis(create_analyser, workers=1)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    app.state.analysis.close()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_detect_every_input_form(client: TestClient, services: Services, photos: tuple[bytes, ...]) -> None:
    services.buckets.create_bucket("people")
    services.buckets.put("people", "a.jpg", photos[0])
    answers = [
        client.post("/api/v1/faces/detect", content=photos[0], headers={"content-type": "image/jpeg"}),
        client.post("/api/v1/faces/detect", files={"file": ("a.jpg", photos[0], "image/jpeg")}),
        client.post("/api/v1/faces/detect", json={"image_base64": _b64(photos[0])}),
        client.post("/api/v1/faces/detect", json={"s3_object": {"bucket": "people", "name": "a.jpg"}}),
    ]
    for r in answers:
        assert r.status_code == 200, r.text
        [face] = r.json()["faces"]
        assert face["confidence"] > 99 and len(face["landmarks"]) == 30 and face["attributes"] == []
        assert r.json()["model_version"].startswith("visionloop-faces-")
    assert len({str(r.json()) for r in answers}) == 1
    every = client.post(
        "/api/v1/faces/detect?attributes=ALL", content=photos[0], headers={"content-type": "image/jpeg"}
    )
    assert [a["name"] for a in every.json()["faces"][0]["attributes"]] == ["Gender", "EyesOpen", "MouthOpen"]
    body = client.post(
        "/api/v1/faces/detect?attributes=ALL",
        json={"image_base64": _b64(photos[0]), "attributes": ["EYES_OPEN"]},
    )
    assert [a["name"] for a in body.json()["faces"][0]["attributes"]] == ["EyesOpen"]  # the body wins
    none = client.post("/api/v1/faces/detect", content=NO_FACE, headers={"content-type": "image/jpeg"})
    assert none.status_code == 200 and none.json()["faces"] == []


def test_compare(client: TestClient, services: Services, photos: tuple[bytes, ...]) -> None:
    form = {"source": ("a.jpg", photos[0], "image/jpeg"), "target": ("b.jpg", photos[1], "image/jpeg")}
    r = client.post("/api/v1/faces/compare", files=form)
    assert r.status_code == 200, r.text
    [match] = r.json()["face_matches"]
    assert match["similarity"] >= 80 and r.json()["unmatched_faces"] == []
    assert r.json()["source_face"]["confidence"] > 99
    services.buckets.create_bucket("people2")
    services.buckets.put("people2", "a.jpg", photos[0])
    body = {
        "source": {"s3_object": {"bucket": "people2", "name": "a.jpg"}},
        "target": {"image_base64": _b64(photos[2])},
    }
    other = client.post("/api/v1/faces/compare", json=body)
    assert other.status_code == 200 and other.json()["face_matches"] == []
    assert len(other.json()["unmatched_faces"]) == 1
    loose = client.post("/api/v1/faces/compare?similarity_threshold=0", json=body)
    assert len(loose.json()["face_matches"]) == 1 and loose.json()["face_matches"][0]["similarity"] < 80
    strict = client.post(
        "/api/v1/faces/compare?similarity_threshold=0", json={**body, "similarity_threshold": 90}
    )
    assert strict.json()["face_matches"] == []  # the body wins


def test_bad_requests(client: TestClient, photos: tuple[bytes, ...]) -> None:
    face = {"image_base64": _b64(photos[0])}
    cases = [
        ("/api/v1/faces/compare", {"json": {"source": {"image_base64": _b64(NO_FACE)}, "target": face}}, 400),
        ("/api/v1/faces/compare", {"json": {"source": face, "target": {"image_base64": _b64(NO_FACE)}}}, 400),
        ("/api/v1/faces/compare", {"json": {"source": face, "target": face, "quality_filter": "BEST"}}, 400),
        (
            "/api/v1/faces/compare",
            {"json": {"source": face, "target": face, "similarity_threshold": 101}},
            400,
        ),
        ("/api/v1/faces/compare", {"json": {"source": face, "target": {}}}, 400),
        ("/api/v1/faces/compare", {"json": {"source": face}}, 422),
        ("/api/v1/faces/compare", {"files": {"source": ("a.jpg", photos[0], "image/jpeg")}}, 400),
        ("/api/v1/faces/compare", {"content": photos[0], "headers": {"content-type": "image/jpeg"}}, 400),
        (
            "/api/v1/faces/compare",
            {"json": {"source": face, "target": {"s3_object": {"bucket": "nope", "name": "x.jpg"}}}},
            404,
        ),
        (
            "/api/v1/faces/detect?attributes=AGE",
            {"content": photos[0], "headers": {"content-type": "image/jpeg"}},
            400,
        ),
        (
            "/api/v1/faces/detect",
            {"content": b"not an image", "headers": {"content-type": "image/jpeg"}},
            400,
        ),
        (
            "/api/v1/faces/detect",
            {"content": image_bytes(60, 60), "headers": {"content-type": "image/jpeg"}},
            400,
        ),
    ]
    for url, kwargs, status in cases:
        r = client.post(url, **kwargs)  # type: ignore[arg-type]
        assert r.status_code == status, (url, kwargs.keys(), r.status_code, r.text)
        assert "error" in r.json() or "detail" in r.json(), r.text
