"""Dataset-entry use cases behind Rekognition's dataset operations: fill a new dataset from a manifest or
by copying another dataset, list entries as Ground Truth lines with filters, count labels, upsert entries
keyed by ``source-ref``, distribute TRAIN entries into an empty TEST dataset, and delete a dataset.

A project made through the AWS API has no task of its own yet (Rekognition infers it from the data), so
the first entries that arrive in a project that has none decide it: boxes make it object detection, any
image with two or more labels makes it multi-label, otherwise it stays single-label classification."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from itertools import islice
from typing import Any

from visionloop.core.datasets import (
    ManifestReport,
    ManifestRules,
    adopt_task,
    import_manifest,
    import_manifest_text,
    is_blank,
)
from visionloop.core.entities import (
    Dataset,
    DatasetEntry,
    DatasetStatus,
    DatasetType,
    ImportReport,
    Project,
    SplitRecord,
)
from visionloop.core.entry_lines import entry_line, rejected_line
from visionloop.core.images import load_image
from visionloop.core.importing import (
    Candidate,
    run_import,
)
from visionloop.core.manifests import PixelBox, dumps_line
from visionloop.core.ports import EntryFilter
from visionloop.core.projects import all_entries
from visionloop.core.records.rejected_lines import RejectedLine
from visionloop.core.services import Services
from visionloop.core.splitting import split_dataset
from visionloop.errors import AlreadyExists, InvalidInput

MAX_INVALID_FRACTION = 0.2  # Custom Labels fails a manifest with more invalid lines than this


@dataclass(frozen=True)
class EntryQuery:
    """ListDatasetEntries' filters. ``labels`` keeps entries that carry any of them."""

    labels: tuple[str, ...] = ()
    labeled: bool | None = None
    source_ref_contains: str | None = None
    has_errors: bool | None = None


@dataclass(frozen=True)
class LabelStat:
    label: str
    entries: int  # entries carrying the label (image-level or on a box)
    boxes: int


@dataclass(frozen=True)
class EntryCounts:
    total: int
    labeled: int
    labels: int
    errors: int = 0  # rejected lines, kept with their errors (never trained on)


# --- creating and filling ------------------------------------------------------------------------------


INTERRUPTED = (
    "The server stopped before the dataset's entries were all imported ({n} had been); "
    "create the dataset again (CreateDataset replaces a failed dataset)."
)


def create_dataset(
    svc: Services, project: Project, dataset_type: DatasetType, filling: bool = False
) -> Dataset:
    """An empty dataset; AlreadyExists when the project has one of that type, unless that one's
    creation failed: it is replaced (deleted with its entries). With ``filling`` the new dataset is
    CREATING until finish_creation marks it READY or FAILED."""
    existing = svc.repo.find_dataset(project.id, dataset_type)
    if existing is not None and existing.status is DatasetStatus.FAILED:
        delete_dataset(svc, existing)
    elif existing is not None:
        raise AlreadyExists(f"project {project.name!r} already has a {dataset_type.value.upper()} dataset")
    status = DatasetStatus.CREATING if filling else DatasetStatus.READY
    return svc.repo.create_dataset(project.id, dataset_type, svc.clock.now(), status)


def finish_creation(svc: Services, dataset: Dataset, failed: str | None = None) -> None:
    """A CREATING dataset's entries are committed (READY), or its creation failed with this message."""
    status = DatasetStatus.READY if failed is None else DatasetStatus.FAILED
    svc.repo.set_dataset_status(dataset.id, status, failed, svc.clock.now())


def recover_interrupted_datasets(svc: Services) -> list[Dataset]:
    """At server start: datasets still CREATING were cut short by a server that stopped; each is
    marked FAILED (the entries it had are kept, for ListDatasetEntries, until it is replaced or
    deleted). Call it before the server serves, from the one server of the database."""
    failed = []
    for dataset in svc.repo.datasets_with_status(DatasetStatus.CREATING):
        finish_creation(svc, dataset, INTERRUPTED.format(n=svc.repo.count_entries(dataset.id)))
        failed.append(dataset)
    return failed


def fill_from_manifest(
    svc: Services, project: Project, dataset_type: DatasetType, manifest_uri: str
) -> ImportReport:
    """CreateDataset from a Ground Truth manifest: refused whole (InvalidManifest, nothing added) when
    more than 20% of its lines are invalid, bad JSON and failed images alike. A project without entries
    first takes the task the manifest's lines imply."""
    return import_manifest(
        svc,
        project.name,
        manifest_uri,
        dataset_type,
        max_invalid_fraction=MAX_INVALID_FRACTION,
        adopt_task=True,
    )


def copy_entries(svc: Services, project: Project, dataset: Dataset, source: Dataset) -> ImportReport:
    """Copy the entries of ``source`` (any project) into ``dataset`` through the import checks."""
    if is_blank(svc, project):
        project = adopt_task(svc, project, svc.repo.get_project_by_id(source.project_id).task)
    items = [_copy_candidate(svc, e) for e in all_entries(svc, source)]
    return run_import(svc, project, dataset, items)


def _copy_candidate(svc: Services, e: DatasetEntry) -> Candidate:
    boxes = tuple(
        PixelBox(b.label, b.left * e.width, b.top * e.height, b.width * e.width, b.height * e.height)
        for b in e.boxes
    )
    kind = "detection" if boxes else ("classification" if e.labels else "unlabeled")
    digest = e.content_hash
    load = lambda: load_image(svc.store, digest)  # noqa: E731
    return Candidate(e.source_ref, e.source_ref, load, e.labels, boxes, kind, e.group, e.manifest_line)


# --- reading -------------------------------------------------------------------------------------------


def entry_lines(
    svc: Services, project: Project, dataset: Dataset, query: EntryQuery, offset: int, limit: int
) -> list[str]:
    """Lines ``offset .. offset+limit`` that pass ``query``: the entries (in insertion order), each as its
    Ground Truth line with Rekognition's ``cl-metadata`` (core.entry_lines), then the rejected lines with
    their ``errors`` (``has_errors``: only those; False: none). A rejected line carries no usable label,
    so ``labels`` and ``labeled`` select among the entries only: rejected lines are left out."""
    out: list[dict[str, Any]] = []
    if not query.has_errors:
        job = f"visionloop/{project.name}/{dataset.type.value}"
        out = [entry_line(e, project.task, job) for e in _entries(svc, dataset, query, offset, limit)]
    if query.has_errors is False or query.labels or query.labeled is not None or len(out) >= limit:
        return [dumps_line(line) for line in out]
    skip = offset if query.has_errors else max(0, offset - _count_entries(svc, dataset, query))
    rejected = svc.repo.list_rejected_lines(dataset.id, query.source_ref_contains, skip, limit - len(out))
    return [dumps_line(line) for line in out + [rejected_line(r) for r in rejected]]


def _where(query: EntryQuery) -> EntryFilter:
    return EntryFilter(
        label=query.labels[0] if len(query.labels) == 1 else None,
        labeled=query.labeled,
        source_ref_contains=query.source_ref_contains,
    )


def _entries(
    svc: Services, dataset: Dataset, query: EntryQuery, offset: int, limit: int
) -> list[DatasetEntry]:
    if len(query.labels) > 1:
        wanted = set(query.labels)
        matching = (e for e in all_entries(svc, dataset, _where(query)) if wanted & set(e.all_labels))
        return list(islice(matching, offset, offset + limit))
    return svc.repo.list_entries(dataset.id, _where(query), offset, limit)


def _count_entries(svc: Services, dataset: Dataset, query: EntryQuery) -> int:
    """How many entries pass ``query``: the rejected lines' place in the listing starts after them."""
    return svc.repo.count_entries(dataset.id, _where(query))


def label_stats(svc: Services, dataset: Dataset) -> list[LabelStat]:
    """Each label of the dataset's entries with its entry and box counts, by name."""
    entries: Counter[str] = Counter()
    boxes: Counter[str] = Counter()
    for e in all_entries(svc, dataset):
        entries.update(e.all_labels)
        boxes.update(b.label for b in e.boxes)
    return [LabelStat(label, entries[label], boxes[label]) for label in sorted(entries)]


def image_count(svc: Services, dataset: Dataset) -> int:
    """How many images (entries, rejected lines left out) the dataset holds."""
    return svc.repo.count_entries(dataset.id)


def entry_counts(svc: Services, dataset: Dataset) -> EntryCounts:
    """DatasetStats: every line of the dataset (entries and rejected lines) is in ``total``, as every line
    of a Custom Labels manifest is; ``errors`` counts the rejected ones."""
    errors = svc.repo.count_rejected_lines(dataset.id)
    return EntryCounts(
        total=svc.repo.count_entries(dataset.id) + errors,
        labeled=svc.repo.count_entries(dataset.id, EntryFilter(labeled=True)),
        labels=len(label_stats(svc, dataset)),
        errors=errors,
    )


def names_of_test_images(svc: Services, project: Project, hashes: Collection[str]) -> dict[str, str]:
    """The file names the project's TEST images with these content hashes had when imported, by hash
    (an evaluation names its test images by hash; the TEST dataset as it is now names them)."""
    test = svc.repo.find_dataset(project.id, DatasetType.TEST)
    if test is None or not hashes:
        return {}
    found = (e for e in all_entries(svc, test) if e.content_hash in hashes)
    return {e.content_hash: _file_name(e.source_ref) for e in found}


def _file_name(source_ref: str) -> str:
    """The file name in a source reference: a path's or URI's last part, an upload's name."""
    return source_ref.removeprefix("upload:").rsplit("/", 1)[-1]


# --- rejected lines ------------------------------------------------------------------------------------


def rejected_lines(
    svc: Services, dataset: Dataset, offset: int = 0, limit: int | None = None
) -> tuple[int, list[RejectedLine]]:
    """How many manifest lines the dataset's imports rejected, and those ``offset .. offset+limit``
    (oldest first), each with its errors."""
    total = svc.repo.count_rejected_lines(dataset.id)
    return total, svc.repo.list_rejected_lines(dataset.id, None, offset, limit)


def delete_rejected_line(svc: Services, dataset: Dataset, line_id: int) -> None:
    """Forget a rejected line (NotFound when the dataset has no such line); to fix one instead, import a
    corrected line for its source-ref (UpdateDatasetEntries or a manifest import)."""
    svc.repo.delete_rejected_line(dataset.id, line_id)


# --- updating ------------------------------------------------------------------------------------------


def update_entries(svc: Services, project: Project, dataset: Dataset, ground_truth: bytes) -> ManifestReport:
    """UpdateDatasetEntries: upsert Ground Truth lines keyed by ``source-ref``: a line naming an entry of
    the dataset replaces that entry's labels; any other line is imported as a new entry. Nothing changes
    when a line cannot be parsed or relabelled (InvalidInput); images that fail the import checks are
    reported."""
    try:
        text = ground_truth.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the changes are not UTF-8 text") from None
    rules = ManifestRules(upsert=True, adopt_task=True)
    return import_manifest_text(svc, project, dataset.type, text, rules, origin="the changes")


# --- distributing and deleting -------------------------------------------------------------------------


def distribute_entries(svc: Services, project: Project, train: Dataset, test: Dataset) -> SplitRecord:
    """Move 20% of TRAIN (stratified by label, seeded) into the project's empty TEST dataset."""
    if train.type is not DatasetType.TRAIN or test.type is not DatasetType.TEST:
        raise InvalidInput("give the project's TRAIN dataset and its TEST dataset")
    if train.project_id != project.id or test.project_id != project.id:
        raise InvalidInput("both datasets must belong to the same project")
    if svc.repo.count_entries(test.id):
        raise InvalidInput(f"the TEST dataset of project {project.name!r} must be empty")
    if not svc.repo.count_entries(train.id):
        raise InvalidInput(f"the TRAIN dataset of project {project.name!r} is empty")
    return split_dataset(svc, project.name)


def delete_dataset(svc: Services, dataset: Dataset) -> None:
    """Delete the dataset and its entries (the images stay in the content-addressed store)."""
    svc.repo.delete_dataset(dataset.id)
