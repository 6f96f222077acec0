"""The automatic TEST split: by groups of similar photos, stratified by label, seeded, recorded,
reproducible. Near-duplicates (a series of shots of one display, one tile under several lightings) stay
on one side, so the evaluation measures photos the model has not seen in another guise."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from visionloop.core.entities import DatasetEntry, DatasetType, SplitRecord
from visionloop.core.grouping import Grouping, group_entries
from visionloop.core.images import load_image
from visionloop.core.ports import SCENE_KEY_PREFIX, ObjectStore, SceneClusterer, SceneItem
from visionloop.core.projects import ensure_dataset, get_dataset, get_project
from visionloop.core.services import Services
from visionloop.core.stats import MIN_TEST_IMAGES
from visionloop.errors import Conflict, InvalidInput, VisionloopError

DEFAULT_SEED = 42
DEFAULT_TEST_FRACTION = 0.2
UNLABELED = "\x00unlabeled"


@dataclass(frozen=True)
class SplitPlan:
    test: tuple[DatasetEntry, ...]  # the entries to move to TEST, by content hash
    n_groups: int
    warnings: tuple[str, ...]
    one_group: tuple[str, ...] = ()  # labels whose images are one group: TEST chosen image by image


ONE_GROUP_WARNING = (
    "all images of label {label!r} are one group of similar photos, so its TEST images {were} chosen one by "
    "one and its evaluation may be optimistic; add photos from another session or give groups explicitly"
)


def plan_split(
    entries: Sequence[DatasetEntry], test_fraction: float, seed: int, grouping: Grouping | None = None
) -> SplitPlan:
    """Choose the test entries group by group. A group's stratum is the rarest label among its images;
    per stratum the groups are shuffled with the seed and whole groups go to TEST until about
    ``test_fraction`` of the stratum's images are there: at least one group, never all of them. A stratum
    that is one group falls back to choosing its images one by one, by their own rarest label, as
    before groups existed (with a warning naming the label). Unlabelled entries stay in TRAIN.
    The choice depends only on the content hashes, the groups, the fraction and the seed."""
    if not 0.0 < test_fraction < 1.0:
        raise InvalidInput(f"test fraction must be between 0 and 1, not {test_fraction}")
    if grouping is None:
        grouping = group_entries(entries)
    labelled = sorted((e for e in entries if e.all_labels), key=lambda e: e.content_hash)
    members: dict[str, list[DatasetEntry]] = defaultdict(list)
    for e in labelled:
        members[grouping.groups.get(e.content_hash, e.content_hash)].append(e)
    counts = Counter(label for e in labelled for label in e.all_labels)
    strata: dict[str, list[str]] = defaultdict(list)
    for key in sorted(members):
        strata[_rarest({lab for e in members[key] for lab in e.all_labels}, counts)].append(key)
    chosen: list[DatasetEntry] = []
    alone: list[DatasetEntry] = []  # the images of strata that are a single group
    for stratum in sorted(strata):
        keys = strata[stratum]
        if len(keys) > 1:
            rng = random.Random(f"{seed}:{stratum}")
            chosen.extend(
                e for key in _choose_groups(keys, members, test_fraction, rng) for e in members[key]
            )
        else:
            alone.extend(members[keys[0]])
    fallback, labels = _choose_images(alone, counts, test_fraction, seed)
    chosen.extend(fallback)
    warnings = list(grouping.warnings)
    warnings.extend(ONE_GROUP_WARNING.format(label=label, were="were") for label in labels)
    test = tuple(sorted(chosen, key=lambda e: e.content_hash))
    return SplitPlan(test, grouping.n_groups, tuple(warnings), tuple(labels))


def _rarest(labels: set[str] | tuple[str, ...], counts: Counter[str]) -> str:
    return min(labels, key=lambda lab: (counts[lab], lab))


def _choose_images(
    entries: list[DatasetEntry], counts: Counter[str], fraction: float, seed: int
) -> tuple[list[DatasetEntry], list[str]]:
    """The image-level choice (stratum: an image's rarest label): ``round(fraction * n)`` images, at least
    one when the stratum has two or more, never all of them. Also returns the strata that gave images."""
    strata: dict[str, list[DatasetEntry]] = defaultdict(list)
    for e in sorted(entries, key=lambda e: e.content_hash):
        strata[_rarest(e.all_labels, counts)].append(e)
    chosen: list[DatasetEntry] = []
    labels: list[str] = []
    for key in sorted(strata):
        group = strata[key]
        if len(group) < 2:
            continue
        n_test = min(len(group) - 1, max(1, round(fraction * len(group))))
        chosen.extend(random.Random(f"{seed}:{key}").sample(group, n_test))
        labels.append(key)
    return chosen, labels


def _choose_groups(
    keys: list[str], members: dict[str, list[DatasetEntry]], fraction: float, rng: random.Random
) -> list[str]:
    """Shuffled groups, each taken when it brings TEST closer to the target; at least one, never all."""
    order = list(keys)
    rng.shuffle(order)
    target = fraction * sum(len(members[k]) for k in keys)
    taken: list[str] = []
    size = 0
    for key in order:
        if len(taken) == len(keys) - 1:
            break
        n = len(members[key])
        if abs(size + n - target) < abs(size - target):
            taken.append(key)
            size += n
    if not taken:  # every group alone overshoots twice over: take the smallest
        taken.append(min(order, key=lambda k: len(members[k])))
    return taken


def scene_grouping(
    scenes: SceneClusterer,
    store: ObjectStore,
    entries: Sequence[DatasetEntry],
    grouping: Grouping,
    seed: int,
    fallback: Grouping | None = None,
) -> Grouping:
    """``grouping`` with its groups clustered into scenes per stratum (the rarest label of a group's
    images), so that TEST holds whole scenes the model never trained on: a model is then judged as it
    will be on photos of a new day or place. Images of strata too small to cluster, and unlabelled
    images, keep their group in ``fallback`` (default: ``grouping``)."""
    labelled = [e for e in entries if e.all_labels]
    if not labelled:
        return grouping
    counts = Counter(label for e in labelled for label in e.all_labels)
    labels_of: dict[str, set[str]] = defaultdict(set)
    for e in labelled:
        labels_of[grouping.groups.get(e.content_hash, e.content_hash)].update(e.all_labels)
    items = []
    for e in labelled:
        group = grouping.groups.get(e.content_hash, e.content_hash)
        items.append(SceneItem(e.content_hash, group, _rarest(labels_of[group], counts)))
    found = scenes.scenes(items, lambda h: load_image(store, h), seed)
    base = fallback or grouping
    groups = dict(base.groups)
    groups.update((h, key) for h, key in found.items() if key.startswith(SCENE_KEY_PREFIX))
    return dataclasses.replace(base, groups=groups, n_groups=len(set(groups.values())))


def entry_phashes(svc: Services, entries: Sequence[DatasetEntry], *, remember: bool = True) -> dict[str, str]:
    """Each entry's perceptual hash (content hash -> hex). Entries stored without one (before hashes
    were computed at import) get it from their stored image, and it is stored for next time (unless
    ``remember`` is false: a preview writes nothing)."""
    out = {e.content_hash: e.phash for e in entries if e.phash}
    missing: dict[int, str] = {}
    for e in entries:
        if e.phash or e.content_hash in out:
            continue
        try:
            phash = svc.inspector.inspect(load_image(svc.store, e.content_hash)).phash
        except VisionloopError:
            continue  # an image that can no longer be read simply joins no group by its hash
        if phash:
            out[e.content_hash] = missing[e.id] = phash
    if missing and remember:
        svc.repo.set_entry_phashes(missing)
    return out


def _plan(
    svc: Services, entries: Sequence[DatasetEntry], test_fraction: float, seed: int, *, remember: bool
) -> SplitPlan:
    """The split of ``entries`` that split_dataset makes and preview_split shows (the same, by design)."""
    phashes = entry_phashes(svc, entries, remember=remember)
    grouping = group_entries(entries, phashes)
    if svc.scenes is not None:
        tight = group_entries(entries, phashes, block_runs=False)
        grouping = scene_grouping(svc.scenes, svc.store, entries, tight, seed, fallback=grouping)
    return plan_split(entries, test_fraction, seed, grouping)


def split_dataset(
    svc: Services, project_name: str, test_fraction: float = DEFAULT_TEST_FRACTION, seed: int = DEFAULT_SEED
) -> SplitRecord:
    """Move a grouped, stratified share of TRAIN into an empty TEST dataset and record the split."""
    project = get_project(svc, project_name)
    train = get_dataset(svc, project, DatasetType.TRAIN)
    test = ensure_dataset(svc, project, DatasetType.TEST)
    if svc.repo.count_entries(test.id):
        raise Conflict(f"project {project.name!r} already has a TEST dataset with images; empty it first")
    entries = svc.repo.list_entries(train.id)
    plan = _plan(svc, entries, test_fraction, seed, remember=True)
    now = svc.clock.now()
    svc.repo.move_entries([e.id for e in plan.test], test.id, now)
    return svc.repo.record_split(
        project.id,
        seed,
        test_fraction,
        [e.content_hash for e in plan.test],
        len(entries) - len(plan.test),
        now,
        n_groups=plan.n_groups,
        warnings=plan.warnings,
    )


# --- the split before it is made ------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelSplit:
    """One label's images after the split: those that stay in TRAIN, those that go to TEST."""

    label: str
    train: int
    test: int


@dataclass(frozen=True)
class SplitPreview:
    """What split_dataset would do now: per label, how many images would go to TEST, and the warnings a
    person should read before agreeing to it (shown on the console's Train page)."""

    labels: tuple[LabelSplit, ...]
    train_images: int  # images left in TRAIN (unlabelled ones included)
    test_images: int  # images that would move to TEST
    n_groups: int  # groups of similar photos; each goes to TEST whole
    test_fraction: float
    warnings: tuple[str, ...]


def preview_split(
    svc: Services, project_name: str, test_fraction: float = DEFAULT_TEST_FRACTION, seed: int = DEFAULT_SEED
) -> SplitPreview:
    """The automatic split of the project's TRAIN images, without moving anything or storing anything."""
    if not 0.0 < test_fraction < 1.0:
        raise InvalidInput(f"test fraction must be between 0 and 1, not {test_fraction}")
    project = get_project(svc, project_name)
    train = svc.repo.find_dataset(project.id, DatasetType.TRAIN)
    entries = svc.repo.list_entries(train.id) if train is not None else []
    plan = _plan(svc, entries, test_fraction, seed, remember=False)
    moved = {e.content_hash for e in plan.test}
    stay: Counter[str] = Counter()
    go: Counter[str] = Counter()
    for e in entries:
        for label in e.all_labels:
            (go if e.content_hash in moved else stay)[label] += 1
    labels = tuple(LabelSplit(lab, stay[lab], go[lab]) for lab in sorted({*stay, *go}))
    made = {ONE_GROUP_WARNING.format(label=label, were="were") for label in plan.one_group}
    warnings = [w for w in plan.warnings if w not in made]
    warnings.extend(ONE_GROUP_WARNING.format(label=label, were="would be") for label in plan.one_group)
    for ls in labels:
        if ls.test == 0:
            warnings.append(
                f"label {ls.label!r} would have no test images (it has {ls.train}): its results could not be "
                "measured; add more images of it"
            )
        elif ls.test < MIN_TEST_IMAGES:
            warnings.append(
                f"label {ls.label!r} would have {ls.test} test image{'s' if ls.test != 1 else ''}; at least "
                f"{MIN_TEST_IMAGES} are advised for a trustworthy evaluation"
            )
    return SplitPreview(
        labels, len(entries) - len(moved), len(moved), plan.n_groups, test_fraction, tuple(warnings)
    )
