"""core.entries: the dataset-entry use cases behind the Rekognition dataset operations."""

from __future__ import annotations

import json

import pytest

from tests.factories import classification_line, detection_line, image_bytes, make_project, unique_colour
from visionloop.core import datasets, entries
from visionloop.core.entities import DatasetType, TaskType
from visionloop.core.manifests import ManifestLine
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, InvalidInput, InvalidManifest


def _put(svc: Services, n: int, label: str, start: int = 0) -> list[str]:
    svc.buckets.create_bucket("bkt")
    lines = []
    for i in range(start, start + n):
        key = f"img/{label}_{i}.jpg"
        svc.buckets.put("bkt", key, image_bytes(96, 80, unique_colour(1000 * len(label) + i)))
        lines.append(classification_line(f"s3://bkt/{key}", label))
    return lines


def _manifest(svc: Services, lines: list[str], key: str = "m.manifest") -> str:
    svc.buckets.put("bkt", key, "\n".join(lines).encode())
    return f"s3://bkt/{key}"


def _line(kind: str, n_labels: int = 1) -> ManifestLine:
    return ManifestLine(1, "s3://bkt/k", tuple(f"l{i}" for i in range(n_labels)), (), kind)


def test_infer_task() -> None:
    assert datasets.infer_task([]) is None
    assert datasets.infer_task([_line("unlabeled")]) is None
    assert datasets.infer_task([_line("classification")] * 2) is TaskType.CLASSIFICATION
    assert datasets.infer_task([_line("classification"), _line("classification", 2)]) is TaskType.MULTI_LABEL
    assert datasets.infer_task([_line("detection"), _line("detection"), _line("classification")]) is (
        TaskType.DETECTION
    )


def test_fill_adopts_the_task_only_while_the_project_is_blank(services: Services) -> None:
    project = make_project(services, "p")
    services.buckets.create_bucket("bkt")
    services.buckets.put("bkt", "d.png", image_bytes(120, 100, (9, 9, 9), fmt="PNG"))
    box = detection_line("s3://bkt/d.png", [("cat", 1, 2, 30, 40)], (120, 100))
    entries.create_dataset(services, project, DatasetType.TRAIN)
    report = entries.fill_from_manifest(services, project, DatasetType.TRAIN, _manifest(services, [box]))
    assert report.imported == 1 and services.repo.get_project("p").task is TaskType.DETECTION
    # with entries present, a classification manifest no longer changes the task: its lines fail
    with pytest.raises(InvalidManifest):
        entries.fill_from_manifest(
            services, project, DatasetType.TEST, _manifest(services, _put(services, 3, "x"))
        )
    assert services.repo.get_project("p").task is TaskType.DETECTION
    test = services.repo.find_dataset(project.id, DatasetType.TEST)
    assert test is not None and services.repo.count_entries(test.id) == 0  # nothing half-imported
    with pytest.raises(AlreadyExists):
        entries.create_dataset(services, project, DatasetType.TRAIN)


def test_a_manifest_refused_for_its_images_adds_no_entry(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 20% rule counts images that fail the import checks too; such a manifest is refused before an
    entry is added, never added and then taken back."""
    project = make_project(services, "p")
    entries.create_dataset(services, project, DatasetType.TRAIN)
    missing = [classification_line(f"s3://bkt/img/missing_{i}.jpg", "a") for i in range(2)]
    lines = _put(services, 3, "a") + missing  # 2 of 5 lines fail: more than 20%
    added, deleted = [], []
    add, delete = services.repo.add_entries, services.repo.delete_entries
    monkeypatch.setattr(services.repo, "add_entries", lambda *a, **k: added.append(a) or add(*a, **k))
    monkeypatch.setattr(services.repo, "delete_entries", lambda *a, **k: deleted.append(a) or delete(*a, **k))
    with pytest.raises(InvalidManifest, match="2 of 5 manifest lines are invalid") as refused:
        entries.fill_from_manifest(services, project, DatasetType.TRAIN, _manifest(services, lines))
    assert refused.value.details["code"] == "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST"
    assert "missing_0.jpg" in refused.value.message  # the first bad line is named
    assert added == [] and deleted == []


def test_update_checks_every_line_before_writing(services: Services) -> None:
    """UpdateDatasetEntries writes nothing when one relabel is refused, even after good ones."""
    project = make_project(services, "p")
    train = entries.create_dataset(services, project, DatasetType.TRAIN)
    lines = _put(services, 2, "a")
    entries.fill_from_manifest(services, project, DatasetType.TRAIN, _manifest(services, lines))
    refs = [json.loads(line)["source-ref"] for line in lines]
    two = json.loads(classification_line(refs[1], "x"))
    two |= {"y": 0, "y-metadata": {**two["label-metadata"], "class-name": "y"}}
    change = classification_line(refs[0], "z") + "\n" + json.dumps(two)
    with pytest.raises(InvalidInput, match="line 2 .*single-label"):
        entries.update_entries(services, project, train, change.encode())
    assert {s.label for s in entries.label_stats(services, train)} == {"a"}


def test_entry_lines_filters_and_windows(services: Services) -> None:
    project = make_project(services, "p", TaskType.MULTI_LABEL)
    train = entries.create_dataset(services, project, DatasetType.TRAIN)
    lines = _put(services, 3, "a") + _put(services, 3, "bb") + _put(services, 2, "ccc")
    entries.fill_from_manifest(services, project, DatasetType.TRAIN, _manifest(services, lines))
    q = entries.EntryQuery(labels=("a", "ccc"))
    got = [json.loads(s) for s in entries.entry_lines(services, project, train, q, 0, 100)]
    assert len(got) == 5 and all(g["cl-metadata"] == {"is_labeled": True} for g in got)
    window = entries.entry_lines(services, project, train, q, 2, 2)
    assert window == [json.dumps(g, ensure_ascii=False, separators=(",", ":")) for g in got[2:4]]
    assert entries.entry_lines(services, project, train, entries.EntryQuery(has_errors=True), 0, 10) == []
    assert entries.entry_counts(services, train) == entries.EntryCounts(total=8, labeled=8, labels=3)
    stats = entries.label_stats(services, train)
    assert [(s.label, s.entries, s.boxes) for s in stats] == [("a", 3, 0), ("bb", 3, 0), ("ccc", 2, 0)]


def test_update_relabels_adds_and_refuses_whole(services: Services) -> None:
    project = make_project(services, "p")
    train = entries.create_dataset(services, project, DatasetType.TRAIN)
    lines = _put(services, 2, "a")
    entries.fill_from_manifest(services, project, DatasetType.TRAIN, _manifest(services, lines))
    ref = json.loads(lines[0])["source-ref"]
    change = classification_line(ref, "z") + "\n\n" + _put(services, 1, "new")[0]
    report = entries.update_entries(services, project, train, change.encode())
    assert report.updated == 1 and report.added.imported == 1
    assert {s.label: s.entries for s in entries.label_stats(services, train)} == {"a": 1, "z": 1, "new": 1}
    assert "z" in services.repo.list_labels(project.id)

    two_labels = json.loads(classification_line(ref, "x"))
    two_labels |= {"y": 0, "y-metadata": {**two_labels["label-metadata"], "class-name": "y"}}
    boxes = detection_line(ref, [("cat", 1, 1, 10, 10)], (96, 80))
    for bad in (b"not json", json.dumps(two_labels).encode(), boxes.encode(), b"\xff\xfe", b"\n"):
        with pytest.raises(InvalidInput):
            entries.update_entries(services, project, train, bad)
    assert entries.entry_counts(services, train).total == 3


def test_update_relabels_boxes_in_ratios(services: Services) -> None:
    project = make_project(services, "d", TaskType.DETECTION)
    train = entries.create_dataset(services, project, DatasetType.TRAIN)
    services.buckets.create_bucket("bkt")
    services.buckets.put("bkt", "d.png", image_bytes(200, 100, (9, 9, 9), fmt="PNG"))
    first = detection_line("s3://bkt/d.png", [("cat", 0, 0, 10, 10)], (200, 100))
    entries.update_entries(services, project, train, first.encode())
    moved = detection_line("s3://bkt/d.png", [("dog", 100, 50, 100, 50)], (200, 100))
    assert entries.update_entries(services, project, train, moved.encode()).updated == 1
    (entry,) = services.repo.list_entries(train.id)
    (box,) = entry.boxes
    assert (box.label, box.left, box.top, box.width, box.height) == ("dog", 0.5, 0.5, 0.5, 0.5)
    outside = detection_line("s3://bkt/d.png", [("dog", 150, 50, 100, 50)], (200, 100))
    with pytest.raises(InvalidInput, match="outside"):
        entries.update_entries(services, project, train, outside.encode())


def test_distribute_copy_delete(services: Services) -> None:
    project = make_project(services, "p")
    train = entries.create_dataset(services, project, DatasetType.TRAIN)
    test = entries.create_dataset(services, project, DatasetType.TEST)
    with pytest.raises(InvalidInput, match="empty"):
        entries.distribute_entries(services, project, train, test)
    lines = _put(services, 5, "a") + _put(services, 5, "bb")
    entries.fill_from_manifest(services, project, DatasetType.TRAIN, _manifest(services, lines))
    with pytest.raises(InvalidInput):
        entries.distribute_entries(services, project, test, train)
    record = entries.distribute_entries(services, project, train, test)
    assert (record.train_count, record.test_count) == (8, 2)
    with pytest.raises(InvalidInput, match="must be empty"):
        entries.distribute_entries(services, project, train, test)

    other = make_project(services, "q", TaskType.MULTI_LABEL)
    copy = entries.create_dataset(services, other, DatasetType.TRAIN)
    report = entries.copy_entries(services, other, copy, train)
    assert report.imported == 8 and services.repo.get_project("q").task is TaskType.CLASSIFICATION
    entries.delete_dataset(services, copy)
    assert services.repo.find_dataset(other.id, DatasetType.TRAIN) is None


def test_test_images_are_named_by_their_file_names(services: Services) -> None:
    make_project(services, "named")
    uploaded = datasets.add_image(
        services, "named", image_bytes(color=(3, 4, 5)), "shelf.png", ["a"], dataset_type="test"
    )
    project = services.repo.get_project("named")
    assert entries.names_of_test_images(services, project, {uploaded.content_hash}) == {
        uploaded.content_hash: "shelf.png"
    }
