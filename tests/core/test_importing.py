"""Imports end to end: real images on disk, a real SQLite file and the local object store."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import shared_dataset
from tests.factories import (
    classification_line,
    detection_line,
    image_bytes,
    make_project,
    photo_bytes,
    unique_colour,
    write_folder_dataset,
)
from visionloop.core import datasets
from visionloop.core.entities import DatasetType, TaskType
from visionloop.core.images import load_image
from visionloop.core.ports import EntryFilter
from visionloop.core.projects import get_dataset
from visionloop.core.services import Services
from visionloop.core.stats import dataset_stats
from visionloop.errors import AlreadyExists, InvalidInput, InvalidManifest, NotFound


def entries(svc: Services, project: str, type: DatasetType = DatasetType.TRAIN) -> list:
    p = svc.repo.get_project(project)
    return svc.repo.list_entries(get_dataset(svc, p, type).id)


def test_folder_import_labels_from_innermost_folder(services: Services, tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "data", {"cat": 3, "dog": 2})
    nested = root / "animals" / "bird"
    nested.mkdir(parents=True)
    (nested / "b.png").write_bytes(image_bytes(color=(1, 2, 3), fmt="PNG"))
    (root / "loose.jpg").write_bytes(image_bytes(color=(9, 9, 9)))
    (root / "notes.txt").write_text("ignored")
    (root / ".hidden.jpg").write_bytes(b"ignored")
    make_project(services, "pets")
    report = datasets.import_folder(services, "pets", str(root))
    assert (report.imported, report.skipped, report.failed) == (7, 0, 0)
    by_ref = {e.source_ref: e for e in entries(services, "pets")}
    assert by_ref["animals/bird/b.png"].labels == ("bird",)
    assert by_ref["cat/cat_0.jpg"].labels == ("cat",)
    assert by_ref["loose.jpg"].labels == () and not by_ref["loose.jpg"].is_labeled
    stored = load_image(services.store, by_ref["animals/bird/b.png"].content_hash)
    assert stored == (nested / "b.png").read_bytes()
    # a re-import of the same data adds nothing
    again = datasets.import_folder(services, "pets", str(root))
    assert (again.imported, again.skipped, again.failed) == (0, 7, 0)
    assert len(entries(services, "pets")) == 7


def test_broken_inputs_are_reported_and_valid_ones_kept(services: Services, tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "data", {"ok": 2})
    bad = root / "bad"
    bad.mkdir()
    full = image_bytes(300, 300, color=(10, 200, 10))
    (bad / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (bad / "text.jpg").write_text("this is not an image")
    (bad / "huge.jpg").write_bytes(image_bytes(5000, 80, color=(1, 1, 1)))
    (bad / "bomb.png").write_bytes(_png_header_only(60000, 60000))
    (bad / "tiny.png").write_bytes(image_bytes(32, 32, fmt="PNG"))
    (bad / "gif.png").write_bytes(_gif())
    (bad / "empty.jpg").write_bytes(b"")
    make_project(services, "p")
    report = datasets.import_folder(services, "p", str(root))
    assert report.imported == 2
    assert report.failed == 7
    reasons = {i.ref: (i.code, i.message) for i in report.issues}
    assert (
        reasons["bad/truncated.jpg"][0] == "ERROR_INVALID_IMAGE"
        and "truncated" in reasons["bad/truncated.jpg"][1]
    )
    assert "not a readable JPEG or PNG" in reasons["bad/text.jpg"][1]
    assert reasons["bad/huge.jpg"] == ("ERROR_INVALID_IMAGE_DIMENSION", reasons["bad/huge.jpg"][1])
    assert "5000x80" in reasons["bad/huge.jpg"][1]
    assert "pixels" in reasons["bad/bomb.png"][1]
    assert "at least 64 px" in reasons["bad/tiny.png"][1]
    assert "GIF" in reasons["bad/gif.png"][1]
    assert "empty" in reasons["bad/empty.jpg"][1]


def test_oversized_file_is_refused_before_reading(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "d" / "x"
    root.mkdir(parents=True)
    with open(root / "big.jpg", "wb") as f:
        f.truncate(16 * 1024 * 1024)
    make_project(services, "p")
    report = datasets.import_folder(services, "p", str(tmp_path / "d"))
    assert report.failed == 1 and "15,728,640" in report.issues[0].message


def test_duplicates_by_content_hash(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    img = image_bytes(color=(5, 5, 5))
    (root / "a" / "1.jpg").write_bytes(img)
    (root / "a" / "copy.jpg").write_bytes(img)
    (root / "b" / "1.jpg").write_bytes(img)
    make_project(services, "single")
    report = datasets.import_folder(services, "single", str(root))
    assert report.imported == 1 and report.skipped == 1 and report.failed == 1
    assert {i.code for i in report.issues} == {"DUPLICATE", "DUPLICATE_CONFLICT"}
    # a multi-label project merges the labels of the same image found in two folders
    make_project(services, "multi", TaskType.MULTI_LABEL)
    report = datasets.import_folder(services, "multi", str(root))
    assert report.imported == 1 and report.failed == 0
    assert entries(services, "multi")[0].labels == ("a", "b")


def test_an_image_in_train_is_not_imported_into_test(services: Services, tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "d", {"x": 2})
    make_project(services, "p")
    datasets.import_folder(services, "p", str(root))
    report = datasets.import_folder(services, "p", str(root), dataset_type="test")
    assert report.imported == 0 and report.skipped == 2
    assert "TRAIN" in report.issues[0].message


def test_manifest_import_from_bucket(services: Services) -> None:
    services.buckets.create_bucket("bkt")
    lines = []
    for i in range(6):
        key = f"imgs/{i}.jpg"
        services.buckets.put("bkt", key, image_bytes(color=unique_colour(i + 1)))
        lines.append(classification_line(f"s3://bkt/{key}", "even" if i % 2 == 0 else "odd"))
    lines.append(classification_line("s3://bkt/imgs/missing.jpg", "odd"))
    lines.append(classification_line("s3://bkt/../../etc/passwd", "a"))
    lines.append("{broken")
    services.buckets.put("bkt", "train.manifest", "\n".join(lines).encode())
    make_project(services, "m")
    report = datasets.import_manifest(services, "m", "s3://bkt/train.manifest")
    assert report.imported == 6 and report.failed == 3
    issues = {i.ref.split(" (")[0]: i.code for i in report.issues}
    assert issues == {
        "line 7": "ERROR_INVALID_SOURCE_REF",
        "line 8": "ERROR_INVALID_SOURCE_REF_FORMAT",
        "line 9": "ERROR_INVALID_JSON_LINE",
    }
    assert {e.source_ref for e in entries(services, "m")} == {f"s3://bkt/imgs/{i}.jpg" for i in range(6)}
    # the Custom Labels rule: more than 20 % bad lines refuses the whole manifest
    services.buckets.put("bkt", "bad.manifest", "\n".join(lines[-3:] + lines[:1]).encode())
    with pytest.raises(InvalidManifest):
        datasets.import_manifest(services, "m", "s3://bkt/bad.manifest", max_invalid_fraction=0.2)


def test_manifest_errors(services: Services, tmp_path: Path) -> None:
    make_project(services, "m")
    with pytest.raises(NotFound):
        datasets.import_manifest(services, "m", "s3://bkt/nothing.manifest")
    empty = tmp_path / "empty.manifest"
    empty.write_text("\n\n")
    with pytest.raises(InvalidManifest):
        datasets.import_manifest(services, "m", str(empty))
    with pytest.raises(NotFound):
        datasets.import_manifest(services, "no-such-project", str(empty))


def test_detection_manifest_boxes_become_ratios_and_outside_boxes_fail(services: Services) -> None:
    services.buckets.create_bucket("bkt")
    services.buckets.put("bkt", "a.png", image_bytes(200, 100, fmt="PNG"))
    services.buckets.put("bkt", "b.png", image_bytes(200, 100, color=(0, 0, 9), fmt="PNG"))
    services.buckets.put("bkt", "c.png", image_bytes(200, 100, color=(0, 9, 9), fmt="PNG"))
    text = "\n".join(
        [
            detection_line(
                "s3://bkt/a.png", [("Echo", 20, 10, 100, 50), ("Dot", 0, 0, 200, 100)], (200, 100)
            ),
            detection_line("s3://bkt/b.png", [("Echo", 150, 10, 100, 50)], (200, 100)),
            classification_line("s3://bkt/c.png", "Echo"),
        ]
    )
    services.buckets.put("bkt", "det.manifest", text.encode())
    make_project(services, "det", TaskType.DETECTION)
    report = datasets.import_manifest(services, "det", "s3://bkt/det.manifest")
    assert report.imported == 1
    codes = sorted(i.code for i in report.issues)
    assert codes == ["ERROR_INVALID_BOUNDING_BOX", "ERROR_UNSUPPORTED_USE_CASE_TYPE"]
    [entry] = entries(services, "det")
    assert [(b.label, b.left, b.top, b.width, b.height) for b in entry.boxes] == [
        ("Echo", 0.1, 0.1, 0.5, 0.5),
        ("Dot", 0.0, 0.0, 1.0, 1.0),
    ]


def test_single_label_project_refuses_two_labels(services: Services) -> None:
    make_project(services, "s")
    with pytest.raises(InvalidInput, match="single-label"):
        datasets.add_image(services, "s", image_bytes(), "x.jpg", ["a", "b"])


def test_upload_one_image(services: Services) -> None:
    make_project(services, "u")
    entry = datasets.add_image(services, "u", image_bytes(color=(3, 4, 5)), "photo.jpg", ["cat"])
    assert entry.labels == ("cat",) and entry.source.value == "upload" and entry.width == 96
    with pytest.raises(AlreadyExists):
        datasets.add_image(services, "u", image_bytes(color=(3, 4, 5)), "again.jpg", ["cat"])
    with pytest.raises(InvalidInput, match="label"):
        datasets.add_image(services, "u", image_bytes(color=(90, 4, 6)), "x.jpg", ["  "])


def test_one_thousand_labels(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "many"
    for i in range(1000):
        d = root / f"label-{i:04d}"
        d.mkdir(parents=True)
        (d / "a.png").write_bytes(image_bytes(64, 64, color=unique_colour(i + 1), fmt="PNG"))
    make_project(services, "big")
    report = datasets.import_folder(services, "big", str(root))
    assert report.imported == 1000 and len(report.labels) == 1000
    stats = dataset_stats(services, "big")
    assert len(stats.labels) == 1000
    p = services.repo.get_project("big")
    ds = get_dataset(services, p, DatasetType.TRAIN)
    assert services.repo.count_entries(ds.id, EntryFilter(label="label-0999")) == 1


def test_exif_orientation_swaps_the_size(services: Services) -> None:
    img = Image.new("RGB", (160, 90), (100, 150, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    make_project(services, "e")
    entry = datasets.add_image(services, "e", buf.getvalue(), "r.jpg", ["x"])
    assert (entry.width, entry.height) == (90, 160)


def test_grocery_produce_folder_import(services: Services) -> None:
    root = shared_dataset("grocery-produce")
    make_project(services, "grocery")
    report = datasets.import_folder(services, "grocery", str(root))
    assert report.failed == 0
    assert report.imported == 1972 and len(report.labels) == 34
    stats = dataset_stats(services, "grocery")
    assert stats.images == 1972 and stats.labeled == 1972
    assert {lc.label: lc.train for lc in stats.labels}["Apple"] == 300


def test_flickrlogos27_coco_import(services: Services) -> None:
    root = shared_dataset("flickrlogos27")
    doc = json.loads((root / "annotations_coco.json").read_text())
    make_project(services, "logos", TaskType.DETECTION)
    report = datasets.import_coco(services, "logos", str(root / "annotations_coco.json"))
    # refusals: Custom Labels limits (sides under 64 px, over 50 boxes) and identical photos boxed differently
    assert {i.code for i in report.issues if i.code != "DUPLICATE"} <= {
        "DUPLICATE_CONFLICT",  # the data set holds a few identical photos under two names
        "ERROR_INVALID_IMAGE_DIMENSION",
        "ERROR_TOO_MANY_BOUNDING_BOXES",
    }
    assert report.failed < 0.06 * len(doc["images"])
    assert report.imported + report.skipped + report.failed == len(doc["images"])
    stored = entries(services, "logos")
    assert sum(len(e.boxes) for e in stored) >= 0.85 * len(doc["annotations"])
    assert len({b.label for e in stored for b in e.boxes}) == 27
    for e in stored:
        for b in e.boxes:
            assert (
                b.left >= 0
                and b.left + b.width <= 1.0 + 1e-9
                and b.top >= 0
                and b.top + b.height <= 1.0 + 1e-9
            )


def test_coco_into_classification_project_is_refused_per_image(services: Services, tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(image_bytes())
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "../../etc/passwd"}],
        "annotations": [
            {"image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]},
            {"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1]},
        ],
        "categories": [{"id": 1, "name": "logo"}],
    }
    (tmp_path / "c.json").write_text(json.dumps(coco))
    make_project(services, "cls")
    report = datasets.import_coco(services, "cls", str(tmp_path / "c.json"))
    codes = sorted(i.code for i in report.issues)
    assert report.imported == 0
    assert codes == [
        "ERROR_INVALID_BOUNDING_BOX",
        "ERROR_INVALID_SOURCE_REF_FORMAT",
        "ERROR_UNSUPPORTED_USE_CASE_TYPE",
    ]


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + chunk(b"IEND", b"")
    )


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (100, 100)).save(buf, "GIF")
    return buf.getvalue()


def test_generated_ground_truth_manifest_of_real_photos(services: Services) -> None:
    root = shared_dataset("grocery-produce")
    services.buckets.create_bucket("groceries")
    lines = []
    for label in ("Banana", "Kiwi", "Leek"):
        for path in sorted((root / label).glob("*.jpg"))[:8]:
            key = f"{label}/{path.name}"
            services.buckets.put("groceries", key, path.read_bytes())
            lines.append(classification_line(f"s3://groceries/{key}", label, attr="produce"))
    services.buckets.put("groceries", "train.manifest", "\n".join(lines).encode())
    make_project(services, "gt")
    report = datasets.import_manifest(services, "gt", "s3://groceries/train.manifest")
    assert (report.imported, report.failed) == (24, 0)
    assert {lc.label: lc.train for lc in dataset_stats(services, "gt").labels} == {
        "Banana": 8,
        "Kiwi": 8,
        "Leek": 8,
    }


# --- groups of similar photos --------------------------------------------------------------------------


def test_folder_import_with_groups_from_folders(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "data"
    layout = {"shelf/kiwi/monday": 2, "kiwi/tuesday": 2, "apple/monday": 1, "apple": 1}
    n = 0
    for folder, count in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            n += 1
            (root / folder / f"shot-{k}.jpg").write_bytes(photo_bytes(n))
    (root / "loose.jpg").write_bytes(photo_bytes(99))
    make_project(services, "g")
    report = datasets.import_folder(services, "g", str(root), groups_from_folders=True)
    assert (report.imported, report.failed) == (6, 1)
    (issue,) = report.issues
    assert issue.ref == "apple/shot-0.jpg" and issue.code == "ERROR_MISSING_GROUP_FOLDER"
    assert "<label>/<group>/<file>" in issue.message
    got = {e.source_ref: (e.labels, e.group) for e in entries(services, "g")}
    assert got == {
        "shelf/kiwi/monday/shot-0.jpg": (("kiwi",), "monday"),
        "shelf/kiwi/monday/shot-1.jpg": (("kiwi",), "monday"),
        "kiwi/tuesday/shot-0.jpg": (("kiwi",), "tuesday"),
        "kiwi/tuesday/shot-1.jpg": (("kiwi",), "tuesday"),
        "apple/monday/shot-0.jpg": (("apple",), "monday"),
        "loose.jpg": ((), None),
    }
    assert all(e.phash and len(e.phash) == 16 for e in entries(services, "g"))
    # re-importing the same images with other groups changes nothing: duplicates are skipped
    moved = tmp_path / "moved" / "kiwi" / "friday"
    moved.mkdir(parents=True)
    (moved / "again.jpg").write_bytes((root / "kiwi/tuesday/shot-0.jpg").read_bytes())
    again = datasets.import_folder(services, "g", str(tmp_path / "moved"), groups_from_folders=True)
    assert (again.imported, again.skipped) == (0, 1)
    assert {e.group for e in entries(services, "g")} == {"monday", "tuesday", None}


def test_bucket_folder_import_with_groups_from_folders(services: Services) -> None:
    services.buckets.create_bucket("bkt")
    services.buckets.put("bkt", "in/kiwi/s1/a.jpg", photo_bytes(1))
    services.buckets.put("bkt", "in/kiwi/s2/b.jpg", photo_bytes(2))
    services.buckets.put("bkt", "in/kiwi/c.jpg", photo_bytes(3))
    make_project(services, "b")
    report = datasets.import_folder(services, "b", "s3://bkt/in/", groups_from_folders=True)
    assert (report.imported, report.failed) == (2, 1)
    assert report.issues[0].ref == "s3://bkt/in/kiwi/c.jpg"
    got = {e.source_ref: (e.labels, e.group) for e in entries(services, "b")}
    assert got == {
        "s3://bkt/in/kiwi/s1/a.jpg": (("kiwi",), "s1"),
        "s3://bkt/in/kiwi/s2/b.jpg": (("kiwi",), "s2"),
    }
    # without the option the innermost folder is the label, as before
    make_project(services, "plain")
    datasets.import_folder(services, "plain", "s3://bkt/in/")
    assert {e.labels for e in entries(services, "plain")} == {("s1",), ("s2",), ("kiwi",)}


def test_manifest_groups_are_imported_and_bad_ones_reported(services: Services) -> None:
    services.buckets.create_bucket("bkt")
    lines = []
    for i in range(4):
        services.buckets.put("bkt", f"imgs/{i}.jpg", photo_bytes(i))
        line = json.loads(classification_line(f"s3://bkt/imgs/{i}.jpg", "kiwi"))
        lines.append(json.dumps({**line, "visionloop-group": "monday" if i < 2 else 7}))
    services.buckets.put("bkt", "g.manifest", "\n".join(lines).encode())
    make_project(services, "m")
    report = datasets.import_manifest(services, "m", "s3://bkt/g.manifest")
    assert (report.imported, report.failed) == (2, 2)
    assert {(i.ref, i.code) for i in report.issues} == {
        ("line 3", "ERROR_INVALID_GROUP"),
        ("line 4", "ERROR_INVALID_GROUP"),
    }
    assert {e.group for e in entries(services, "m")} == {"monday"}
