from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import shared_dataset
from tests.factories import add_entries_without_phash, make_project, photo_bytes
from visionloop.bootstrap import build_services
from visionloop.core import datasets
from visionloop.core.entities import DatasetEntry, DatasetType, EntrySource
from visionloop.core.grouping import group_entries
from visionloop.core.ports import SceneItem
from visionloop.core.projects import get_dataset
from visionloop.core.services import Services
from visionloop.core.splitting import plan_split, scene_grouping, split_dataset
from visionloop.settings import Settings, load_settings


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
    add_entries_without_phash(services, project, 6)
    train = get_dataset(services, project, DatasetType.TRAIN)
    assert all(e.phash is None for e in services.repo.list_entries(train.id))
    rec = split_dataset(services, "old")
    assert rec.test_count == 2
    every = [e for ds in services.repo.list_datasets(project.id) for e in services.repo.list_entries(ds.id)]
    assert len(every) == 6 and all(e.phash and len(e.phash) == 16 for e in every)


def test_fraction_is_checked() -> None:
    with pytest.raises(Exception, match="between 0 and 1"):
        plan_split(dataset(), 1.0, seed=1)


# --- splits that hold out whole scenes -----------------------------------------------------------------


class ScenesOfThreeGroups:
    """A real SceneClusterer with a rule the test controls: per stratum, the groups in sorted order make
    scenes of three (a stratum of fewer than four groups keeps them). It loads every image it clusters,
    as EmbeddingScenes does, and remembers what it was given."""

    def __init__(self) -> None:
        self.items: list[SceneItem] = []
        self.seeds: list[int] = []
        self.loaded: dict[str, bytes] = {}

    def scenes(self, items: Sequence[SceneItem], load: Callable[[str], bytes], seed: int) -> dict[str, str]:
        self.items.extend(items)
        self.seeds.append(seed)
        by_stratum: dict[str, list[str]] = {}
        for it in items:
            self.loaded[it.content_hash] = load(it.content_hash)
            by_stratum.setdefault(it.stratum, [])
            if it.group not in by_stratum[it.stratum]:
                by_stratum[it.stratum].append(it.group)
        scene_of: dict[str, str] = {}
        for stratum, groups in by_stratum.items():
            for i, group in enumerate(sorted(groups)):
                scene_of[group] = f"scene:{stratum}:{i // 3}" if len(groups) >= 4 else group
        return {it.content_hash: scene_of[it.group] for it in items}


def test_a_scene_split_moves_whole_scenes_and_leaves_unlabelled_images_in_train(
    services: Services, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    written: dict[str, bytes] = {}
    n = 0
    for label, n_groups in (("red", 10), ("blue", 8)):
        for g in range(n_groups):
            (root / label / f"{label}-day{g}").mkdir(parents=True)
            for k in range(2):
                n += 1
                written[f"{label}/{label}-day{g}/shot.{k}.jpg"] = photo_bytes(n)
    for name in ("loose-a.jpg", "loose-b.jpg", "loose-c.jpg"):  # directly in the root: unlabelled
        n += 1
        written[name] = photo_bytes(n)
    for rel, data in written.items():
        (root / rel).write_bytes(data)
    make_project(services, "p")
    assert datasets.import_folder(services, "p", str(root), groups_from_folders=True).imported == 39
    clusterer = ScenesOfThreeGroups()
    services.scenes = clusterer

    rec = split_dataset(services, "p", 0.2, seed=11)

    project = services.repo.get_project("p")
    test = services.repo.list_entries(get_dataset(services, project, DatasetType.TEST).id)
    train = services.repo.list_entries(get_dataset(services, project, DatasetType.TRAIN).id)
    assert clusterer.seeds == [11]
    labelled = {e.content_hash for e in test + train if e.labels}
    assert {it.content_hash for it in clusterer.items} == labelled, "only labelled images are clustered"
    assert set(clusterer.loaded.values()) == {d for rel, d in written.items() if "/" in rel}
    scene_of = {it.content_hash: it for it in clusterer.items}
    scenes = clusterer.scenes(list(scene_of.values()), clusterer.loaded.__getitem__, 11)
    test_scenes = {scenes[e.content_hash] for e in test}
    assert test_scenes.isdisjoint(scenes[e.content_hash] for e in train if e.labels), "a scene is split"
    assert {s.split(":")[1] for s in test_scenes} == {"red", "blue"}
    assert all(e.labels for e in test) and sum(not e.labels for e in train) == 3
    # 4 scenes of red (3, 3, 3, 1 groups), 3 of blue (3, 3, 2) and the 3 unlabelled images alone
    assert rec.n_groups == 10
    assert rec.test_count == len(test) and rec.train_count == len(train) == 39 - len(test)


def test_split_by_scene_false_leaves_services_without_a_scene_clusterer(tmp_path: Path) -> None:
    off = build_services(load_settings({"data_dir": str(tmp_path / "off")}, environ={}))  # the default
    on = build_services(load_settings({"data_dir": str(tmp_path / "on"), "split_by_scene": True}, environ={}))
    try:
        assert off.scenes is None
        pytest.importorskip("onnxruntime", reason="scenes need the machine-learning extra")
        from visionloop.engines.scenes import EmbeddingScenes

        assert isinstance(on.scenes, EmbeddingScenes)  # with the machine-learning extra
        assert on.scenes.cache_dir == tmp_path / "on" / "cache"
    finally:
        off.repo.close()
        on.repo.close()


@pytest.fixture(scope="module")
def onnx_exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export folder for this module's scene clusterers."""
    return tmp_path_factory.mktemp("onnx")


def grocery_links(root: Path, labels: Sequence[str], per_label: int, per_group: int) -> Path:
    """``root/<label>/<group>/<file>``: symlinks, named like the originals, to the first photos of each
    label, ``per_group`` consecutive files to a group folder."""
    source = shared_dataset("grocery-produce")
    for label in labels:
        for i, f in enumerate(sorted((source / label).glob("train_*.jpg"))[:per_label]):
            folder = root / label / f"{label}-{i // per_group:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f.name).symlink_to(f)
    return root


def test_a_split_through_embedding_scenes_on_real_photos_moves_whole_scenes_reproducibly(
    services: Services, settings: Settings, tmp_path: Path, onnx_exports: Path
) -> None:
    pytest.importorskip("onnxruntime", reason="scenes need the machine-learning extra")
    from visionloop.engines.embeddings import EmbeddingCache
    from visionloop.engines.scenes import EmbeddingScenes

    # 20 groups of 2 consecutive photos per label: enough groups (16) to cluster into scenes
    root = grocery_links(tmp_path / "photos", ("Kiwi", "Banana"), 40, per_group=2)
    cache = settings.resolved_cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "onnx").symlink_to(onnx_exports, target_is_directory=True)
    services.scenes = EmbeddingScenes(cache)  # what split_by_scene=true builds
    for name in ("first", "second"):
        make_project(services, name)
        assert datasets.import_folder(services, name, str(root), groups_from_folders=True).imported == 80

    first = split_dataset(services, "first", 0.2, seed=5)

    project = services.repo.get_project("first")
    test = services.repo.list_entries(get_dataset(services, project, DatasetType.TEST).id)
    train = services.repo.list_entries(get_dataset(services, project, DatasetType.TRAIN).id)
    every = test + train
    grouping = group_entries(every, {e.content_hash: e.phash for e in every if e.phash})
    scenes = scene_grouping(services.scenes, services.store, every, grouping, 5)
    assert grouping.n_groups == 40 and first.n_groups == scenes.n_groups
    assert 4 <= scenes.n_groups <= 10  # up to five scenes per label
    test_scenes = {scenes.groups[e.content_hash] for e in test}
    assert test_scenes.isdisjoint(scenes.groups[e.content_hash] for e in train), "a scene is split"
    assert {e.labels for e in test} == {("Kiwi",), ("Banana",)}
    assert all(k.startswith("scene:") for k in test_scenes)
    # the file-name groups inside are whole too
    assert {grouping.groups[e.content_hash] for e in test}.isdisjoint(
        grouping.groups[e.content_hash] for e in train
    )
    with EmbeddingCache(cache / "embeddings.sqlite") as embeddings:
        assert embeddings.count() == 80

    second = split_dataset(services, "second", 0.2, seed=5)
    assert second.test_hashes == first.test_hashes and second.n_groups == first.n_groups
    with EmbeddingCache(cache / "embeddings.sqlite") as embeddings:
        assert embeddings.count() == 80  # the second project's photos were embedded already
