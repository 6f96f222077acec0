"""Curating a dataset by hand, as the web console's dataset browser does it: a page of entries with
filters, the labels of one or many entries set, added or cleared, the boxes of a detection entry
replaced (each change through core.labels.relabel_entries), entries removed, and images uploaded in
batches (their labels given per image). A manifest's text is imported by core.datasets.

Label rules follow the project's task: a classification entry has at most one image-level label, a
multi-label entry any number, an object-detection entry only boxes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from visionloop.core.entities import (
    Box,
    Dataset,
    DatasetEntry,
    DatasetType,
    EntrySource,
    ImportIssue,
    ImportReport,
    Project,
    TaskType,
)
from visionloop.core.entries import LabelStat, label_stats
from visionloop.core.importing import Candidate, run_import, upload_candidate
from visionloop.core.labels import Relabel, check_label, project_labels, relabel_entries
from visionloop.core.ports import EntryFilter
from visionloop.core.projects import ensure_dataset, get_project
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, NotFound

MAX_SELECTED = 1000  # entries changed by one request
WALK_PAGE = 48  # entries read at a time while looking for the next one


@dataclass(frozen=True)
class EntryPage:
    entries: list[DatasetEntry]
    total: int  # entries that pass the filter
    offset: int
    limit: int


class LabelAction(StrEnum):
    SET = "set"  # replace the image-level labels with one label
    ADD = "add"  # add a label (multi-label projects)
    UNSET = "unset"  # remove one label (and, in detection projects, its boxes)
    CLEAR = "clear"  # remove every label and box: the entry becomes unlabelled


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its name (a relative path for folders), its bytes and its labels."""

    name: str
    data: bytes
    labels: tuple[str, ...] = ()
    issue: ImportIssue | None = None  # found before the bytes were read (too large, say)


def browse(svc: Services, dataset: Dataset, where: EntryFilter, offset: int, limit: int) -> EntryPage:
    """The entries ``offset .. offset+limit`` of ``dataset`` (insertion order) that pass ``where``."""
    if offset < 0 or limit < 1:
        raise InvalidInput("offset must be 0 or more and limit 1 or more")
    total = svc.repo.count_entries(dataset.id, where)
    return EntryPage(svc.repo.list_entries(dataset.id, where, offset, limit), total, offset, limit)


@dataclass(frozen=True)
class DatasetOverview:
    """What the dataset browser shows beside the images: the labels the project knows and, once the
    dataset exists, how many images it has (``all``, ``labelled``, ``unlabelled`` and one count per
    EntrySource value) and each label's counts."""

    labels: list[str]
    counts: dict[str, int] | None = None
    stats: list[LabelStat] = field(default_factory=list)


def dataset_overview(svc: Services, project: Project, dataset: Dataset | None) -> DatasetOverview:
    labels = project_labels(svc, project)
    if dataset is None:
        return DatasetOverview(labels)
    counts = {
        "all": svc.repo.count_entries(dataset.id),
        "labelled": svc.repo.count_entries(dataset.id, EntryFilter(labeled=True)),
        **{s.value: svc.repo.count_entries(dataset.id, EntryFilter(source=s)) for s in EntrySource},
    }
    counts["unlabelled"] = counts["all"] - counts["labelled"]
    return DatasetOverview(labels, counts, label_stats(svc, dataset))


def next_entry(
    svc: Services, dataset: Dataset, where: EntryFilter, start: int, after: int
) -> tuple[DatasetEntry, int] | None:
    """The first entry after entry ``after`` (by id) among those that pass ``where``, looking from place
    ``start`` on, with its place; None when there is none. "Save and next" walks a filtered dataset this
    way: labelling an image may take it out of the filter, so the caller starts a little before it."""
    start = max(0, start)
    while True:
        found = svc.repo.list_entries(dataset.id, where, start, WALK_PAGE)
        for i, e in enumerate(found):
            if e.id > after:
                return e, start + i
        if len(found) < WALK_PAGE:
            return None
        start += WALK_PAGE


def open_entry(svc: Services, project: Project, entry_id: int) -> tuple[DatasetEntry, Dataset]:
    """One entry of the project with the dataset it is in (NotFound when it is not the project's)."""
    (entry,) = project_entries(svc, project, [entry_id])
    dataset = next(d for d in svc.repo.list_datasets(project.id) if d.id == entry.dataset_id)
    return entry, dataset


def project_entries(svc: Services, project: Project, entry_ids: Sequence[int]) -> list[DatasetEntry]:
    """The entries with these ids, each checked to belong to ``project`` (NotFound otherwise)."""
    if len(entry_ids) > MAX_SELECTED:
        raise InvalidInput(f"choose at most {MAX_SELECTED} images at a time")
    datasets = {d.id for d in svc.repo.list_datasets(project.id)}
    entries = []
    for entry_id in dict.fromkeys(entry_ids):
        try:
            entry = svc.repo.get_entry(entry_id)
        except NotFound:
            entry = None
        if entry is None or entry.dataset_id not in datasets:
            raise NotFound(f"image {entry_id} is not in project {project.name!r} (it may have been removed)")
        entries.append(entry)
    return entries


def relabel(
    svc: Services, project_name: str, entry_ids: Sequence[int], action: LabelAction, label: str = ""
) -> int:
    """Apply ``action`` (with ``label``) to the entries; returns how many changed. Everything is checked
    before anything is written."""
    project = get_project(svc, project_name)
    entries = project_entries(svc, project, entry_ids)
    if not entries:
        raise InvalidInput("choose one or more images first")
    name = check_label(label) if action is not LabelAction.CLEAR else ""
    task = project.task
    if task is TaskType.DETECTION and action in (LabelAction.SET, LabelAction.ADD):
        raise InvalidInput(
            "images of an object-detection project are labelled with boxes: open an image to draw them"
        )
    if task is TaskType.CLASSIFICATION and action is LabelAction.ADD:
        action = LabelAction.SET  # one label per image: adding one replaces the other
    changes = [Relabel(e, *_apply(e, action, name)) for e in entries]
    changed = [c for c in changes if (c.labels, c.boxes) != (c.entry.labels, c.entry.boxes)]
    relabel_entries(svc, project, changed)
    return len(changed)


def _apply(e: DatasetEntry, action: LabelAction, name: str) -> tuple[tuple[str, ...], tuple[Box, ...]]:
    if action is LabelAction.SET:
        return (name,), e.boxes
    if action is LabelAction.ADD:
        return tuple(dict.fromkeys((*e.labels, name))), e.boxes
    if action is LabelAction.UNSET:
        return tuple(x for x in e.labels if x != name), tuple(b for b in e.boxes if b.label != name)
    return (), ()


def set_boxes(svc: Services, project_name: str, entry_id: int, boxes: Sequence[Box]) -> DatasetEntry:
    """Replace the boxes of an object-detection entry (ratios of the image size, origin top-left)."""
    project = get_project(svc, project_name)
    (entry,) = project_entries(svc, project, [entry_id])
    if project.task is not TaskType.DETECTION:
        raise InvalidInput(
            f"boxes belong to object-detection projects; {project.name} is {project.task.value}"
        )
    relabel_entries(svc, project, [Relabel(entry, (), tuple(boxes))])
    return svc.repo.get_entry(entry.id)


def remove_entries(svc: Services, project_name: str, entry_ids: Sequence[int]) -> int:
    """Remove the entries from their datasets (the stored images stay, content-addressed)."""
    project = get_project(svc, project_name)
    entries = project_entries(svc, project, entry_ids)
    svc.repo.delete_entries([e.id for e in entries])
    return len(entries)


def upload_images(
    svc: Services, project_name: str, dataset_type: DatasetType, uploads: Sequence[Upload]
) -> ImportReport:
    """Add uploaded images through the import checks; problems are reported per file, not raised."""
    project = get_project(svc, project_name)
    dataset = ensure_dataset(svc, project, dataset_type)
    items: list[Candidate | ImportIssue] = []
    for u in uploads:
        if u.issue is not None:
            items.append(u.issue)
        elif u.labels and project.task is TaskType.DETECTION:
            items.append(upload_candidate(u.data, u.name, (), ()))  # boxes are drawn later
        else:
            items.append(upload_candidate(u.data, u.name, u.labels, ()))
    return run_import(svc, project, dataset, items, source=EntrySource.UPLOAD)


def set_labels(svc: Services, project_name: str, entry_id: int, labels: Sequence[str]) -> DatasetEntry:
    """Give a classification or multi-label entry exactly ``labels`` (none: unlabelled)."""
    project = get_project(svc, project_name)
    (entry,) = project_entries(svc, project, [entry_id])
    if project.task is TaskType.DETECTION:
        raise InvalidInput("images of an object-detection project are labelled with boxes")
    relabel_entries(svc, project, [Relabel(entry, tuple(labels), entry.boxes)])
    return svc.repo.get_entry(entry.id)
