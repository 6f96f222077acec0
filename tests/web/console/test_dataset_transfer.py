"""The dataset page's files in and out, through the app: a dataset's manifest downloaded and uploaded to
another project gives the same images with the same labels; a COCO file uploaded with its images (or in
their folder) adds them with their boxes, an image not sent is reported, a COCO file over
max_import_file_mb or not COCO is refused with a page saying why, and nothing is added then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.factories import (
    classification_line,
    image_bytes,
    make_project,
    unique_colour,
    write_folder_dataset,
)
from visionloop.core.datasets import import_folder
from visionloop.core.entities import DatasetType, TaskType
from visionloop.core.services import Services
from visionloop.settings import Settings, load_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"data_dir": str(tmp_path / "var"), "max_import_file_mb": 0.01}, environ={})


def _entries(svc: Services, project: str, kind: DatasetType = DatasetType.TRAIN) -> set[tuple[object, ...]]:
    p = svc.repo.get_project(project)
    ds = svc.repo.find_dataset(p.id, kind)
    assert ds is not None
    return {
        (e.content_hash, e.labels, tuple((b.label, round(b.left, 6), round(b.width, 6)) for b in e.boxes))
        for e in svc.repo.list_entries(ds.id)
    }


def test_an_exported_manifest_uploaded_to_another_project_gives_the_same_images(
    client: TestClient, olga: str, services: Services, tmp_path: Path
) -> None:
    make_project(services, "a")
    folder = write_folder_dataset(tmp_path / "imgs", {"cat": 3, "dog": 2})
    (folder / "loose.jpg").write_bytes(image_bytes(color=unique_colour(99)))
    assert import_folder(services, "a", str(folder)).imported == 6
    page = client.get("/console/projects/a/datasets/train")
    assert 'href="/console/projects/a/datasets/train/export"' in page.text

    r = client.get("/console/projects/a/datasets/train/export")
    assert (
        r.status_code == 200 and r.headers["content-disposition"] == 'attachment; filename="a-train.manifest"'
    )
    assert len(r.text.splitlines()) == 6

    make_project(services, "b")
    done = client.post(
        "/console/projects/b/datasets/train/manifest",
        data={"csrf_token": olga},
        files={"manifest": ("a-train.manifest", r.content, "application/octet-stream")},
    )
    assert done.status_code == 200 and "6" in done.text
    assert _entries(services, "b") == _entries(services, "a")


def test_the_export_of_a_dataset_the_project_lacks_is_not_found(
    client: TestClient, olga: str, services: Services
) -> None:
    make_project(services, "a")
    r = client.get("/console/projects/a/datasets/test/export")
    assert r.status_code == 404 and "no TEST dataset" in r.text
    assert client.get("/console/projects/a/datasets/valid/export").status_code == 404


def _coco(names: list[str]) -> bytes:
    return json.dumps(
        {
            "images": [{"id": i, "file_name": n, "width": 96, "height": 80} for i, n in enumerate(names)],
            "annotations": [
                {"id": i, "image_id": i, "category_id": 1, "bbox": [8, 8, 40, 30]} for i in range(len(names))
            ],
            "categories": [{"id": 1, "name": "logo"}],
        }
    ).encode()


def test_a_coco_file_uploaded_with_its_images_adds_them_with_their_boxes(
    client: TestClient, olga: str, services: Services
) -> None:
    make_project(services, "det", TaskType.DETECTION)
    assert 'id="import-coco"' in client.get("/console/projects/det/datasets/train").text
    one, two = image_bytes(96, 80, color=unique_colour(1)), image_bytes(96, 80, color=unique_colour(2))
    r = client.post(
        "/console/projects/det/datasets/train/coco",
        data={"csrf_token": olga},
        files=[
            ("coco", ("annotations.json", _coco(["images/1.jpg", "2.jpg", "3.jpg"]), "application/json")),
            ("images", ("shots/images/1.jpg", one, "image/jpeg")),
            ("images", ("shots/2.jpg", two, "image/jpeg")),
        ],
    )
    assert r.status_code == 200, r.text
    assert "3.jpg" in r.text and "not among the uploaded images" in r.text
    found = _entries(services, "det")
    assert len(found) == 2 and all(boxes == (("logo", 0.083333, 0.416667),) for _, _, boxes in found)


def test_a_folder_holding_the_coco_file_and_its_images(
    client: TestClient, olga: str, services: Services
) -> None:
    make_project(services, "det", TaskType.DETECTION)
    r = client.post(
        "/console/projects/det/datasets/test/coco",
        data={"csrf_token": olga},
        files=[
            ("images", ("set/coco.json", _coco(["a.jpg"]), "application/json")),
            ("images", ("set/a.jpg", image_bytes(96, 80, color=unique_colour(3)), "image/jpeg")),
        ],
    )
    assert r.status_code == 200, r.text
    assert len(_entries(services, "det", DatasetType.TEST)) == 1


@pytest.mark.parametrize(
    ("coco", "status", "words"),
    [
        (b"x" * 20_000, 400, "larger than the limit"),
        (b"not json", 400, "not valid JSON"),
        (b'{"annotations": []}', 400, "no &#39;images&#39; list"),
        (b'{"images": [], "categories": 5}', 400, "&#39;categories&#39; must be a list"),
        (b'{"images": [], "annotations": 5}', 400, "&#39;annotations&#39; must be a list"),
    ],
)
def test_a_coco_file_that_cannot_be_used_is_refused(
    client: TestClient, olga: str, services: Services, coco: bytes, status: int, words: str
) -> None:
    make_project(services, "det", TaskType.DETECTION)
    r = client.post(
        "/console/projects/det/datasets/train/coco",
        data={"csrf_token": olga},
        files=[("coco", ("c.json", coco, "application/json"))],
    )
    assert r.status_code == status and words in r.text
    p = services.repo.get_project("det")
    ds = services.repo.find_dataset(p.id, DatasetType.TRAIN)
    assert ds is None or services.repo.count_entries(ds.id) == 0


@pytest.mark.parametrize(
    "doc",
    [
        {"images": [{"id": [1], "file_name": "a.jpg"}], "annotations": [], "categories": []},
        {
            "images": [{"id": 1, "file_name": "a.jpg"}],
            "annotations": [{"image_id": [1], "category_id": 1, "bbox": [1, 1, 2, 2]}],
            "categories": [{"id": 1, "name": "logo"}],
        },
        {
            "images": [{"id": 1, "file_name": "a.jpg"}],
            "annotations": [{"image_id": 1, "category_id": 1, "bbox": [10**400, 1, 2, 2]}],
            "categories": [{"id": 1, "name": "logo"}],
        },
    ],
)
def test_coco_ids_and_boxes_that_cannot_be_used_are_reported_not_crashed_on(
    client: TestClient, olga: str, services: Services, doc: dict[str, object]
) -> None:
    make_project(services, "det", TaskType.DETECTION)
    r = client.post(
        "/console/projects/det/datasets/train/coco",
        data={"csrf_token": olga},
        files=[("coco", ("c.json", json.dumps(doc).encode(), "application/json"))],
    )
    assert r.status_code in (200, 303, 400), r.text
    ds = services.repo.find_dataset(services.repo.get_project("det").id, DatasetType.TRAIN)
    assert ds is None or services.repo.count_entries(ds.id) == 0


def test_a_coco_import_without_a_coco_file_says_what_to_choose(
    client: TestClient, olga: str, services: Services
) -> None:
    make_project(services, "det", TaskType.DETECTION)
    r = client.post("/console/projects/det/datasets/train/coco", data={"csrf_token": olga})
    assert r.status_code == 400 and "choose the COCO file" in r.text


def test_a_manifest_uploaded_with_its_images_puts_them_where_its_lines_name_them(
    client: TestClient, olga: str, services: Services
) -> None:
    make_project(services, "m")
    cat, dog, other = (image_bytes(color=unique_colour(20 + i)) for i in range(3))
    services.buckets.create_bucket("photos")
    services.buckets.put("photos", "taken.jpg", other)  # a different image already there: kept
    lines = [
        classification_line("s3://photos/pets/cat.jpg", "cat"),
        classification_line("s3://photos/dog.jpg", "dog"),
        classification_line("s3://photos/taken.jpg", "cat"),
        classification_line("s3://photos/absent.jpg", "dog"),
    ]
    text = "".join(line + "\n" for line in lines)
    r = client.post(
        "/console/projects/m/datasets/train/manifest",
        data={"csrf_token": olga},
        files=[
            ("manifest", ("train.manifest", text.encode(), "application/octet-stream")),
            ("images", ("mine/pets/cat.jpg", cat, "image/jpeg")),
            ("images", ("mine/dog.jpg", dog, "image/jpeg")),
            ("images", ("mine/taken.jpg", dog, "image/jpeg")),
        ],
    )
    assert r.status_code == 200, r.text
    assert "already holds another image" in r.text and "absent.jpg" in r.text
    assert (
        services.buckets.get("photos", "pets/cat.jpg") == cat
        and services.buckets.get("photos", "dog.jpg") == dog
    )
    assert services.buckets.get("photos", "taken.jpg") == other
    p = services.repo.get_project("m")
    ds = services.repo.find_dataset(p.id, DatasetType.TRAIN)
    assert ds is not None
    imported = {e.source_ref: e.labels for e in services.repo.list_entries(ds.id)}
    assert imported == {
        "s3://photos/pets/cat.jpg": ("cat",),
        "s3://photos/dog.jpg": ("dog",),
        "s3://photos/taken.jpg": ("cat",),
    }


def test_images_without_their_manifest_are_refused(client: TestClient, olga: str, services: Services) -> None:
    make_project(services, "m")
    r = client.post(
        "/console/projects/m/datasets/train/manifest",
        data={"csrf_token": olga, "location": "s3://photos/train.manifest"},
        files=[("images", ("a.jpg", image_bytes(), "image/jpeg"))],
    )
    assert r.status_code == 400 and "choose the manifest file the images go with" in r.text
    assert services.buckets.list_buckets() == [] or "photos" not in services.buckets.list_buckets()
