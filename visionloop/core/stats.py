"""Dataset statistics and the warnings a user should see before training."""

from __future__ import annotations

from collections import Counter

from visionloop.core.entities import DatasetStats, DatasetType, LabelCount
from visionloop.core.projects import get_project
from visionloop.core.services import Services

MIN_TRAIN_IMAGES = 10
MIN_TEST_IMAGES = 5


def dataset_stats(svc: Services, project_name: str) -> DatasetStats:
    project = get_project(svc, project_name)
    images: Counter[tuple[DatasetType, str]] = Counter()
    boxes: Counter[tuple[DatasetType, str]] = Counter()
    totals = {DatasetType.TRAIN: 0, DatasetType.TEST: 0}
    labeled = 0
    for ds in svc.repo.list_datasets(project.id):
        for e in svc.repo.list_entries(ds.id):
            totals[ds.type] += 1
            labeled += e.is_labeled
            for label in e.all_labels:
                images[(ds.type, label)] += 1
            for b in e.boxes:
                boxes[(ds.type, b.label)] += 1
    names = sorted(set(svc.repo.list_labels(project.id)))
    counts = tuple(
        LabelCount(
            n,
            images[(DatasetType.TRAIN, n)],
            images[(DatasetType.TEST, n)],
            boxes[(DatasetType.TRAIN, n)],
            boxes[(DatasetType.TEST, n)],
        )
        for n in names
    )
    has_test = totals[DatasetType.TEST] > 0
    warnings = []
    for lc in counts:
        if lc.train < MIN_TRAIN_IMAGES:
            warnings.append(
                f"label '{lc.label}' has {lc.train} training images; at least {MIN_TRAIN_IMAGES} are advised"
            )
        if has_test and lc.test < MIN_TEST_IMAGES:
            warnings.append(
                f"label '{lc.label}' has {lc.test} test images; at least {MIN_TEST_IMAGES} are advised"
            )
    if not has_test:
        warnings.append("there is no TEST dataset yet; training splits off 20% of TRAIN automatically")
    total = sum(totals.values())
    return DatasetStats(
        images=total,
        labeled=labeled,
        unlabeled=total - labeled,
        train_images=totals[DatasetType.TRAIN],
        test_images=totals[DatasetType.TEST],
        labels=counts,
        warnings=tuple(warnings),
    )
