"""The console's projects and dataset browser in-process: create and delete projects, upload images (files,
folders with their folders' names as labels, bad files), filters and counts, labels on one or many images,
boxes, removing images, manifests, and every failure as a page with its status."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from tests.core.test_projects import version_in
from tests.factories import classification_line, image_bytes, make_project, unique_colour
from tests.web.conftest import PASSWORD, sign_in
from visionloop.core.accounts import Accounts, Role, add_reviewer
from visionloop.core.entities import DatasetEntry, DatasetType, EntrySource, TaskType, VersionStatus
from visionloop.core.services import Services
from visionloop.web.console.datasets import PAGE_SIZE, UPLOAD_CHUNK, folder_label


@pytest.fixture
def token(client: TestClient, accounts: Accounts) -> str:
    add_reviewer(accounts, "olga", PASSWORD, Role.OPERATOR)
    return sign_in(client, "olga")


def jpeg(i: int) -> bytes:
    return image_bytes(color=unique_colour(1000 + i))


def upload(
    client: TestClient,
    token: str,
    files: list[tuple[str, bytes]],
    project: str = "logos",
    kind: str = "train",
    fetch: bool = True,
    **form: str,
) -> Response:
    headers = {"X-Requested-With": "fetch"} if fetch else {}
    return client.post(
        f"/console/projects/{project}/datasets/{kind}/upload",
        data={"csrf_token": token, **form},
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
        headers=headers,
    )


def entries(
    svc: Services, project: str = "logos", kind: DatasetType = DatasetType.TRAIN
) -> list[DatasetEntry]:
    p = svc.repo.get_project(project)
    ds = svc.repo.find_dataset(p.id, kind)
    return [] if ds is None else svc.repo.list_entries(ds.id)


def test_create_a_project_then_delete_it(client: TestClient, services: Services, token: str) -> None:
    r = client.post(
        "/console/projects", data={"csrf_token": token, "name": "logos", "task": "object_detection"}
    )
    assert (
        r.status_code == 303
        and r.headers["location"] == "/console/projects/logos/datasets/train?notice=created"
    )
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and "The project is ready" in page.text and "object detection" in page.text
    assert services.repo.get_project("logos").task is TaskType.DETECTION
    listing = client.get("/console/projects")
    assert "logos" in listing.text and "no model yet" in listing.text
    for name, task, status, words in [
        ("logos", "classification", 409, "already exists"),
        ("two words", "classification", 400, "invalid project name"),
        ("fine", "sorting", 400, "unknown task"),
    ]:
        r = client.post("/console/projects", data={"csrf_token": token, "name": name, "task": task})
        assert r.status_code == status and words in r.text and 'id="create-error"' in r.text
        assert f'value="{name}"' in r.text  # what was typed stays
    page = client.get("/console/projects/logos/delete")
    assert page.status_code == 200 and "Type <code>logos</code> to confirm" in page.text
    r = client.post("/console/projects/logos/delete", data={"csrf_token": token, "confirm": "Logos"})
    assert r.status_code == 400 and "to confirm" in r.text
    assert services.repo.list_projects()
    r = client.post("/console/projects/logos/delete", data={"csrf_token": token, "confirm": "logos"})
    assert r.status_code == 303 and r.headers["location"] == "/console/projects?notice=deleted&name=logos"
    assert "Project logos was deleted." in client.get(r.headers["location"]).text
    assert services.repo.list_projects() == []
    r = client.get("/console/projects/logos/datasets/train")
    assert r.status_code == 404 and "does not exist" in r.text and "Back to the console" in r.text


def test_delete_is_refused_while_a_version_trains_or_runs(
    client: TestClient, services: Services, token: str
) -> None:
    make_project(services, "logos")
    for status in (VersionStatus.TRAINING_IN_PROGRESS, VersionStatus.RUNNING):
        version = version_in(services, "logos", status, name=status.value.lower())
        r = client.post("/console/projects/logos/delete", data={"csrf_token": token, "confirm": "logos"})
        assert r.status_code == 409 and f"is {status.value}: stop it" in r.text and "<html" in r.text
        assert services.repo.get_project("logos")
        services.repo.update_version(version.id, status=VersionStatus.STOPPED)
    r = client.post("/console/projects/logos/delete", data={"csrf_token": token, "confirm": "logos"})
    assert r.status_code == 303 and services.repo.list_projects() == []


def test_upload_files_and_folders(client: TestClient, services: Services, token: str) -> None:
    make_project(services, "logos")
    folder = [
        (f"pictures/{label}/{i}.jpg", jpeg(n))
        for n, (label, i) in enumerate([("amazon_logo", 1), ("amazon_logo", 2), ("aws_logo", 1)])
    ]
    r = upload(client, token, folder, labels_from="folder")
    assert r.status_code == 200
    report = r.json()
    assert (
        report["imported"] == 3 and report["failed"] == 0 and report["labels"] == ["amazon_logo", "aws_logo"]
    )
    found = entries(services)
    assert sorted(e.labels for e in found) == [("amazon_logo",), ("amazon_logo",), ("aws_logo",)]
    assert {e.source for e in found} == {EntrySource.UPLOAD}
    assert found[0].source_ref == "upload:pictures/amazon_logo/1.jpg"

    # one chosen label; a duplicate, a text file, an empty file, a too-large one and a sneaky path
    files = [
        ("../../etc/x.png", jpeg(10)),
        ("b.jpg", jpeg(11)),
        ("again.jpg", jpeg(0)),
        ("notes.txt", b"not an image"),
        ("empty.jpg", b""),
    ]
    r = upload(client, token, files, labels_from="chosen", label="aws_logo")
    report = r.json()
    assert report["imported"] == 2 and report["skipped"] == 1 and report["failed"] == 2
    texts = {i["ref"]: i["text"] for i in report["issues"]}
    assert "already in the project" in texts["again.jpg"]
    assert texts["notes.txt"] and texts["empty.jpg"]
    assert any(e.source_ref == "upload:etc/x.png" and e.labels == ("aws_logo",) for e in entries(services))

    # unlabelled, into TEST
    r = upload(client, token, [("c.jpg", jpeg(12))], kind="test", labels_from="none")
    assert r.json()["imported"] == 1
    assert entries(services, kind=DatasetType.TEST)[0].labels == ()


def test_bad_uploads_get_clear_pages(client: TestClient, services: Services, token: str) -> None:
    make_project(services, "logos")
    r = client.post("/console/projects/logos/datasets/train/upload", data={"csrf_token": token})
    assert r.status_code == 400 and "choose one or more JPEG or PNG images" in r.text
    r = upload(client, token, [("a.jpg", jpeg(1))], labels_from="chosen", label=" ", fetch=False)
    assert r.status_code == 400 and "type the label" in r.text
    # a plain form post (no script) gets a report page; nothing added → 400
    r = upload(client, token, [("x.txt", b"hello"), ("y.png", b"\x89PNG\r\n")], fetch=False)
    assert r.status_code == 400 and "0 images added" in r.text
    assert "x.txt" in r.text and "y.png" in r.text and 'id="issues"' in r.text
    r = upload(client, token, [("ok/a.jpg", jpeg(2))], fetch=False)
    assert r.status_code == 200 and "1 image added" in r.text
    assert upload(client, token, [("a.jpg", jpeg(3))], project="nope").status_code == 404
    assert upload(client, token, [("a.jpg", jpeg(3))], kind="validation").status_code == 404
    r = upload(client, token, [("big.jpg", b"\xff" * (15 * 1024 * 1024 + 1))])
    assert r.json()["failed"] == 1 and "larger than" in r.json()["issues"][0]["text"]
    r = client.post(
        "/console/projects/logos/datasets/train/upload",
        data={"csrf_token": "forged"},
        files=[("files", ("a.jpg", jpeg(4), "image/jpeg"))],
    )
    assert r.status_code == 403 and "Form refused" in r.text
    assert len(entries(services)) == 1


def test_browse_filter_count_and_page(client: TestClient, services: Services, token: str) -> None:
    make_project(services, "logos", TaskType.MULTI_LABEL)
    files = [(f"apple/{i}.jpg", jpeg(i)) for i in range(PAGE_SIZE + 2)] + [("loose.jpg", jpeg(99))]
    for start in range(0, len(files), 20):
        upload(client, token, files[start : start + 20])
    page = client.get("/console/projects/logos/datasets/train")
    assert page.status_code == 200
    assert page.text.count('<li class="thumb') == PAGE_SIZE and "page 1 of 2" in page.text
    counts = re.sub(r"\s+", " ", page.text)
    assert f'images</th><td class="num">{PAGE_SIZE + 3}' in counts
    assert (
        'unlabelled</th><td class="num">1<' in counts
        and f'>apple</a></td> <td class="num">{PAGE_SIZE + 2}<' in counts
    )
    second = client.get("/console/projects/logos/datasets/train?page=2")
    assert second.text.count('<li class="thumb') == 3 and 'rel="prev"' in second.text
    only = client.get("/console/projects/logos/datasets/train?state=unlabelled")
    assert only.text.count('<li class="thumb') == 1 and "<em>unlabelled</em>" in only.text
    assert client.get("/console/projects/logos/datasets/train?label=pear").text.count('<li class="thumb') == 0
    assert (
        client.get("/console/projects/logos/datasets/train?source=import").text.count('<li class="thumb') == 0
    )
    assert client.get("/console/projects/logos/datasets/train?page=x").status_code == 400
    first = entries(services)[0]
    thumb = client.get(f"/console/projects/logos/entries/{first.id}/thumb")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    full = client.get(f"/console/projects/logos/entries/{first.id}/image")
    assert full.content == jpeg(0)
    empty = client.get("/console/projects/logos/datasets/test")
    assert empty.status_code == 200 and "No images yet" in empty.text


def test_labels_on_many_then_one_image_and_removing_outliers(
    client: TestClient, services: Services, token: str
) -> None:
    make_project(services, "logos", TaskType.MULTI_LABEL)
    upload(client, token, [(f"{i}.jpg", jpeg(i)) for i in range(4)], labels_from="none")
    ids = [e.id for e in entries(services)]
    back = "/console/projects/logos/datasets/train?state=unlabelled"

    def bulk(action: str, label: str = "", chosen: list[int] = ids[:3]) -> Response:  # noqa: B006
        data = {
            "csrf_token": token,
            "action": action,
            "label": label,
            "back": back,
            "entry": [str(i) for i in chosen],
        }
        return client.post("/console/projects/logos/datasets/train/entries", data=data)

    r = bulk("set", "apple")
    assert r.status_code == 303 and r.headers["location"] == back + "&notice=changed&n=3"
    assert "3 images changed." in client.get(r.headers["location"]).text
    bulk("add", "red", ids[:2])
    assert [e.labels for e in entries(services)] == [("apple", "red"), ("apple", "red"), ("apple",), ()]
    r = bulk("add", "red", ids[:2])
    assert "notice=unchanged" in r.headers["location"]
    bulk("unset", "apple")
    bulk("clear", chosen=ids[1:2])
    assert [e.labels for e in entries(services)] == [("red",), (), (), ()]
    assert bulk("set", "").status_code == 400
    assert bulk("paint", "x").status_code == 400
    assert bulk("set", "x", []).status_code == 400
    make_project(services, "other")
    other = upload(client, token, [("o.jpg", jpeg(50))], project="other").json()
    assert other["imported"] == 1
    foreign = entries(services, "other")[0].id
    r = bulk("set", "x", [ids[0], foreign])
    assert r.status_code == 404 and "not in project" in r.text
    assert entries(services)[0].labels == ("red",)  # nothing changed
    # a hostile "back" stays inside the project's pages
    r = client.post(
        "/console/projects/logos/datasets/train/entries",
        data={
            "csrf_token": token,
            "action": "add",
            "label": "red",
            "back": "https://evil.example/",
            "entry": [str(ids[0])],
        },
    )
    assert r.headers["location"].startswith("/console/projects/logos/datasets/train?")

    # one image: its page, its labels
    page = client.get(f"/console/projects/logos/entries/{ids[0]}?back={back}")
    assert page.status_code == 200 and 'type="checkbox" name="label" value="red" checked' in page.text
    r = client.post(
        f"/console/projects/logos/entries/{ids[0]}/labels",
        data={"csrf_token": token, "label": ["red", "apple"], "new_label": "round", "back": back},
    )
    assert r.status_code == 303 and "notice=saved" in r.headers["location"]
    assert entries(services)[0].labels == ("red", "apple", "round")

    # removing outliers: ticked ones, then one from its own page
    r = bulk("remove", chosen=ids[2:])
    assert "notice=removed&n=2" in r.headers["location"]
    r = client.post(f"/console/projects/logos/entries/{ids[1]}/remove", data={"csrf_token": token})
    assert r.status_code == 303
    assert [e.id for e in entries(services)] == [ids[0]]
    assert client.get(f"/console/projects/logos/entries/{ids[1]}").status_code == 404


def test_single_label_projects_keep_one_label(client: TestClient, services: Services, token: str) -> None:
    make_project(services, "logos")
    upload(client, token, [("apple/1.jpg", jpeg(1))])
    entry = entries(services)[0]
    r = client.post(
        f"/console/projects/logos/entries/{entry.id}/labels",
        data={"csrf_token": token, "label": ["apple", "pear"]},
    )
    assert r.status_code == 400 and "single-label" in r.text
    client.post(
        f"/console/projects/logos/entries/{entry.id}/labels", data={"csrf_token": token, "new_label": "pear"}
    )
    assert entries(services)[0].labels == ("pear",)
    client.post(f"/console/projects/logos/entries/{entry.id}/labels", data={"csrf_token": token, "label": ""})
    assert entries(services)[0].labels == ()
    data = {"csrf_token": token, "action": "add", "label": "kiwi", "entry": [str(entry.id)]}
    client.post("/console/projects/logos/datasets/train/entries", data=data)
    assert entries(services)[0].labels == ("kiwi",)  # adding replaces in a single-label project


def test_boxes_for_detection_projects(client: TestClient, services: Services, token: str) -> None:
    make_project(services, "shapes", TaskType.DETECTION)
    r = upload(client, token, [("logo/1.jpg", jpeg(1))], project="shapes", labels_from="folder")
    assert r.json()["imported"] == 1
    entry = entries(services, "shapes")[0]
    assert entry.labels == () and entry.boxes == ()  # detection uploads arrive unlabelled
    page = client.get(f"/console/projects/shapes/entries/{entry.id}")
    assert page.status_code == 200 and 'id="canvas"' in page.text and "/static/boxes.js" in page.text
    boxes = [{"label": "logo", "left": 0.1, "top": 0.2, "width": 0.5, "height": 0.4}]
    r = client.post(
        f"/console/projects/shapes/entries/{entry.id}/boxes",
        data={"csrf_token": token, "boxes": json.dumps(boxes)},
    )
    assert r.status_code == 303
    [box] = entries(services, "shapes")[0].boxes
    assert (box.label, box.left, box.top, box.width, box.height) == ("logo", 0.1, 0.2, 0.5, 0.4)
    assert "logo" in services.repo.list_labels(services.repo.get_project("shapes").id)
    for bad, words in [
        ("{", "not valid JSON"),
        ('[{"label": "x", "left": "a", "top": 0, "width": 1, "height": 1}]', "numbers"),
        ('[{"label": "x", "left": 0.5, "top": 0, "width": 0, "height": 1}]', "inside the image"),
        ('[{"label": "", "left": 0, "top": 0, "width": 1, "height": 1}]', "label is empty"),
    ]:
        r = client.post(
            f"/console/projects/shapes/entries/{entry.id}/boxes", data={"csrf_token": token, "boxes": bad}
        )
        assert r.status_code == 400 and words in r.text, bad
    page = client.get("/console/projects/shapes/datasets/train")
    assert "1 box" in page.text and 'value="set"' not in page.text  # no image-level labels here
    data = {"csrf_token": token, "action": "set", "label": "logo", "entry": [str(entry.id)]}
    r = client.post("/console/projects/shapes/datasets/train/entries", data=data)
    assert r.status_code == 400 and "boxes" in r.text
    data["action"] = "unset"
    client.post("/console/projects/shapes/datasets/train/entries", data=data)
    assert entries(services, "shapes")[0].boxes == ()
    r = client.post(
        f"/console/projects/shapes/entries/{entry.id}/labels", data={"csrf_token": token, "label": "x"}
    )
    assert r.status_code == 400


def test_folder_label() -> None:
    assert folder_label("pictures/apple/1.jpg") == "apple"
    assert folder_label("1.jpg") == ""


def test_manifest_import(client: TestClient, services: Services, token: str) -> None:
    make_project(services, "logos")
    services.buckets.create_bucket("data")
    for i in range(2):
        services.buckets.put("data", f"img/{i}.jpg", jpeg(i))
    text = "\n".join(
        [
            classification_line("s3://data/img/0.jpg", "apple"),
            classification_line("s3://data/img/1.jpg", "pear"),
            classification_line("s3://data/img/missing.jpg", "pear"),
            "{not json",
        ]
    )
    r = client.post(
        "/console/projects/logos/datasets/train/manifest",
        data={"csrf_token": token},
        files={"manifest": ("train.manifest", text.encode(), "application/octet-stream")},
    )
    assert r.status_code == 200 and "2 images added" in r.text and "2</strong> could not be added" in r.text
    assert "line 3" in r.text and "line 4" in r.text and "ERROR_INVALID_JSON_LINE" in r.text
    assert sorted(e.labels for e in entries(services)) == [("apple",), ("pear",)]
    services.buckets.put(
        "data", "train.manifest", classification_line("s3://data/img/0.jpg", "apple").encode()
    )
    r = client.post(
        "/console/projects/logos/datasets/test/manifest",
        data={"csrf_token": token, "location": "s3://data/train.manifest"},
    )
    assert r.status_code == 200 and "0 images added" in r.text and "already in the project" in r.text
    for data, files, words, status in [
        ({}, None, "choose a manifest file", 400),
        ({"location": "s3://data/nothing.manifest"}, None, "does not exist", 404),
        ({}, {"manifest": ("m.manifest", b"\xff\xfe", "text/plain")}, "not UTF-8", 400),
        ({}, {"manifest": ("m.manifest", b"  \n", "text/plain")}, "empty", 400),
    ]:
        r = client.post(
            "/console/projects/logos/datasets/train/manifest", data={"csrf_token": token, **data}, files=files
        )
        assert r.status_code == status and words in r.text, words


def test_a_large_plain_form_upload_is_imported_in_chunks(
    client: TestClient, services: Services, token: str
) -> None:
    make_project(services, "logos")
    files = [(f"pics/apple/{i}.jpg", jpeg(i)) for i in range(UPLOAD_CHUNK + 3)]
    files.append(("pics/apple/copy.jpg", jpeg(1)))  # a copy of one in the first chunk
    r = upload(client, token, files, fetch=False)
    assert r.status_code == 200 and f"{UPLOAD_CHUNK + 3} images added" in r.text
    assert "1</strong> skipped" in r.text
    assert len(entries(services)) == UPLOAD_CHUNK + 3


def test_a_form_the_parser_refuses_is_a_page(client: TestClient, services: Services, token: str) -> None:
    make_project(services, "logos")
    r = upload(client, token, [(f"{i}.jpg", b"x") for i in range(1001)], fetch=False)
    assert r.status_code == 400 and "text/html" in r.headers["content-type"] and "Too many files" in r.text


def test_label_image_after_image_with_save_and_next(
    client: TestClient, services: Services, token: str
) -> None:
    make_project(services, "logos")
    upload(client, token, [(f"{i}.jpg", jpeg(i)) for i in range(3)], labels_from="none")
    ids = [e.id for e in entries(services)]
    grid = client.get("/console/projects/logos/datasets/train?state=unlabelled")
    links = re.findall(r'href="(/console/projects/logos/entries/\d+\?[^"]+)" class="caption"', grid.text)
    assert len(links) == 3
    url = links[0].replace("&amp;", "&")
    assert "f_state=unlabelled" in url and "at=0" in url
    page = client.get(url)
    assert 'id="next-image"' in page.text and f"/entries/{ids[1]}?" in page.text
    for i, expected in enumerate(ids):
        assert f'data-entry="{expected}"' in page.text
        form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text))
        form = {k: v.replace("&amp;", "&") for k, v in form.items() if k != "boxes"}
        r = client.post(
            f"/console/projects/logos/entries/{expected}/labels",
            data={**form, "label": "apple" if i % 2 == 0 else "pear", "then": "next"},
        )
        assert r.status_code == 303
        if i < 2:  # the labelled image left the filter; the next unlabelled one follows
            assert (
                f"/entries/{ids[i + 1]}?" in r.headers["location"] and "notice=saved" in r.headers["location"]
            )
            page = client.get(r.headers["location"])
            assert "Saved." in page.text
    assert r.headers["location"].startswith("/console/projects/logos/datasets/train?state=unlabelled")
    assert "notice=last" in r.headers["location"]
    assert "that was the last" in client.get(r.headers["location"]).text
    assert [e.labels for e in entries(services)] == [("apple",), ("pear",), ("apple",)]
    last = client.get(f"/console/projects/logos/entries/{ids[2]}")
    assert 'id="next-image"' not in last.text and "the last of these images" in last.text
