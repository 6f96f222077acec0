"""Renaming and merging labels (core.labels.rename_label): every image of the project carrying the label
gets the new one, in TRAIN and TEST, image-level and on boxes; nothing is lost; refused while a version
trains and for names that cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import image_bytes, make_project, write_folder_dataset
from visionloop.core import curation, datasets
from visionloop.core.entities import Box, DatasetType, TaskType
from visionloop.core.labels import project_labels, rename_label
from visionloop.core.projects import get_dataset, get_project
from visionloop.core.services import Services
from visionloop.core.training import request_training, run_training_job
from visionloop.engines.fake import ColourEngine
from visionloop.errors import Conflict, InvalidInput, NotFound


def _labels_by_hash(svc: Services, project: str) -> dict[str, tuple[str, ...]]:
    p = get_project(svc, project)
    out: dict[str, tuple[str, ...]] = {}
    for kind in (DatasetType.TRAIN, DatasetType.TEST):
        ds = svc.repo.find_dataset(p.id, kind)
        if ds is not None:
            out |= {e.content_hash: e.labels for e in svc.repo.list_entries(ds.id)}
    return out


@pytest.fixture
def pets(services: Services, tmp_path: Path) -> str:
    root = write_folder_dataset(tmp_path / "d", {"kitten": 4, "cat": 3, "dog": 5})
    make_project(services, "pets")
    datasets.import_folder(services, "pets", str(root))
    return "pets"


def test_a_rename_relabels_every_image_and_keeps_them_all(services: Services, pets: str) -> None:
    before = _labels_by_hash(services, pets)
    done = rename_label(services, pets, "dog", " hound ")
    assert (done.old, done.new, done.entries, done.merged) == ("dog", "hound", 5, False)
    after = _labels_by_hash(services, pets)
    assert after.keys() == before.keys()
    assert after == {h: tuple("hound" if x == "dog" else x for x in labels) for h, labels in before.items()}
    assert project_labels(services, get_project(services, pets)) == ["cat", "hound", "kitten"]


def test_a_merge_into_a_label_the_project_has(services: Services, pets: str) -> None:
    done = rename_label(services, pets, "kitten", "cat")
    assert done.merged and done.entries == 4
    counts: dict[tuple[str, ...], int] = {}
    for labels in _labels_by_hash(services, pets).values():
        counts[labels] = counts.get(labels, 0) + 1
    assert counts == {("cat",): 7, ("dog",): 5}
    assert project_labels(services, get_project(services, pets)) == ["cat", "dog"]


def test_a_merge_in_a_multi_label_project_keeps_one_of_the_two(services: Services, tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "m", {"kitten": 2})
    make_project(services, "m", TaskType.MULTI_LABEL)
    datasets.import_folder(services, "m", str(root))
    p = get_project(services, "m")
    (first, second) = services.repo.list_entries(get_dataset(services, p, DatasetType.TRAIN).id)
    curation.relabel(services, "m", [first.id], curation.LabelAction.ADD, "cat")
    rename_label(services, "m", "kitten", "cat")
    assert services.repo.get_entry(first.id).labels == ("cat",)
    assert services.repo.get_entry(second.id).labels == ("cat",)


def test_a_rename_in_a_detection_project_renames_the_boxes(services: Services) -> None:
    make_project(services, "det", TaskType.DETECTION)
    curation.upload_images(services, "det", DatasetType.TRAIN, [curation.Upload("a.jpg", image_bytes())])
    p = get_project(services, "det")
    (entry,) = services.repo.list_entries(get_dataset(services, p, DatasetType.TRAIN).id)
    curation.set_boxes(
        services, "det", entry.id, [Box("logo", 0.1, 0.1, 0.5, 0.5), Box("cup", 0, 0, 0.2, 0.2)]
    )
    rename_label(services, "det", "logo", "brand")
    assert [b.label for b in services.repo.get_entry(entry.id).boxes] == ["brand", "cup"]


def test_refused_while_a_version_trains_and_allowed_once_it_has(services: Services, pets: str) -> None:
    _, job = request_training(services, pets)
    before = _labels_by_hash(services, pets)
    with pytest.raises(Conflict, match="v1 .* is training"):
        rename_label(services, pets, "dog", "hound")
    assert _labels_by_hash(services, pets) == before  # nothing changed
    claimed = services.repo.claim_job(services.clock.now())
    assert claimed is not None and claimed.id == job.id
    run_training_job(services, ColourEngine(), claimed, "us-east-1", "123456789012")
    assert rename_label(services, pets, "dog", "hound").entries == 5  # TRAIN and TEST together


def test_names_that_cannot_be_used_are_refused(services: Services, pets: str) -> None:
    before = _labels_by_hash(services, pets)
    with pytest.raises(NotFound, match="no label 'wolf'"):
        rename_label(services, pets, "wolf", "dog")
    with pytest.raises(InvalidInput, match="empty"):
        rename_label(services, pets, "dog", "  ")
    with pytest.raises(InvalidInput, match="own name"):
        rename_label(services, pets, "dog", "dog ")
    with pytest.raises(InvalidInput, match="256"):
        rename_label(services, pets, "dog", "x" * 300)
    assert _labels_by_hash(services, pets) == before
