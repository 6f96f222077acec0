"""Import → export → import gives the same dataset."""

from __future__ import annotations

from pathlib import Path

from tests.factories import (
    detection_line,
    image_bytes,
    make_project,
    photo_bytes,
    unique_colour,
    write_folder_dataset,
)
from visionloop.core import datasets
from visionloop.core.entities import DatasetEntry, DatasetType, TaskType
from visionloop.core.exporting import export_manifest
from visionloop.core.projects import get_dataset
from visionloop.core.services import Services


def snapshot(svc: Services, project: str) -> set[tuple[object, ...]]:
    p = svc.repo.get_project(project)
    out: list[DatasetEntry] = svc.repo.list_entries(get_dataset(svc, p, DatasetType.TRAIN).id)
    return {
        (
            e.content_hash,
            tuple(sorted(e.labels)),
            tuple(
                sorted(
                    (b.label, round(b.left, 6), round(b.top, 6), round(b.width, 6), round(b.height, 6))
                    for b in e.boxes
                )
            ),
        )
        for e in out
    }


def test_classification_round_trip(services: Services, tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "d", {"cat": 3, "dog": 2})
    (root / "unlabelled.jpg").write_bytes(image_bytes(color=(77, 1, 1)))
    make_project(services, "a")
    datasets.import_folder(services, "a", str(root))
    uri, text = export_manifest(services, "a")
    assert uri == "s3://exports/a/train/manifest.jsonl" and len(text.splitlines()) == 6
    make_project(services, "b")
    report = datasets.import_manifest(services, "b", uri)
    assert report.failed == 0 and report.imported == 6
    assert snapshot(services, "a") == snapshot(services, "b")


def test_multi_label_round_trip_keeps_bucket_refs(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "m"
    for i, labels in enumerate([("a", "b"), ("a",), ("b", "c")]):
        img = image_bytes(color=unique_colour(i + 10))
        for lab in labels:
            (root / lab).mkdir(parents=True, exist_ok=True)
            (root / lab / f"{i}.jpg").write_bytes(img)
    services.buckets.create_bucket("src")
    for f in root.rglob("*.jpg"):
        services.buckets.put("src", f"m/{f.relative_to(root)}", f.read_bytes())
    make_project(services, "m1", TaskType.MULTI_LABEL)
    datasets.import_folder(services, "m1", "s3://src/m/")
    uri, text = export_manifest(services, "m1")
    assert "s3://src/m/" in text  # objects still in the bucket are referenced, not copied
    make_project(services, "m2", TaskType.MULTI_LABEL)
    datasets.import_manifest(services, "m2", uri)
    assert snapshot(services, "m1") == snapshot(services, "m2")
    assert {len(s[1]) for s in snapshot(services, "m2")} == {1, 2}


def test_detection_round_trip(services: Services) -> None:
    services.buckets.create_bucket("det")
    lines = []
    for i in range(3):
        services.buckets.put("det", f"{i}.png", image_bytes(320, 240, color=unique_colour(i + 1), fmt="PNG"))
        lines.append(
            detection_line(
                f"s3://det/{i}.png", [("logo", 10 + i, 20, 100, 50), ("text", 0, 0, 33, 17)], (320, 240)
            )
        )
    services.buckets.put("det", "in.manifest", "\n".join(lines).encode())
    make_project(services, "d1", TaskType.DETECTION)
    datasets.import_manifest(services, "d1", "s3://det/in.manifest")
    services.buckets.delete("det", "1.png")  # gone from the bucket: the export copies it out of the store
    uri, text = export_manifest(services, "d1", bucket="det", prefix="out")
    assert "s3://det/out/images/" in text
    make_project(services, "d2", TaskType.DETECTION)
    assert datasets.import_manifest(services, "d2", uri).imported == 3
    assert snapshot(services, "d1") == snapshot(services, "d2")


def test_groups_survive_export_and_import(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "g"
    for n, folder in enumerate(["kiwi/monday", "kiwi/monday", "kiwi/tuesday", "apple/monday"]):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / f"p{'abcd'[n]}.jpg").write_bytes(photo_bytes(n))
    make_project(services, "a")
    assert datasets.import_folder(services, "a", str(root), groups_from_folders=True).imported == 4
    uri, text = export_manifest(services, "a")
    assert text.count('"visionloop-group":"monday"') == 3
    make_project(services, "b")
    assert datasets.import_manifest(services, "b", uri).imported == 4

    def groups(project: str) -> set[tuple[str, str | None]]:
        p = services.repo.get_project(project)
        return {
            (e.content_hash, e.group)
            for e in services.repo.list_entries(get_dataset(services, p, DatasetType.TRAIN).id)
        }

    assert groups("a") == groups("b") and {g for _, g in groups("b")} == {"monday", "tuesday"}
