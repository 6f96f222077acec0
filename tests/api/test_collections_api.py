"""/api/v1/collections in-process with the stand-in face analyser of tests/core/test_collections.py:
collections, indexing in every input form, searches, users, and bad requests answered with the error
envelope (never a 500)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.core.test_collections import ANN, ANN2, BOB, EMPTY, GROUP, fake_faces
from visionloop.api.app import create_app
from visionloop.core.analyzing import Analysis
from visionloop.core.services import Services
from visionloop.settings import Settings

BASE = "/api/v1/collections"
NO_FACE_ID = "00000000-0000-0000-0000-000000000000"
JPEG = {"content-type": "image/jpeg"}
FACES = f"{BASE}/people/faces"


@pytest.fixture
def client(services: Services, settings: Settings) -> Iterator[TestClient]:
    app = create_app(services, settings)
    fake = fake_faces()
    app.state.analysis = Analysis(lambda kind: fake, workers=1)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    app.state.analysis.close()


def _index(client: TestClient, image: bytes, **params: str) -> str:
    r = client.post(
        f"{BASE}/people/faces", content=image, headers={"content-type": "image/jpeg"}, params=params
    )
    assert r.status_code == 201, r.text
    return str(r.json()["faces"][0]["face"]["face_id"])


def test_collections_faces_and_searches(client: TestClient, services: Services) -> None:
    r = client.post(BASE, json={"name": "people", "tags": {"team": "a"}})
    assert r.status_code == 201 and r.json()["face_model_version"] == "fake-faces-1"
    assert client.post(BASE, json={"name": "people"}).status_code == 409
    ann = _index(client, ANN, external_image_id="ann:1")
    services.buckets.create_bucket("photos")
    services.buckets.put("photos", "bob.jpg", BOB)
    by_ref = client.post(f"{BASE}/people/faces", json={"s3_object": {"bucket": "photos", "name": "bob.jpg"}})
    bob = by_ref.json()["faces"][0]["face"]["face_id"]
    group = client.post(
        f"{BASE}/people/faces", files={"file": ("g.jpg", GROUP, "image/jpeg")}, params={"max_faces": 1}
    )
    assert [u["reasons"] for u in group.json()["unindexed_faces"]] == [
        ["EXCEEDS_MAX_FACES"],
        ["SMALL_BOUNDING_BOX"],
    ]
    described = client.get(f"{BASE}/people").json()
    assert (described["face_count"], described["tags"]) == (3, {"team": "a"})
    assert [c["name"] for c in client.get(BASE).json()["collections"]] == ["people"]
    faces = client.get(f"{BASE}/people/faces", params={"limit": 2}).json()["faces"]
    assert [f["face_id"] for f in faces][:1] == [ann] and faces[0]["external_image_id"] == "ann:1"

    similar = client.get(f"{BASE}/people/faces/{ann}/matches").json()["matches"]
    assert len(similar) == 1 and similar[0]["similarity"] > 80  # the group's ann
    by_image = client.post(f"{BASE}/people/search", json={"image_base64": base64.b64encode(ANN2).decode()})
    assert by_image.status_code == 200 and by_image.json()["matches"][0]["face"]["face_id"] in {
        ann,
        similar[0]["face"]["face_id"],
    }
    assert by_image.json()["searched_face"]["embedding"] is None
    none = client.post(f"{BASE}/people/search", content=EMPTY, headers={"content-type": "image/jpeg"})
    assert none.status_code == 400 and "no faces" in none.json()["error"]["message"]

    assert client.delete(f"{BASE}/people/faces/{bob}").status_code == 204
    assert client.delete(f"{BASE}/people/faces/{bob}").status_code == 404
    assert client.delete(f"{BASE}/people").status_code == 204
    assert client.get(f"{BASE}/people").status_code == 404


def test_users(client: TestClient) -> None:
    client.post(BASE, json={"name": "people"})
    ann, ann2, bob = (_index(client, i) for i in (ANN, ANN2, BOB))
    assert client.post(f"{BASE}/people/users", json={"user_id": "ann"}).json()["status"] == "CREATED"
    assert client.post(f"{BASE}/people/users", json={"user_id": "ann"}).status_code == 409
    client.post(f"{BASE}/people/users/ann/faces", json={"face_ids": [ann]})  # the first face: no check
    r = client.post(f"{BASE}/people/users/ann/faces", json={"face_ids": [ann2, bob]}).json()
    assert r["face_ids"] == [ann2] and r["user_status"] == "ACTIVE"
    assert r["unsuccessful"][0]["reasons"] == ["LOW_MATCH_CONFIDENCE"]
    assert client.delete(f"{BASE}/people/faces/{ann}").status_code == 409
    users = client.get(f"{BASE}/people/users").json()["users"]
    assert users == [{"user_id": "ann", "status": "ACTIVE", "face_count": 2}]
    found = client.post(
        f"{BASE}/people/users/search", content=ANN, headers={"content-type": "image/jpeg"}
    ).json()
    assert [m["user"]["user_id"] for m in found["matches"]] == ["ann"]
    assert client.get(f"{BASE}/people/users/ann/matches").json()["matches"] == []
    removed = client.post(f"{BASE}/people/users/ann/faces/remove", json={"face_ids": [ann2]}).json()
    assert removed["face_ids"] == [ann2]
    assert client.delete(f"{BASE}/people/users/ann").status_code == 204
    assert client.delete(f"{BASE}/people/users/ann").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("post", BASE, {"json": {"name": "no spaces"}}, 400),
        ("post", BASE, {"json": {"name": "x", "extra": 1}}, 422),
        ("get", f"{BASE}/nobody", {}, 404),
        ("get", f"{BASE}/people/faces", {"params": {"user_id": "no spaces"}}, 400),
        ("get", f"{BASE}/people/faces/not-a-face/matches", {}, 400),
        ("get", f"{BASE}/people/faces/{NO_FACE_ID}/matches", {}, 404),
        ("get", f"{BASE}/people/faces/{NO_FACE_ID}/matches", {"params": {"threshold": 101}}, 400),
        ("post", FACES, {"content": b"junk", "headers": JPEG}, 400),
        ("post", FACES, {"content": ANN, "headers": JPEG, "params": {"quality_filter": "X"}}, 400),
        ("post", FACES, {"content": ANN, "headers": JPEG, "params": {"max_faces": 0}}, 400),
        ("post", f"{BASE}/people/users/ghost/faces", {"json": {"face_ids": [NO_FACE_ID]}}, 404),
        ("post", f"{BASE}/people/users/ghost/faces", {"json": {"face_ids": []}}, 422),
    ],
)  # fmt: skip
def test_bad_requests(
    client: TestClient, method: str, path: str, kwargs: dict[str, object], status: int
) -> None:
    client.post(BASE, json={"name": "people"})
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    assert "error" in r.json() or "detail" in r.json()
