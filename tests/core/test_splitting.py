from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.factories import make_project, photo_bytes
from visionloop.core import datasets
from visionloop.core.entities import DatasetEntry, DatasetType, EntrySource, ImageInfo, NewEntry
from visionloop.core.grouping import group_entries
from visionloop.core.images import store_image
from visionloop.core.projects import ensure_dataset, get_dataset
from visionloop.core.services import Services
from visionloop.core.splitting import plan_split, split_dataset


def entry(i: int, *labels: str, group: str | None = None) -> DatasetEntry:
    return DatasetEntry(
        id=i,
        dataset_id=1,
        content_hash=f"{i:064x}",
        source_ref=f"photo-{i}-x.jpg",  # no trailing number: no file-name sequences, each image alone
        format="JPEG",
        width=100,
        height=100,
        size_bytes=1,
        labels=labels,
        boxes=(),
        source=EntrySource.IMPORT,
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        group=group,
    )


def dataset() -> list[DatasetEntry]:
    out, i = [], 0
    for label, n in {"a": 50, "b": 10, "c": 2, "d": 1}.items():
        for _ in range(n):
            i += 1
            out.append(entry(i, label))
    out.append(entry(999))  # unlabelled
    return out


def test_stratified_80_20_with_one_test_image_for_every_label_with_two() -> None:
    chosen = plan_split(dataset(), 0.2, seed=42).test
    per_label = {lab: sum(lab in e.labels for e in chosen) for lab in "abcd"}
    assert per_label == {"a": 10, "b": 2, "c": 1, "d": 0}
    assert all(e.labels for e in chosen), "unlabelled entries stay in TRAIN"


def test_split_is_reproducible_and_order_independent() -> None:
    first = [e.content_hash for e in plan_split(dataset(), 0.2, seed=7).test]
    again = [e.content_hash for e in plan_split(list(reversed(dataset())), 0.2, seed=7).test]
    other = [e.content_hash for e in plan_split(dataset(), 0.2, seed=8).test]
    assert first == again
    assert first != other


def test_multi_label_entries_stratify_by_rarest_label() -> None:
    entries = [entry(i, "common", "rare") for i in range(1, 4)] + [entry(i, "common") for i in range(10, 30)]
    chosen = plan_split(entries, 0.2, seed=1).test
    assert sum("rare" in e.labels for e in chosen) == 1


# --- grouped splits ------------------------------------------------------------------------------------


def grouped_dataset() -> list[DatasetEntry]:
    """Two labels; each photo belongs to a session of 1 to 7 photos."""
    out, i = [], 0
    for label, sessions in {"a": [5, 7, 3, 6, 4, 2, 6, 5, 1, 6], "b": [4, 3, 5, 2, 6]}.items():
        for s, n in enumerate(sessions):
            for _ in range(n):
                i += 1
                out.append(entry(i, label, group=f"{label}-session-{s}"))
    return out


def test_a_grouped_split_never_puts_a_group_on_both_sides() -> None:
    entries = grouped_dataset()
    for seed in range(20):
        plan = plan_split(entries, 0.2, seed)
        test = {e.content_hash for e in plan.test}
        for group in {e.group for e in entries}:
            sides = {e.content_hash in test for e in entries if e.group == group}
            assert len(sides) == 1, f"seed {seed}: group {group} is split"
        for label, n in (("a", 45), ("b", 20)):
            n_test = sum(label in e.labels for e in plan.test)
            assert 0 < n_test < n and abs(n_test - 0.2 * n) <= 4
        assert plan.n_groups == 15 and plan.warnings == ()


def test_a_grouped_split_is_deterministic() -> None:
    entries = grouped_dataset()
    first = plan_split(entries, 0.2, seed=3)
    assert plan_split(list(reversed(entries)), 0.2, seed=3) == first
    assert any(plan_split(entries, 0.2, seed=s).test != first.test for s in range(4, 10))


def test_a_label_that_is_one_group_falls_back_to_images_with_a_warning() -> None:
    entries = [entry(i, "a", group="only-session") for i in range(1, 11)]
    entries += [entry(i, "b", group=f"s{i % 4}") for i in range(20, 40)]
    plan = plan_split(entries, 0.2, seed=1)
    assert sum("a" in e.labels for e in plan.test) == 2
    (warning,) = plan.warnings
    assert "label 'a'" in warning and "one group" in warning
    test_b = {e.group for e in plan.test if "b" in e.labels}
    assert test_b and all(e in plan.test for e in entries if e.group in test_b), (
        "label b still splits by group"
    )


def test_plan_split_groups_by_itself_when_given_no_grouping() -> None:
    entries = [entry(i, "a") for i in range(1, 21)]
    entries = [
        DatasetEntry(**{**e.__dict__, "source_ref": f"Kiwi/train_Kiwi_{e.id:03d}.jpg"}) for e in entries
    ]
    plan = plan_split(entries, 0.2, seed=0)
    assert plan == plan_split(entries, 0.2, seed=0, grouping=group_entries(entries))
    assert plan.n_groups == 5 and len(plan.test) == 4
    numbers = sorted(e.id for e in plan.test)
    assert numbers == list(range(numbers[0], numbers[0] + 4)), "one contiguous block of the series"


# --- split_dataset through the real services -----------------------------------------------------------


def test_split_dataset_keeps_folder_groups_together_and_records_them(
    services: Services, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    n = 0
    for label in ("red", "blue"):
        for session in range(5):
            (root / label / f"{label}-day{session}").mkdir(parents=True)
            for k in range(3):
                n += 1
                path = root / label / f"{label}-day{session}" / f"shot.{k}.jpg"
                path.write_bytes(photo_bytes(n))
    make_project(services, "p")
    report = datasets.import_folder(services, "p", str(root), groups_from_folders=True)
    assert report.imported == 30
    rec = split_dataset(services, "p", 0.2, seed=5)
    assert (rec.train_count, rec.test_count, rec.n_groups) == (24, 6, 10)
    project = services.repo.get_project("p")
    test = services.repo.list_entries(get_dataset(services, project, DatasetType.TEST).id)
    train = services.repo.list_entries(get_dataset(services, project, DatasetType.TRAIN).id)
    assert {e.group for e in test}.isdisjoint({e.group for e in train})
    (stored,) = services.repo.list_splits(project.id)
    assert stored == rec


def test_split_dataset_computes_missing_perceptual_hashes(services: Services) -> None:
    """Entries stored before hashes existed get theirs from the stored image, once."""
    project = make_project(services, "old")
    train = ensure_dataset(services, project, DatasetType.TRAIN)
    new = []
    for i in range(6):
        data = photo_bytes(i + 1)
        info = services.inspector.inspect(data)
        store_image(services.store, data, info.content_hash)
        old_info = ImageInfo(info.format, info.width, info.height, info.size_bytes, info.content_hash)
        new.append(NewEntry(old_info, f"s3://bkt/{'abcdef'[i]}.jpg", ("a" if i % 2 else "b",)))
    services.repo.add_entries(train.id, new, services.clock.now())
    assert all(e.phash is None for e in services.repo.list_entries(train.id))
    rec = split_dataset(services, "old")
    assert rec.test_count == 2
    every = [e for ds in services.repo.list_datasets(project.id) for e in services.repo.list_entries(ds.id)]
    assert len(every) == 6 and all(e.phash and len(e.phash) == 16 for e in every)


def test_fraction_is_checked() -> None:
    with pytest.raises(Exception, match="between 0 and 1"):
        plan_split(dataset(), 1.0, seed=1)
