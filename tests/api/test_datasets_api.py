"""The native datasets API in-process: uploads, imports, entries, relabelling, split, images, versions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.factories import image_bytes, photo_bytes, unique_colour, write_folder_dataset
from visionloop.api.app import create_app
from visionloop.core.services import Services
from visionloop.settings import Settings


@pytest.fixture
def client(services: Services, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    settings = settings.replace(import_roots=(str(tmp_path),))  # the tests' folders
    with TestClient(create_app(services, settings), raise_server_exceptions=False) as c:
        c.post("/api/v1/projects", json={"name": "p"})
        yield c


def upload(client: TestClient, data: bytes, labels: list[str], name: str = "a.jpg", type: str = "train"):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/projects/p/datasets/{type}/images",
        files={"file": (name, data, "image/jpeg")},
        data={"labels": labels},
    )


def test_upload_list_relabel_and_fetch(client: TestClient) -> None:
    r = upload(client, image_bytes(color=(1, 2, 3)), ["cat"])
    assert r.status_code == 201 and r.json()["labels"] == ["cat"] and r.json()["source"] == "upload"
    entry_id = r.json()["id"]
    assert upload(client, image_bytes(color=(1, 2, 3)), ["cat"]).status_code == 409
    assert upload(client, b"not an image", ["cat"]).status_code == 400
    r = upload(client, image_bytes(color=(9, 9, 9)), ["a", "b"])
    assert r.status_code == 400 and "single-label" in r.json()["error"]["message"]
    assert upload(client, image_bytes(color=(5, 5, 5)), [], type="validation").status_code == 400
    assert upload(client, image_bytes(5000, 100), ["x"]).status_code == 413

    r = client.get("/api/v1/projects/p/datasets/train/entries", params={"label": "cat"})
    assert r.json()["total"] == 1 and r.json()["entries"][0]["id"] == entry_id
    r = client.patch(f"/api/v1/projects/p/entries/{entry_id}", json={"labels": ["dog"]})
    assert r.status_code == 200 and r.json()["labels"] == ["dog"]
    assert (
        client.patch(f"/api/v1/projects/p/entries/{entry_id}", json={"labels": ["a", "b"]}).status_code == 400
    )
    assert client.patch("/api/v1/projects/p/entries/999", json={"labels": ["x"]}).status_code == 404
    r = client.get(f"/api/v1/projects/p/entries/{entry_id}/image")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    assert client.get("/api/v1/projects/p/datasets/train/entries", params={"limit": 0}).status_code == 422


def test_import_split_and_train_request(client: TestClient, tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "d", {"a": 6, "b": 6})
    r = client.post("/api/v1/projects/p/datasets/train/import", json={"source": str(root)})
    assert r.status_code == 200 and r.json()["imported"] == 12
    r = client.post("/api/v1/projects/p/datasets/train/import", json={"source": str(tmp_path / "none")})
    assert r.status_code == 404
    r = client.post("/api/v1/projects/p/datasets/train/import", json={"source": "x", "format": "zip"})
    assert r.status_code == 422
    r = client.post("/api/v1/projects/p/split", json={"seed": 1})
    assert {k: r.json()[k] for k in ("seed", "test_fraction", "train", "test", "groups")} == {
        "seed": 1,
        "test_fraction": 0.2,
        "train": 10,
        "test": 2,
        "groups": 1,  # flat-colour images look alike to the perceptual hash
    }
    assert len(r.json()["warnings"]) == 2  # one per label that is a single group
    assert client.post("/api/v1/projects/p/split", json={}).status_code == 409
    r = client.post("/api/v1/projects/p/versions", json={"version_name": "v1"})
    assert r.status_code == 202 and r.json()["version"]["status"] == "TRAINING_IN_PROGRESS"
    job = r.json()["job"]
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "QUEUED"
    assert client.post("/api/v1/projects/p/versions", json={"version_name": "v1"}).status_code == 409
    assert client.post("/api/v1/projects/p/versions", json={"mode": "turbo"}).status_code == 400
    assert [v["name"] for v in client.get("/api/v1/projects/p/versions").json()["versions"]] == ["v1"]
    assert client.get("/api/v1/projects/p/versions/v9").status_code == 404
    assert client.get("/api/v1/jobs/999").status_code == 404
    assert unique_colour(1) != unique_colour(2)


def test_import_with_groups_from_folders(client: TestClient, tmp_path: Path) -> None:
    root = tmp_path / "d"
    for n, folder in enumerate(["cat/home", "cat/home", "cat/park", "dog/park"]):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / f"p{'abcd'[n]}.jpg").write_bytes(photo_bytes(n))
    body = {"source": str(root), "groups_from_folders": True}
    r = client.post("/api/v1/projects/p/datasets/train/import", json=body)
    assert r.status_code == 200 and r.json()["imported"] == 4
    entries = client.get("/api/v1/projects/p/datasets/train/entries").json()["entries"]
    assert sorted((e["labels"][0], e["group"]) for e in entries) == [
        ("cat", "home"),
        ("cat", "home"),
        ("cat", "park"),
        ("dog", "park"),
    ]
    r = client.post(
        "/api/v1/projects/p/datasets/train/import", json={**body, "format": "manifest", "source": "s3://b/m"}
    )
    assert r.status_code == 400 and "folder imports only" in r.text


def test_a_detection_project_without_boxes_is_refused_before_anything_changes(client: TestClient) -> None:
    client.post("/api/v1/projects", json={"name": "det", "task": "object_detection"})
    for i in range(5):
        r = client.post(
            "/api/v1/projects/det/datasets/train/images",
            files={"file": (f"{i}.jpg", image_bytes(color=unique_colour(i)), "image/jpeg")},
        )
        assert r.status_code == 201, r.text
    r = client.post("/api/v1/projects/det/versions", json={})
    assert r.status_code == 400 and "no images with bounding boxes" in r.json()["error"]["message"]
    assert client.get("/api/v1/projects/det/versions").json()["versions"] == []
    assert client.get("/api/v1/projects/det/datasets/train/entries").json()["total"] == 5
    assert client.get("/api/v1/projects/det/datasets/test/entries").status_code == 404  # no split
