"""Domain entities: plain dataclasses, no framework imports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class TaskType(StrEnum):
    """What a project's models learn."""

    CLASSIFICATION = "classification"  # one label per image
    MULTI_LABEL = "multi_label"  # any number of labels per image
    DETECTION = "object_detection"  # labelled boxes


class DatasetType(StrEnum):
    TRAIN = "train"
    TEST = "test"


class DatasetStatus(StrEnum):
    """Whether a dataset's creation finished. A dataset filled at creation (Rekognition's CreateDataset)
    is CREATING until its entries are committed; one whose creation failed, or was cut short by a
    server that stopped (marked at the next start), is FAILED."""

    CREATING = "CREATING"
    READY = "READY"
    FAILED = "FAILED"


class EntrySource(StrEnum):
    """How an entry came into a dataset."""

    IMPORT = "import"
    UPLOAD = "upload"
    HUMAN_REVIEW = "human_review"
    INBOX = "inbox"  # a watched inbox folder of the workflow bucket (core.inbox)


@dataclass(frozen=True)
class Box:
    """A labelled bounding box in ratios of the image size, origin top-left (Rekognition's convention)."""

    label: str
    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    task: TaskType
    created_at: datetime


@dataclass(frozen=True)
class Dataset:
    id: int
    project_id: int
    type: DatasetType
    created_at: datetime
    updated_at: datetime
    status: DatasetStatus = DatasetStatus.READY  # persisted (migration 0011): see DatasetStatus
    status_message: str | None = None


@dataclass(frozen=True)
class ImageInfo:
    """What the image inspector learns from an image's bytes."""

    format: str  # "JPEG" or "PNG"
    width: int  # after EXIF orientation
    height: int
    size_bytes: int
    content_hash: str  # sha256 hex of the bytes
    phash: str | None = None  # 64-bit difference hash (dHash), 16 hex chars: near-duplicates are close


@dataclass(frozen=True)
class NewEntry:
    """An entry about to be added to a dataset (its image is already stored)."""

    image: ImageInfo
    source_ref: str
    labels: tuple[str, ...] = ()
    boxes: tuple[Box, ...] = ()
    source: EntrySource = EntrySource.IMPORT
    review_ref: str | None = None
    phash: str | None = None  # stored as given, else as image.phash
    group: str | None = None  # an explicit group of similar photos (see core/grouping.py)
    manifest_line: str | None = None  # the Ground Truth line it was imported from, as given


@dataclass(frozen=True)
class DatasetEntry:
    id: int
    dataset_id: int
    content_hash: str
    source_ref: str
    format: str
    width: int
    height: int
    size_bytes: int
    labels: tuple[str, ...]
    boxes: tuple[Box, ...]
    source: EntrySource
    created_at: datetime
    review_ref: str | None = None
    phash: str | None = None  # None for entries stored before perceptual hashes were computed
    group: str | None = None
    manifest_line: str | None = None  # the Ground Truth line as given; None: written from the labels

    @property
    def all_labels(self) -> tuple[str, ...]:
        """Image-level labels plus the labels of its boxes, sorted, without repeats."""
        return tuple(sorted(set(self.labels) | {b.label for b in self.boxes}))

    @property
    def is_labeled(self) -> bool:
        return bool(self.labels or self.boxes)


@dataclass(frozen=True)
class ImportIssue:
    """One input the import could not take, with a reason the user can act on."""

    ref: str  # file path, "line 12", or s3:// reference
    code: str  # a Custom Labels style code, e.g. ERROR_INVALID_IMAGE
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"ref": self.ref, "code": self.code, "message": self.message}


@dataclass
class ImportReport:
    imported: int = 0
    skipped: int = 0  # duplicates already present or repeated in the input
    failed: int = 0
    issues: list[ImportIssue] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)
    entry_ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "imported": self.imported,
            "skipped": self.skipped,
            "failed": self.failed,
            "labels": sorted(self.labels),
            "issues": [i.to_dict() for i in self.issues],
        }


@dataclass(frozen=True)
class LabelCount:
    label: str
    train: int
    test: int
    train_boxes: int = 0
    test_boxes: int = 0


@dataclass(frozen=True)
class DatasetStats:
    images: int
    labeled: int
    unlabeled: int
    train_images: int
    test_images: int
    labels: tuple[LabelCount, ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "images": self.images,
            "labeled": self.labeled,
            "unlabeled": self.unlabeled,
            "train_images": self.train_images,
            "test_images": self.test_images,
            "labels": [lc.__dict__ for lc in self.labels],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class SplitRecord:
    """A recorded automatic TRAIN/TEST split: reproducible from its seed and fraction."""

    id: int
    project_id: int
    seed: int
    test_fraction: float
    created_at: datetime
    test_hashes: tuple[str, ...]
    train_count: int
    test_count: int
    n_groups: int = 0  # groups of similar photos the split kept together (0: recorded before groups)
    warnings: tuple[str, ...] = ()


class VersionStatus(StrEnum):
    """Rekognition Custom Labels' model version lifecycle."""

    TRAINING_IN_PROGRESS = "TRAINING_IN_PROGRESS"
    TRAINING_COMPLETED = "TRAINING_COMPLETED"
    TRAINING_FAILED = "TRAINING_FAILED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    DELETING = "DELETING"


@dataclass(frozen=True)
class ModelVersion:
    id: int
    project_id: int
    name: str
    status: VersionStatus
    status_message: str
    created_at: datetime
    backbone: str
    mode: str
    snapshot_id: str  # sha256 of the dataset snapshot the version was trained on
    training_ended_at: datetime | None = None
    f1: float | None = None
    thresholds: dict[str, float] = field(default_factory=dict)  # assumed threshold per label, 0..1
    artifact_key: str | None = None
    artifact_checksum: str | None = None
    evaluation: dict[str, object] | None = None  # metrics, as the engine reported them
    params: dict[str, object] = field(default_factory=dict)  # recipe and chosen hyper-parameters
    training_seconds: float | None = None
    # serving (StartProjectVersion / StopProjectVersion)
    min_inference_units: int | None = None  # as last requested; None until first started
    max_inference_units: int | None = None  # as last requested (equal to min: no autoscaling)
    inference_units: int = 0  # units serving now
    started_at: datetime | None = None  # when it last became RUNNING
    stopped_at: datetime | None = None  # when it last became STOPPED
    last_used_at: datetime | None = None  # last detection, recorded when it stops
    load_seconds: float | None = None  # what its last start cost, in seconds
    idle_timeout_seconds: float | None = None  # stop (scale to zero) after this long without requests
    auto_start: bool = False  # a request to a version stopped for idleness starts it again
    idle_stopped_at: datetime | None = None  # set when the idle timeout stopped it


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Job:
    id: int
    kind: str  # "train", or "compare" (core.gate: the champion/challenger comparison)
    project_id: int
    version_id: int | None
    status: JobStatus
    progress: float  # 0..1
    stage: str
    message: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    eta_seconds: float | None = None
    params: dict[str, object] | None = None  # what a job other than "train" works on (e.g. "compare")
    result: dict[str, object] | None = None  # what such a job found
    worker: str | None = None  # "host:pid" of the worker process that claimed it (migration 0011)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status.value,
            "progress": round(self.progress, 4),
            "stage": self.stage,
            "message": self.message,
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            **({"params": self.params} if self.params is not None else {}),
            **({"result": self.result} if self.result is not None else {}),
        }


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float  # 0..100
    box: Box | None = None
