"""Labels: what a valid label name is, the labels a project knows (every label one of its images was
ever given; the console offers them as choices), and relabel_entries, the one way an entry already in a
dataset gets new labels or boxes (the console's label actions and box editor, the API's PUT of labels,
UpdateDatasetEntries' lines naming an existing image).

The project's task decides what an entry may carry: a classification entry at most one image-level
label, a multi-label entry any number, an object-detection entry boxes (an image-level label it has, a
reviewer's answer without boxes, may stay or go but none is added).

rename_label renames a label across the project, or merges it into another (the same call: renaming
to a label the project already has is a merge), in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from visionloop.core.entities import Box, DatasetEntry, Project, TaskType, VersionStatus
from visionloop.core.projects import get_project, list_versions
from visionloop.core.services import Services
from visionloop.errors import Conflict, InvalidInput, NotFound

MAX_LABEL_LENGTH = 256
MAX_BOXES = 100  # per image, as the review pages allow


class InvalidLabel(InvalidInput):
    """A label name that cannot be used."""


def check_label(name: object) -> str:
    """Return the label stripped of surrounding spaces; refuse empty, too long or non-text labels."""
    if not isinstance(name, str):
        raise InvalidLabel(f"label {name!r} is not text")
    label = name.strip()
    if not label:
        raise InvalidLabel("label is empty")
    if len(label) > MAX_LABEL_LENGTH:
        raise InvalidLabel(
            f"label {label[:40]!r}… is {len(label)} characters; the limit is {MAX_LABEL_LENGTH}"
        )
    if any(ord(c) < 32 for c in label):
        raise InvalidLabel(f"label {label!r} contains control characters")
    return label


def project_labels(svc: Services, project: Project) -> list[str]:
    """The labels the project knows, by name."""
    return svc.repo.list_labels(project.id)


def register_labels(svc: Services, project: Project, names: Iterable[str]) -> None:
    """Make ``names`` known to the project (those it knows already stay as they are)."""
    wanted = sorted(set(names))
    if wanted:
        svc.repo.add_labels(project.id, wanted)


@dataclass(frozen=True)
class Relabel:
    """What one entry is to carry from now on: its image-level labels and its boxes (ratios of the image
    size, origin top-left). ``where`` names the change in messages (a manifest line, say)."""

    entry: DatasetEntry
    labels: tuple[str, ...] = ()
    boxes: tuple[Box, ...] = ()
    where: str = ""


def relabel_entries(svc: Services, project: Project, changes: Sequence[Relabel]) -> None:
    """Give each entry its new labels and boxes, written even when they are the ones it has. Every change
    is checked against the project's task first (InvalidInput for the first bad one, and nothing is
    written); the labels written become known to the project."""
    checked = [_checked(project, c) for c in changes]
    now = svc.clock.now()
    for c in checked:
        svc.repo.set_entry_labels(c.entry.id, c.labels, c.boxes, now)
    register_labels(svc, project, (x for c in checked for x in (*c.labels, *(b.label for b in c.boxes))))


def _checked(project: Project, change: Relabel) -> Relabel:
    where = f"{change.where}: " if change.where else ""
    labels = tuple(dict.fromkeys(check_label(x) for x in change.labels))
    task, entry = project.task, change.entry
    if task is TaskType.DETECTION and not set(labels) <= set(entry.labels):
        raise InvalidInput(f"{where}images of an object-detection project are labelled with boxes")
    if task is TaskType.CLASSIFICATION and len(labels) > 1:
        raise InvalidInput(f"{where}{project.name} is single-label: choose one label, not {len(labels)}")
    boxes = change.boxes
    if boxes != entry.boxes:
        if task is not TaskType.DETECTION:
            raise InvalidInput(
                f"{where}boxes belong to object-detection projects; {project.name} is {task.value}"
            )
        if len(boxes) > MAX_BOXES:
            raise InvalidInput(f"{where}an image may have at most {MAX_BOXES} boxes")
        boxes = tuple(_checked_box(b, i, where) for i, b in enumerate(boxes))
    return Relabel(entry, labels, boxes, change.where)


def _checked_box(b: Box, i: int, where: str) -> Box:
    label = check_label(b.label)
    values = (b.left, b.top, b.width, b.height)
    if not all(0.0 <= v <= 1.0 for v in values) or b.width <= 0 or b.height <= 0:
        raise InvalidInput(f"{where}box {i + 1} ({label}) must lie inside the image and have a size")
    return Box(label, b.left, b.top, min(b.width, 1.0 - b.left), min(b.height, 1.0 - b.top))


@dataclass(frozen=True)
class LabelRename:
    """What rename_label did: ``merged`` when ``new`` was a label the project had already."""

    old: str
    new: str
    entries: int
    merged: bool


def rename_label(svc: Services, project_name: str, old: str, new: str) -> LabelRename:
    """Give every image of the project (TRAIN and TEST, image-level labels and boxes) that carries
    ``old`` the label ``new`` instead, in one transaction: nothing is half renamed, no image is removed,
    and an image that had both keeps one. Trained versions keep the names they were trained with.

    Refused (Conflict) while one of the project's versions trains, so that what the console shows
    during training stays what the version was given; InvalidInput for a bad or unchanged name,
    NotFound for a label the project does not have."""
    project = get_project(svc, project_name)
    old_name = old.strip()
    known = project_labels(svc, project)
    if old_name not in known:
        raise NotFound(f"project {project.name} has no label {old_name!r}")
    new_name = check_label(new)
    if new_name == old_name:
        raise InvalidInput(f"the new name is the label's own name, {old_name!r}: type another one")
    training = [v for v in list_versions(svc, project) if v.status is VersionStatus.TRAINING_IN_PROGRESS]
    if training:
        raise Conflict(
            f"model version {training[0].name} of project {project.name} is training: rename or merge "
            "labels once it has finished",
            status=training[0].status.value,
        )
    changed = svc.repo.rename_label(project.id, old_name, new_name, svc.clock.now())
    return LabelRename(old_name, new_name, changed, new_name in known)
