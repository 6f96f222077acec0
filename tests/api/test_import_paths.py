"""What an import asked for over HTTP may read, through a real server on a free port: buckets and the
import_roots folders only, regular files only, within the size caps; buckets and keys that lead out of the
buckets folder are refused. A FIFO never blocks a request (or any other route)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import classification_line, image_bytes, unique_colour, write_folder_dataset
from tests.servers import serve_in_thread
from visionloop.api.app import create_app
from visionloop.bootstrap import build_services
from visionloop.core.services import Services
from visionloop.settings import load_settings

SECRET = "root:$6$not-for-your-eyes:19000:0:99999:7:::\n" * 7


@dataclass
class Site:
    api: httpx.Client
    svc: Services
    roots: Path  # the one import root
    outside: Path  # a folder outside the import roots and the data folder
    buckets: Path

    def import_(self, source: str, fmt: str = "folder", project: str = "p", **more: Any) -> httpx.Response:
        body = {"source": source, "format": fmt, **more}
        return self.api.post(f"/api/v1/projects/{project}/datasets/train/import", json=body)

    def total(self, project: str = "p") -> int:
        r = self.api.get(f"/api/v1/projects/{project}/datasets/train/entries")
        n: int = r.json()["total"] if r.status_code == 200 else 0  # 404: no dataset was even made
        return n


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("paths")
    roots, outside = base / "imports", base / "outside"
    roots.mkdir()
    outside.mkdir()
    (outside / "shadow").write_text(SECRET)
    write_folder_dataset(outside / "photos", {"leaked": 2})
    # /dev is an import root here only so that the regular-file rule, not the roots rule, meets /dev/zero
    config = {
        "data_dir": str(base / "var"),
        "workers": 0,
        "import_roots": [str(roots), "/dev"],
        "max_import_file_mb": 0.01,  # 10,485 bytes
    }
    settings = load_settings(config, environ={})
    svc = build_services(settings)
    buckets = Path(settings.resolved_buckets_url)
    try:
        with serve_in_thread(create_app(svc, settings)) as url, httpx.Client(base_url=url, timeout=20) as api:
            for name in ("p", "det"):
                task = "object_detection" if name == "det" else "classification"
                assert api.post("/api/v1/projects", json={"name": name, "task": task}).status_code == 201
            yield Site(api, svc, roots, outside, buckets)
    finally:
        svc.repo.close()


def assert_refused(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    message = r.json()["error"]["message"]
    for w in words:
        assert w in message, message
    assert "not-for-your-eyes" not in r.text and "7 lines" not in r.text and "leaked" not in r.text


def test_a_folder_outside_the_import_roots_is_refused(site: Site) -> None:
    r = site.import_(str(site.outside / "photos"))
    assert_refused(r, 400, "import_roots")
    # nor through '..' or a link inside a root
    assert_refused(site.import_(f"{site.roots}/../outside/photos"), 400, "import_roots")
    os.symlink(site.outside / "photos", site.roots / "link-out")
    assert_refused(site.import_(str(site.roots / "link-out")), 400, "import_roots")
    assert site.total() == 0


def test_a_file_outside_the_import_roots_is_refused_unread(site: Site) -> None:
    for fmt in ("manifest", "coco"):
        assert_refused(site.import_(str(site.outside / "shadow"), fmt), 400, "import_roots")
    # a missing file outside says the same: whether it exists is not told
    assert_refused(site.import_(str(site.outside / "nothing"), "manifest"), 400, "import_roots")
    # a COCO file inside the roots may not name an images folder outside them
    coco = site.roots / "coco.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": "leaked/0.jpg"}], "categories": []}))
    r = site.import_(str(coco), "coco", project="det", images_dir=str(site.outside / "photos"))
    assert_refused(r, 400, "import_roots")


def test_images_linked_from_inside_a_root_to_outside_are_not_read(site: Site) -> None:
    folder = site.roots / "linked" / "cat"
    folder.mkdir(parents=True)
    (folder / "ok.jpg").write_bytes(image_bytes(color=unique_colour(7001)))
    os.symlink(site.outside / "photos" / "leaked" / "0.jpg", folder / "out.jpg")
    r = site.import_(str(site.roots / "linked"), project="p")
    assert r.status_code == 200 and r.json()["imported"] == 1 and r.json()["failed"] == 1
    assert "import_roots" in json.dumps(r.json()["issues"])


def test_devices_fifos_and_folders_are_not_files(site: Site) -> None:
    started = time.monotonic()
    assert_refused(site.import_("/dev/zero", "manifest"), 400, "not a regular file")
    assert_refused(site.import_("/dev/zero", "coco", project="det"), 400, "not a regular file")
    fifo = site.roots / "pipe.manifest"
    os.mkfifo(fifo)
    assert_refused(site.import_(str(fifo), "manifest"), 400, "not a regular file")
    assert_refused(site.import_(str(site.roots), "manifest"), 400, "is a folder")
    assert_refused(site.import_(str(site.roots), "coco", project="det"), 400, "is a folder")
    assert time.monotonic() - started < 10
    assert site.api.get("/healthz").status_code == 200


def test_a_fifo_named_like_an_image_fails_alone(site: Site) -> None:
    root = write_folder_dataset(site.roots / "withfifo", {"fifo": 1})
    os.mkfifo(root / "fifo" / "blocked.jpg")
    r = site.import_(str(root))
    assert r.status_code == 200 and r.json()["imported"] == 1 and r.json()["failed"] == 1
    assert "not a regular file" in json.dumps(r.json()["issues"])


def test_a_fifo_or_folder_in_a_bucket_is_no_object(site: Site) -> None:
    site.svc.buckets.create_bucket("pipes")
    os.mkfifo(site.buckets / "pipes" / "m.manifest")
    (site.buckets / "pipes" / "dir.manifest").mkdir()
    assert_refused(site.import_("s3://pipes/m.manifest", "manifest"), 404, "does not exist")
    assert_refused(site.import_("s3://pipes/dir.manifest", "manifest"), 404, "does not exist")
    os.mkfifo(site.buckets / "pipes" / "x.jpg")
    site.svc.buckets.put("pipes", "fifo.manifest", classification_line("s3://pipes/x.jpg", "a").encode())
    r = site.import_("s3://pipes/fifo.manifest", "manifest")
    assert r.status_code == 200 and r.json()["failed"] == 1
    assert [o.key for o in site.svc.buckets.list_objects("pipes")] == ["fifo.manifest"]


def test_files_over_the_cap_are_refused(site: Site) -> None:
    big = site.roots / "big.manifest"
    big.write_text(classification_line("s3://b/x.jpg", "a") * 200)
    assert_refused(site.import_(str(big), "manifest"), 400, "larger than the limit of 10,485 bytes")
    site.svc.buckets.put("bigs", "big.manifest", big.read_bytes())
    assert_refused(site.import_("s3://bigs/big.manifest", "manifest"), 400, "larger than the limit")


def test_a_bucket_that_links_outside_is_refused(site: Site) -> None:
    os.symlink(site.outside, site.buckets / "escape")
    (site.outside / "m.manifest").write_text(classification_line("s3://escape/photos/leaked/0.jpg", "x"))
    assert_refused(site.import_("s3://escape/photos/", "folder"), 400, "outside the buckets folder")
    assert_refused(site.import_("s3://escape/m.manifest", "manifest"), 400, "outside the buckets folder")
    # a manifest in a real bucket whose lines name the linked bucket: those lines fail, nothing is read
    site.svc.buckets.put("real", "m.manifest", (site.outside / "m.manifest").read_bytes())
    r = site.import_("s3://real/m.manifest", "manifest")
    assert r.status_code == 200 and r.json()["imported"] == 0 and r.json()["failed"] == 1
    assert "escape" not in site.svc.buckets.list_buckets()
    # a key with '..' is refused before any path is made
    assert_refused(site.import_("s3://real/../escape/m.manifest", "manifest"), 400, "escapes")


def test_paths_inside_the_import_roots_import(site: Site) -> None:
    assert site.api.post("/api/v1/projects", json={"name": "fresh"}).status_code == 201
    root = write_folder_dataset(site.roots / "fruit", {"apple": 2, "pear": 2})
    r = site.import_(str(root), project="fresh")
    assert r.status_code == 200 and r.json()["imported"] == 4
    site.svc.buckets.put("data", "img/a.jpg", image_bytes(color=unique_colour(7100)))
    manifest = site.roots / "m.manifest"
    manifest.write_text(classification_line("s3://data/img/a.jpg", "apple"))
    r = site.import_(str(manifest), "manifest", project="fresh")
    assert r.status_code == 200 and r.json()["imported"] == 1
    assert site.total("fresh") == 5
    r = site.import_(str(site.roots / "none.manifest"), "manifest", project="fresh")
    assert_refused(r, 404, "does not exist")


def test_without_import_roots_only_buckets_import(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": str(tmp_path / "var"), "workers": 0}, environ={})
    svc = build_services(settings)
    root = write_folder_dataset(tmp_path / "photos", {"a": 1})
    svc.buckets.put("data", "a/1.jpg", image_bytes(color=unique_colour(7200)))
    try:
        with serve_in_thread(create_app(svc, settings)) as url, httpx.Client(base_url=url) as api:
            api.post("/api/v1/projects", json={"name": "p"})
            site = Site(api, svc, tmp_path, tmp_path, tmp_path)
            r = site.import_(str(root))
            assert_refused(r, 400, "only s3://bucket/prefix sources (setting import_roots)")
            assert site.import_("s3://data/").json()["imported"] == 1
    finally:
        svc.repo.close()
