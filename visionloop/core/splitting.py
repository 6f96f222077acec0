"""The automatic TEST split: stratified by label, seeded, recorded, reproducible."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

from visionloop.core.entities import DatasetEntry, DatasetType, SplitRecord
from visionloop.core.projects import ensure_dataset, get_dataset, get_project
from visionloop.core.services import Services
from visionloop.errors import Conflict, InvalidInput

DEFAULT_SEED = 42
DEFAULT_TEST_FRACTION = 0.2
UNLABELED = "\x00unlabeled"


def plan_split(entries: list[DatasetEntry], test_fraction: float, seed: int) -> list[DatasetEntry]:
    """Choose the test entries: per stratum (an entry's rarest label), ``round(fraction * n)`` entries,
    at least one when the stratum has two or more, never all of them. Unlabelled entries stay in TRAIN.
    The choice depends only on the entries' content hashes, the fraction and the seed."""
    if not 0.0 < test_fraction < 1.0:
        raise InvalidInput(f"test fraction must be between 0 and 1, not {test_fraction}")
    counts = Counter(label for e in entries for label in e.all_labels)
    strata: dict[str, list[DatasetEntry]] = defaultdict(list)
    for e in sorted(entries, key=lambda e: e.content_hash):
        labels = e.all_labels
        key = min(labels, key=lambda lab: (counts[lab], lab)) if labels else UNLABELED
        strata[key].append(e)
    chosen: list[DatasetEntry] = []
    for key in sorted(strata):
        group = strata[key]
        if key == UNLABELED or len(group) < 2:
            continue
        n_test = min(len(group) - 1, max(1, round(test_fraction * len(group))))
        rng = random.Random(f"{seed}:{key}")
        chosen.extend(rng.sample(group, n_test))
    return sorted(chosen, key=lambda e: e.content_hash)


def split_dataset(
    svc: Services, project_name: str, test_fraction: float = DEFAULT_TEST_FRACTION, seed: int = DEFAULT_SEED
) -> SplitRecord:
    """Move a stratified share of TRAIN into an empty TEST dataset and record the split."""
    project = get_project(svc, project_name)
    train = get_dataset(svc, project, DatasetType.TRAIN)
    test = ensure_dataset(svc, project, DatasetType.TEST)
    if svc.repo.count_entries(test.id):
        raise Conflict(f"project {project.name!r} already has a TEST dataset with images; empty it first")
    entries = svc.repo.list_entries(train.id)
    chosen = plan_split(entries, test_fraction, seed)
    now = svc.clock.now()
    svc.repo.move_entries([e.id for e in chosen], test.id, now)
    return svc.repo.record_split(
        project.id, seed, test_fraction, [e.content_hash for e in chosen], len(entries) - len(chosen), now
    )
