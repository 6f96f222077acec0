"""Use cases for projects and their TRAIN / TEST datasets."""

from __future__ import annotations

import re
from collections.abc import Iterator

from visionloop.core.entities import (
    Dataset,
    DatasetEntry,
    DatasetType,
    ModelVersion,
    Project,
    TaskType,
    VersionStatus,
)
from visionloop.core.ports import EntryFilter
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound

_NAME = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
# a project's name is also a folder name (its inbox, exports): "." and ".." would be the folder itself
# or its parent
_RESERVED_NAMES = frozenset({".", ".."})
PAGE = 1000  # entries read at a time when a filter or a count runs over a whole dataset
# versions that a project delete would pull from under a running unit or a training job
IN_USE = (
    VersionStatus.TRAINING_IN_PROGRESS,
    VersionStatus.STARTING,
    VersionStatus.RUNNING,
    VersionStatus.STOPPING,
)


def check_project_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"invalid project name {name!r}: use 1-255 letters, digits, '_', '.' or '-'")
    if name in _RESERVED_NAMES:
        raise InvalidInput(f"invalid project name {name!r}: '.' and '..' are reserved")
    return name


def parse_task(task: str | TaskType) -> TaskType:
    try:
        return TaskType(task)
    except ValueError:
        choices = ", ".join(t.value for t in TaskType)
        raise InvalidInput(f"unknown task {task!r}; choose one of: {choices}") from None


def create_project(svc: Services, name: str, task: str | TaskType = TaskType.CLASSIFICATION) -> Project:
    return svc.repo.create_project(check_project_name(name), parse_task(task), svc.clock.now())


def get_project(svc: Services, name: str) -> Project:
    return svc.repo.get_project(name)


def list_projects(svc: Services) -> list[Project]:
    """Every project, in the order they were created."""
    return svc.repo.list_projects()


def list_versions(svc: Services, project: Project) -> list[ModelVersion]:
    """The project's model versions, oldest first."""
    return svc.repo.list_versions(project.id)


def delete_project(svc: Services, name: str) -> None:
    """Delete the project with its datasets and entries (the stored images stay content-addressed).
    Refused (Conflict) while one of its model versions is training, starting, running or stopping, as
    Rekognition's DeleteProject and the console refuse: every interface deletes through here."""
    project = get_project(svc, name)
    busy = [v for v in list_versions(svc, project) if v.status in IN_USE]
    if busy:
        raise Conflict(
            f"model version {busy[0].name} of project {project.name} is {busy[0].status.value}: stop it "
            "(or wait for its training to end) before deleting the project",
            status=busy[0].status.value,
        )
    svc.repo.delete_project(project.id)


def list_datasets(svc: Services, project: Project) -> list[Dataset]:
    """The project's datasets (TRAIN, TEST: those it has)."""
    return svc.repo.list_datasets(project.id)


def find_dataset(svc: Services, project: Project, type: DatasetType) -> Dataset | None:
    """The project's dataset of ``type``, None if it has none."""
    return svc.repo.find_dataset(project.id, type)


def get_dataset(svc: Services, project: Project, type: DatasetType) -> Dataset:
    ds = find_dataset(svc, project, type)
    if ds is None:
        raise NotFound(f"project {project.name!r} has no {type.value.upper()} dataset")
    return ds


def image_counts(svc: Services, project: Project) -> dict[DatasetType, int]:
    """How many images each of the project's datasets holds (a type it has no dataset of is absent)."""
    return {d.type: svc.repo.count_entries(d.id) for d in list_datasets(svc, project)}


def all_entries(svc: Services, dataset: Dataset, where: EntryFilter | None = None) -> Iterator[DatasetEntry]:
    """Every entry of ``dataset`` that passes ``where``, in insertion order, read ``PAGE`` at a time."""
    offset = 0
    while True:
        page = svc.repo.list_entries(dataset.id, where, offset, PAGE)
        yield from page
        if len(page) < PAGE:
            return
        offset += PAGE


def ensure_dataset(svc: Services, project: Project, type: DatasetType) -> Dataset:
    """The project's dataset of ``type``, created empty if it does not exist yet."""
    ds = find_dataset(svc, project, type)
    if ds is not None:
        return ds
    try:
        return svc.repo.create_dataset(project.id, type, svc.clock.now())
    except AlreadyExists:  # created concurrently
        return get_dataset(svc, project, type)


def parse_dataset_type(value: str | DatasetType) -> DatasetType:
    try:
        return DatasetType(str(value).lower())
    except ValueError:
        raise InvalidInput(f"unknown dataset type {value!r}; choose train or test") from None
