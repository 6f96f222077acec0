"""The split before it is made (core.splitting.preview_split, core.training.split_preview): it shows
exactly the images the automatic split then moves, writes nothing, and warns about thin labels."""

from __future__ import annotations

import pytest

from tests.factories import add_entries_without_phash, add_labelled_images, make_project
from visionloop.core.entities import DatasetType, TaskType
from visionloop.core.projects import get_dataset
from visionloop.core.services import Services
from visionloop.core.splitting import preview_split, split_dataset
from visionloop.core.training import TrainingOptions, request_training, split_preview
from visionloop.errors import InvalidInput


def fill(svc: Services, counts: dict[str, int], project: str = "p") -> None:
    make_project(svc, project)
    add_labelled_images(svc, project, counts)


def entries_of(svc: Services, project: str, kind: DatasetType) -> set[str]:
    dataset = svc.repo.find_dataset(svc.repo.get_project(project).id, kind)
    return {e.content_hash for e in svc.repo.list_entries(dataset.id)} if dataset else set()


def test_the_preview_is_the_split_that_training_then_makes(services: Services) -> None:
    fill(services, {"apple": 12, "pear": 8, "plum": 1})
    before = entries_of(services, "p", DatasetType.TRAIN)
    preview = split_preview(services, "p")
    assert preview is not None
    assert entries_of(services, "p", DatasetType.TRAIN) == before, "a preview moves nothing"
    assert entries_of(services, "p", DatasetType.TEST) == set()
    per_label = {ls.label: (ls.train, ls.test) for ls in preview.labels}
    assert sum(t for _, t in per_label.values()) == preview.test_images > 0
    assert preview.train_images + preview.test_images == 21
    assert per_label["plum"] == (1, 0)
    assert any("'plum' would have no test images" in w for w in preview.warnings)
    assert any("'pear' would have" in w and "at least 5 are advised" in w for w in preview.warnings)
    # these plain colour fields look alike: each label is one group, and the preview says what would happen
    assert any("'apple' are one group" in w and "would be chosen one by one" in w for w in preview.warnings)
    assert not any("were chosen" in w for w in preview.warnings)

    request_training(services, "p")
    moved = entries_of(services, "p", DatasetType.TEST)
    assert len(moved) == preview.test_images
    project = services.repo.get_project("p")
    test = services.repo.list_entries(get_dataset(services, project, DatasetType.TEST).id)
    assert {lab: sum(lab in e.labels for e in test) for lab in per_label} == {
        lab: t for lab, (_, t) in per_label.items()
    }
    assert split_preview(services, "p") is None, "TEST has images now: training uses them as they are"


def test_keeping_the_datasets_without_test_images_is_refused_and_moves_nothing(services: Services) -> None:
    fill(services, {"apple": 6, "pear": 6})
    before = entries_of(services, "p", DatasetType.TRAIN)
    with pytest.raises(InvalidInput, match="no test images"):
        request_training(services, "p", TrainingOptions(auto_split=False))
    assert entries_of(services, "p", DatasetType.TRAIN) == before
    assert services.repo.list_versions(services.repo.get_project("p").id) == []
    # with TEST images of their own, the datasets are used as they are
    split_dataset(services, "p")
    version, _ = request_training(services, "p", TrainingOptions(auto_split=False))
    assert version.name == "v1"


def test_no_preview_when_training_would_not_split(services: Services) -> None:
    make_project(services, "empty")
    assert split_preview(services, "empty") is None
    fill(services, {"apple": 6}, project="one")
    assert split_preview(services, "one") is None, "one label: the training fails before any split"
    make_project(services, "boxes", TaskType.DETECTION)
    assert split_preview(services, "boxes") is None


def test_a_preview_stores_no_perceptual_hash(services: Services) -> None:
    """Entries stored before hashes existed: the preview computes theirs and forgets them."""
    project = make_project(services, "old")
    add_entries_without_phash(services, project, 6)
    train = get_dataset(services, project, DatasetType.TRAIN)
    preview = preview_split(services, "old")
    assert preview.test_images == 2 and preview.n_groups >= 2
    assert all(e.phash is None for e in services.repo.list_entries(train.id))
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        preview_split(services, "old", test_fraction=0)
