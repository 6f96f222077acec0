"""The interfaces the core needs from the outside world. Adapters in visionloop.storage and
visionloop.imaging implement them; tests use the real adapters on temporary directories."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from visionloop.core.entities import (
    Box,
    Dataset,
    DatasetEntry,
    DatasetType,
    EntrySource,
    ImageInfo,
    NewEntry,
    Project,
    SplitRecord,
    TaskType,
)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


class ObjectStore(Protocol):
    """Keyed object storage organised in buckets (a local folder tree, or S3)."""

    def put(self, bucket: str, key: str, data: bytes) -> None: ...

    def put_many(self, bucket: str, items: Sequence[tuple[str, bytes]]) -> None: ...

    def get(self, bucket: str, key: str) -> bytes: ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def delete(self, bucket: str, key: str) -> None: ...

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def list_buckets(self) -> list[str]: ...

    def create_bucket(self, bucket: str) -> None: ...


class ImageInspector(Protocol):
    """Reads an image's format and size and checks that it decodes completely."""

    def inspect(self, data: bytes, max_pixels: int | None = None) -> ImageInfo: ...


@dataclass(frozen=True)
class EntryFilter:
    label: str | None = None
    labeled: bool | None = None
    source: EntrySource | None = None
    source_ref_contains: str | None = None


class Repository(Protocol):
    """Metadata storage for projects, datasets and their entries."""

    def close(self) -> None: ...

    # projects
    def create_project(self, name: str, task: TaskType, now: datetime) -> Project: ...

    def get_project(self, name: str) -> Project: ...

    def list_projects(self) -> list[Project]: ...

    def delete_project(self, project_id: int) -> None: ...

    # datasets
    def create_dataset(self, project_id: int, type: DatasetType, now: datetime) -> Dataset: ...

    def find_dataset(self, project_id: int, type: DatasetType) -> Dataset | None: ...

    def list_datasets(self, project_id: int) -> list[Dataset]: ...

    def delete_dataset(self, dataset_id: int) -> None: ...

    # entries
    def add_entries(self, dataset_id: int, entries: Sequence[NewEntry], now: datetime) -> list[int]: ...

    def list_entries(
        self, dataset_id: int, where: EntryFilter | None = None, offset: int = 0, limit: int | None = None
    ) -> list[DatasetEntry]: ...

    def count_entries(self, dataset_id: int, where: EntryFilter | None = None) -> int: ...

    def entry_hashes(self, dataset_id: int) -> set[str]: ...

    def get_entry(self, entry_id: int) -> DatasetEntry: ...

    def set_entry_labels(
        self, entry_id: int, labels: Sequence[str], boxes: Sequence[Box], now: datetime
    ) -> None: ...

    def move_entries(self, entry_ids: Sequence[int], to_dataset_id: int, now: datetime) -> None: ...

    def delete_entries(self, entry_ids: Sequence[int]) -> None: ...

    # labels
    def add_labels(self, project_id: int, names: Sequence[str]) -> None: ...

    def list_labels(self, project_id: int) -> list[str]: ...

    # splits
    def record_split(
        self,
        project_id: int,
        seed: int,
        test_fraction: float,
        test_hashes: Sequence[str],
        train_count: int,
        now: datetime,
    ) -> SplitRecord: ...

    def list_splits(self, project_id: int) -> list[SplitRecord]: ...
