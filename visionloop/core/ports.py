"""The interfaces the core needs from the outside world. Adapters in visionloop.storage and
visionloop.imaging implement them; tests use the real adapters on temporary directories."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from visionloop.core.entities import (
    Box,
    Dataset,
    DatasetEntry,
    DatasetStatus,
    DatasetType,
    EntrySource,
    ImageInfo,
    Job,
    JobStatus,
    ModelVersion,
    NewEntry,
    Project,
    SplitRecord,
    TaskType,
    VersionStatus,
)
from visionloop.core.records.collections import Collection, FaceUser, NewFace, StoredFace
from visionloop.core.records.deployments import Deployment
from visionloop.core.records.detections import DetectionFilter, DetectionRecord, NewDetection
from visionloop.core.records.events import Event, EventType
from visionloop.core.records.inbox import InboxItem, InboxKind
from visionloop.core.records.notifications import Attempt, Channel, Delivery, DeliveryStatus, NewChannel
from visionloop.core.records.parameters import ParameterChange
from visionloop.core.records.rejected_lines import NewRejectedLine, RejectedLine
from visionloop.core.records.review import (
    FlowDefinition,
    FlowSettings,
    HumanLoop,
    Lease,
    LoopStatus,
    NewLoop,
    ReviewAnswer,
)
from visionloop.core.records.runs import Run, RunStatus, RunStep, StepStatus
from visionloop.core.records.schedules import Schedule


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

    def get(self, bucket: str, key: str, max_bytes: int | None = None) -> bytes:
        """The object's bytes; with ``max_bytes``, at most ``max_bytes + 1`` of them (callers check the
        length against their limit without reading all of a huge object)."""
        ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def delete(self, bucket: str, key: str) -> None: ...

    def move(self, bucket: str, key: str, new_key: str) -> None:
        """Give an object another key in its bucket (replacing an object there); ObjectNotFound when
        there is none at ``key``."""
        ...

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


class ProjectRepository(Protocol):
    """Projects and what they hold: datasets, their entries, the project's labels, splits
    (core.projects, core.datasets, core.entries, core.splitting)."""

    # projects
    def create_project(self, name: str, task: TaskType, now: datetime) -> Project: ...

    def get_project(self, name: str) -> Project: ...

    def get_project_by_id(self, project_id: int) -> Project: ...

    def list_projects(self) -> list[Project]: ...

    def delete_project(self, project_id: int) -> None: ...

    def set_project_task(self, project_id: int, task: TaskType) -> Project: ...

    # datasets
    def create_dataset(
        self, project_id: int, type: DatasetType, now: datetime, status: DatasetStatus = ...
    ) -> Dataset: ...

    def set_dataset_status(
        self, dataset_id: int, status: DatasetStatus, message: str | None, now: datetime
    ) -> None: ...

    def datasets_with_status(self, status: DatasetStatus) -> list[Dataset]: ...

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

    def rename_label(self, project_id: int, old: str, new: str, now: datetime) -> int:
        """In one transaction: the project's entries carrying ``old`` (image-level or on a box) carry
        ``new`` instead, once; the project knows ``new`` and no longer ``old``. Returns the entries
        changed."""

    def set_entry_phashes(self, phashes: Mapping[int, str]) -> None:
        """Store perceptual hashes computed after import (entry id -> dHash hex)."""

    def move_entries(self, entry_ids: Sequence[int], to_dataset_id: int, now: datetime) -> None: ...

    def delete_entries(self, entry_ids: Sequence[int]) -> None: ...

    def set_entry_manifest_lines(self, lines: Mapping[int, str | None]) -> None:
        """Replace the Ground Truth line of entries (entry id -> line as given, None: none)."""

    # rejected manifest lines (core.records.rejected_lines)
    def replace_rejected_lines(
        self, dataset_id: int, source_refs: Sequence[str], lines: Sequence[NewRejectedLine], now: datetime
    ) -> None:
        """In one transaction: forget the rejected lines naming these source-refs, keep ``lines``."""

    def list_rejected_lines(
        self,
        dataset_id: int,
        source_ref_contains: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[RejectedLine]: ...

    def count_rejected_lines(self, dataset_id: int, source_ref_contains: str | None = None) -> int: ...

    def delete_rejected_line(self, dataset_id: int, line_id: int) -> None:
        """NotFound when the dataset has no rejected line ``line_id``."""

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
        n_groups: int = 0,
        warnings: Sequence[str] = (),
    ) -> SplitRecord: ...

    def list_splits(self, project_id: int) -> list[SplitRecord]: ...


class VersionRepository(Protocol):
    """Model versions and the jobs that train, evaluate and serve them (core.training, core.jobs)."""

    def create_version(
        self, project_id: int, name: str, backbone: str, mode: str, snapshot_id: str, now: datetime
    ) -> ModelVersion: ...

    def get_version(self, project_id: int, name: str) -> ModelVersion: ...

    def get_version_by_id(self, version_id: int) -> ModelVersion: ...

    def list_versions(self, project_id: int) -> list[ModelVersion]: ...

    def update_version(self, version_id: int, **changes: object) -> ModelVersion: ...

    def transition_version(
        self, version_id: int, from_statuses: Sequence[VersionStatus], **changes: object
    ) -> ModelVersion | None:
        """Apply ``changes`` only if the version's status is one of ``from_statuses`` (atomically);
        None when it is not (or the version is gone)."""
        ...

    def delete_version(self, version_id: int) -> None: ...

    # jobs
    def create_job(
        self,
        kind: str,
        project_id: int,
        version_id: int | None,
        now: datetime,
        params: dict[str, object] | None = None,
    ) -> Job: ...

    def get_job(self, job_id: int) -> Job: ...

    def list_jobs(self, project_id: int | None = None, status: JobStatus | None = None) -> list[Job]: ...

    def claim_job(
        self, now: datetime, job_id: int | None = None, worker: str | None = None
    ) -> Job | None: ...

    def update_job(self, job_id: int, **changes: object) -> Job: ...

    def worker_present(self, worker: str) -> AbstractContextManager[None]: ...

    def worker_alive(self, worker: str) -> bool: ...


class RunRepository(Protocol):
    """Workflow runs and their steps (core.runs), schedules (core.schedules), deployments
    (core.deployments)."""

    def create_run(
        self, project_id: int, kind: str, trigger: str, inputs: Mapping[str, Any], now: datetime
    ) -> Run: ...

    def get_run(self, run_id: int) -> Run: ...

    def list_runs(
        self,
        project_id: int,
        *,
        status: RunStatus | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[Run]:
        """Newest first."""
        ...

    def active_runs(self, project_id: int | None) -> list[Run]:
        """QUEUED and RUNNING runs (of every project when None), oldest first."""
        ...

    def update_run(self, run_id: int, **changes: object) -> Run: ...

    def transition_run(
        self, run_id: int, from_statuses: Sequence[RunStatus], **changes: object
    ) -> Run | None:
        """Apply ``changes`` only if the run's status is one of ``from_statuses`` (atomically)."""
        ...

    def add_step(self, run_id: int, name: str, inputs: Mapping[str, Any], now: datetime) -> RunStep: ...

    def update_step(self, step_id: int, **changes: object) -> RunStep: ...

    def finish_step(
        self,
        step_id: int,
        status: StepStatus,
        output: Mapping[str, Any],
        error: str | None,
        now: datetime,
        run_id: int,
        run_changes: Mapping[str, object],
    ) -> None:
        """End a step and apply ``run_changes`` to its run, in one transaction."""
        ...

    def run_held(self, run_id: int) -> AbstractContextManager[bool]: ...

    def present(self, topic: str, first: Callable[[], object] | None = None) -> AbstractContextManager[bool]:
        """This process shown present under ``topic`` for the block, to every process on the database;
        yields whether it was the first, in which case ``first`` ran before the block while the others
        that began meanwhile waited (storage.base.SqlStore.present)."""
        ...

    def list_steps(self, run_id: int) -> list[RunStep]: ...

    def list_schedules(self, project_id: int) -> list[Schedule]: ...

    def create_schedule(self, project_id: int, kind: str, now: datetime, **values: object) -> Schedule:
        """Create it with ``values`` unless it exists (then: as stored, unchanged)."""
        ...

    def update_schedule(self, schedule_id: int, **changes: object) -> Schedule: ...

    def rearm_schedule(self, expected: Schedule, **changes: object) -> Schedule | None: ...

    def add_deployment(
        self,
        project_id: int,
        version_id: int,
        version_name: str,
        previous_name: str | None,
        run_id: int | None,
        reason: str,
        now: datetime,
    ) -> Deployment: ...

    def list_deployments(self, project_id: int, limit: int | None = None) -> list[Deployment]:
        """Newest first."""
        ...


class ReviewRepository(Protocol):
    """Human review (core.review): flows, loops, leases, answers, and the loops' outcomes over time."""

    def create_flow(
        self, project_id: int, name: str, arn: str, settings: FlowSettings, now: datetime
    ) -> FlowDefinition:
        """AlreadyExists when the project has a flow or the name is taken."""
        ...

    def update_flow(self, flow_id: int, settings: FlowSettings, now: datetime) -> FlowDefinition: ...

    def find_flow(self, project_id: int) -> FlowDefinition | None: ...

    def get_flow_by_id(self, flow_id: int) -> FlowDefinition: ...

    def get_flow_by_name(self, name: str) -> FlowDefinition | None: ...

    def create_loop(self, loop: NewLoop, now: datetime) -> HumanLoop:
        """AlreadyExists when the name is taken; Conflict when the image has an open loop in the project."""
        ...

    def find_loop(self, name: str) -> HumanLoop | None: ...

    def get_loop_by_id(self, loop_id: int) -> HumanLoop: ...

    def loop_input_hash(self, loop_id: int) -> str: ...

    def open_loop_for_image(self, project_id: int, content_hash: str) -> HumanLoop | None: ...

    def list_loops(
        self,
        flow_id: int,
        *,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        ascending: bool = False,
        status: LoopStatus | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[HumanLoop]: ...

    def count_loops(self, flow_id: int, statuses: Sequence[LoopStatus]) -> int: ...

    def transition_loop(
        self, loop_id: int, from_statuses: Sequence[LoopStatus], **changes: object
    ) -> HumanLoop | None:
        """Apply ``changes`` only if the loop's status is one of ``from_statuses`` (atomically)."""
        ...

    def update_loop(self, loop_id: int, **changes: object) -> HumanLoop: ...

    def delete_loop(self, loop_id: int, from_statuses: Sequence[LoopStatus]) -> bool: ...

    def expire_loops(self, now: datetime) -> int: ...

    def list_leases(self, loop_id: int) -> list[Lease]: ...

    def lease_next_loop(
        self, reviewer: str, now: datetime, day_start: datetime, project_id: int | None = None
    ) -> tuple[HumanLoop, Lease] | None:
        """Atomically lease the next open slot of an InProgress loop to ``reviewer`` (see
        core.review.next_item); None when there is none or the budgets are spent."""
        ...

    def release_lease(self, loop_id: int, reviewer: str, skip: bool) -> None: ...

    def record_answer(
        self, loop_id: int, reviewer: str, label: str | None, boxes: Sequence[Box], now: datetime
    ) -> list[ReviewAnswer]:
        """Store the answer of the reviewer leasing the loop (Conflict otherwise); all its answers."""
        ...

    def list_answers(self, loop_id: int) -> list[ReviewAnswer]: ...

    def loop_answers_pairs(self, project_id: int) -> list[tuple[str | None, str]]:
        """(model answer, human answer) of the project's Completed loops that have a human answer."""
        ...

    def loop_outcomes(
        self, project_id: int, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[tuple[datetime, str | None, str, str]]:
        """(completed at, model answer, human answer, purpose) of the project's Completed loops with a
        human answer, completed in [since, until), oldest first."""
        ...

    def newest_loop_at(self, project_id: int, purpose: str) -> datetime | None:
        """When the project's newest loop of ``purpose`` (a core.review.LoopPurpose value) was created."""
        ...


class DetectionRepository(Protocol):
    """The detection log (core.detections) and the inboxes' ledger (core.inbox)."""

    def add_detections(self, rows: Sequence[NewDetection]) -> list[DetectionRecord]:
        """Insert the rows in one transaction; rows of a project deleted meanwhile are left out."""
        ...

    def list_detections(
        self, project_id: int, where: DetectionFilter, *, before_id: int | None = None, limit: int = 100
    ) -> list[DetectionRecord]:
        """Newest (highest id) first; with ``where.label``, ids are those of the label's rows."""
        ...

    def get_detection(self, detection_id: int) -> DetectionRecord: ...

    def find_detection(self, ref: str) -> DetectionRecord | None: ...

    def detection_loops(self, project_id: int, ref: str) -> list[dict[str, object]]:
        """The human loops a detection started (``name``, ``purpose``, ``status``, ``human_answer``,
        ``agrees``), oldest first."""
        ...

    def prune_detections(self, *, before: datetime | None = None, keep_per_project: int | None = None) -> int:
        """Delete detections older than ``before`` and all but each project's newest ``keep_per_project``."""
        ...

    def claim_inbox_item(
        self,
        project_id: int,
        kind: InboxKind,
        key: str,
        content_hash: str,
        now: datetime,
        stale_before: datetime,
    ) -> InboxItem | None:
        """The object's open item for this caller (new, left done/failed but not moved, or a claim older
        than ``stale_before``); None while another caller's claim is fresh."""
        ...

    def update_inbox_item(self, item_id: int, **changes: object) -> InboxItem:
        """``status``, ``finished_at``, ``result`` (a JSON object), ``message``, ``moved_to``, ``open_key``
        (None closes the item)."""
        ...

    def list_inbox_items(self, project_id: int, *, limit: int = 100) -> list[InboxItem]: ...


class ParameterRepository(Protocol):
    """Parameters, their history, and workflow state (core.parameters)."""

    def get_parameter_values(self, project_id: int) -> dict[str, object]:
        """The values stored for the project (keys never set are absent)."""
        ...

    def update_parameter_values(
        self,
        project_id: int,
        values: Mapping[str, object],
        defaults: Mapping[str, object],
        changed_by: str,
        now: datetime,
    ) -> list[ParameterChange]:
        """Store the values whose value changes (the old one: stored, else ``defaults[key]``) and a
        history row for each, in one write transaction; the changes, in the order given."""
        ...

    def list_parameter_history(
        self, project_id: int, *, key: str | None = None, offset: int = 0, limit: int = 100
    ) -> list[ParameterChange]:
        """Newest first."""
        ...

    def get_workflow_state(self, project_id: int) -> dict[str, object]: ...

    def update_workflow_state(
        self, project_id: int, fn: Callable[[dict[str, object]], Mapping[str, object]], now: datetime
    ) -> dict[str, object]:
        """Write what ``fn(state)`` returns (None deletes a key), read and written in one write
        transaction; the state after."""
        ...


class EventRepository(Protocol):
    """Events (core.events), notification channels and deliveries (core.notifications)."""

    def add_event(
        self, project_id: int, type: EventType, payload: Mapping[str, object], now: datetime
    ) -> Event:
        """Store the event and, in the same transaction, one pending delivery per enabled notification
        channel of the project that wants its type."""
        ...

    def list_events(
        self,
        project_id: int,
        *,
        type: EventType | None = None,
        since: datetime | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """Oldest first."""
        ...

    # notification channels and deliveries (core.notifications)
    def create_channel(self, new: NewChannel, now: datetime) -> Channel:
        """AlreadyExists when the project has a channel of that name."""
        ...

    def list_channels(self, project_id: int) -> list[Channel]: ...

    def find_channel(self, project_id: int, name: str) -> Channel | None: ...

    def update_channel(self, channel_id: int, now: datetime, **changes: object) -> Channel:
        """``enabled`` (bool), ``events`` (tuple of EventType)."""
        ...

    def delete_channel(self, channel_id: int) -> None: ...

    def list_deliveries(
        self,
        project_id: int,
        *,
        channel_id: int | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Newest first."""
        ...

    def get_delivery(self, delivery_id: int) -> Delivery: ...

    def list_attempts(self, delivery_id: int) -> list[Attempt]: ...

    def claim_deliveries(self, now: datetime, until: datetime, limit: int) -> list[tuple[Delivery, Channel]]:
        """Pending deliveries to enabled channels due at ``now``, each leased until ``until``."""
        ...

    def record_attempt(
        self, attempt: Attempt, status: DeliveryStatus, next_attempt_at: datetime, now: datetime
    ) -> Delivery: ...

    def next_delivery_due(self) -> datetime | None: ...


class CollectionRepository(Protocol):
    """Face collections, their faces (with identity vectors) and users (core.collections). Every change
    of a collection's faces bumps its ``revision``; a missing collection or user is NotFound."""

    def create_collection(
        self, name: str, face_model_version: str, embedding_dim: int, tags: Mapping[str, str], now: datetime
    ) -> Collection:
        """AlreadyExists when the name is taken."""
        ...

    def get_collection(self, name: str, counts: bool = True) -> Collection:
        """The collection; without ``counts`` its face and user counts read 0 (not counted: cheaper)."""
        ...

    def list_collections(self) -> list[Collection]:
        """By name."""
        ...

    def delete_collection(self, collection_id: int) -> None:
        """The collection with its faces, vectors and users."""
        ...

    def set_collection_tags(self, collection_id: int, tags: Mapping[str, str]) -> None: ...

    def add_faces(self, collection_id: int, new: Sequence[NewFace], now: datetime) -> list[StoredFace]: ...

    def list_faces(
        self,
        collection_id: int,
        *,
        user_id: str | None = None,
        face_ids: Sequence[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[StoredFace]:
        """Oldest first."""
        ...

    def delete_faces(self, collection_id: int, face_ids: Sequence[str]) -> list[str]:
        """The ids deleted, in the order given."""
        ...

    def collection_vectors(self, collection_id: int) -> tuple[int, list[StoredFace], list[bytes]]:
        """The revision (read first), every face (oldest first) and its float32 vector."""
        ...

    def nearest_faces(
        self, collection_id: int, vector: bytes, limit: int, exclude: str | None = None
    ) -> list[tuple[StoredFace, float]]:
        """The ``limit`` faces nearest to ``vector`` (float32, unit length) with their Euclidean distance,
        nearest first, without the face ``exclude``; exact, over every face of the collection."""
        ...

    def nearest_users(
        self, collection_id: int, vector: bytes, limit: int, exclude: str | None = None
    ) -> list[tuple[str, float]]:
        """The ``limit`` users whose nearest face is nearest to ``vector``, with that distance, nearest
        first, without the user ``exclude``."""
        ...

    def face_vectors(self, collection_id: int, face_ids: Sequence[str]) -> dict[str, bytes]:
        """The vectors of those of the faces that exist."""
        ...

    def user_vectors(self, collection_id: int, user_id: str) -> list[bytes]:
        """The vectors of the user's faces."""
        ...

    def create_user(
        self, collection_id: int, user_id: str, now: datetime, token: str | None = None
    ) -> FaceUser:
        """AlreadyExists when the collection has the user, unless it was created with ``token`` (a
        request's idempotency token: the retry of a request that succeeded)."""
        ...

    def get_user(self, collection_id: int, user_id: str) -> FaceUser: ...

    def list_users(self, collection_id: int, *, offset: int = 0, limit: int | None = None) -> list[FaceUser]:
        """Oldest first."""
        ...

    def delete_user(self, collection_id: int, user_id: str) -> None:
        """The user; its faces stay, associated with nobody."""
        ...

    def associate_faces(
        self, collection_id: int, user_id: str, face_ids: Sequence[str], max_faces: int
    ) -> list[str]:
        """Associate the faces that exist and belong to nobody (the ids, in the order given);
        QuotaExceeded when the user would hold more than ``max_faces``."""
        ...

    def disassociate_faces(self, collection_id: int, user_id: str, face_ids: Sequence[str]) -> list[str]:
        """Free the faces the user holds (the ids, in the order given)."""
        ...


class FlowDefinitionRepository(Protocol):
    """The flows as the SageMaker API sees them (visionloop.sagemaker): across projects, with the
    CreateFlowDefinition request kept beside a flow created that way."""

    def list_flows(self) -> list[FlowDefinition]:
        """Every project's flow, oldest first."""
        ...

    def put_flow_definition(self, flow_id: int, definition: Mapping[str, Any]) -> None: ...

    def get_flow_definition(self, flow_id: int) -> dict[str, Any] | None: ...

    def delete_flow(self, flow_id: int) -> bool:
        """Delete the flow unless it has human loops (False then, or when it does not exist)."""
        ...


class Repository(
    ProjectRepository,
    VersionRepository,
    RunRepository,
    ReviewRepository,
    FlowDefinitionRepository,
    DetectionRepository,
    ParameterRepository,
    EventRepository,
    CollectionRepository,
    Protocol,
):
    """The metadata storage: every aggregate's repository in one (storage.sql.SqlRepository). A use case
    that needs only some aggregates may ask for their protocols."""

    def close(self) -> None: ...


# --- machine learning ----------------------------------------------------------------------------------


SCENE_KEY_PREFIX = "scene:"  # the keys a SceneClusterer gives to the images it clustered
#: A trained artifact's files under this prefix replace the files of the same name to give the model as it
#: was evaluated, when the served one has since learned its TEST images too (TrainingSpec.test_split_off):
#: comparing two versions on images neither has seen needs the evaluated models (core.gate).
EVALUATED_PREFIX = "evaluated/"


@dataclass(frozen=True)
class SceneItem:
    """An image to cluster into scenes: its group of similar photos and its stratum (rarest label)."""

    content_hash: str
    group: str
    stratum: str


class SceneClusterer(Protocol):
    """Clusters groups of photos by what they look like (engines.scenes), so that a split can hold out
    whole scenes. Strata too small to cluster keep their groups."""

    def scenes(self, items: Sequence[SceneItem], load: Callable[[str], bytes], seed: int) -> dict[str, str]:
        """Content hash -> scene key (images of one group always share it). Images it clustered get keys
        starting with SCENE_KEY_PREFIX; the others keep their group."""
        ...


@dataclass(frozen=True)
class TrainingExample:
    content_hash: str
    labels: tuple[str, ...]
    group: str | None = None  # group of similar photos (core/grouping.py): keep it on one side of a fold
    boxes: tuple[Box, ...] = ()  # object detection: the true boxes (``labels`` then holds their labels)


@dataclass(frozen=True)
class TrainingSpec:
    """Everything an engine needs to train and evaluate one model version."""

    project: str
    version: str
    version_arn: str
    task: TaskType
    labels: tuple[str, ...]  # the label set, sorted; label indices refer to it
    train: tuple[TrainingExample, ...]
    test: tuple[TrainingExample, ...]
    backbone: str
    mode: str  # "fast" or "best"
    seed: int
    max_seconds: float | None
    hyperparams: Mapping[str, object]
    grouping_warnings: tuple[str, ...] = ()  # from grouping TRAIN + TEST, for the evaluation to report
    # TEST holds exactly the images an automatic split moved out of TRAIN (training's own split, or
    # DistributeDatasetEntries): the user gave them all to train on
    test_split_off: bool = False


@dataclass(frozen=True)
class TrainedModel:
    files: Mapping[str, bytes]  # the artifact, file name -> bytes
    f1: float
    thresholds: Mapping[str, float]  # assumed threshold per label, 0..1
    evaluation: Mapping[str, object]  # metrics as JSON-ready data
    summary: Mapping[str, object]  # Rekognition's EvaluationResultSummary document
    params: Mapping[str, object]  # recipe and chosen hyper-parameters


ProgressFn = Callable[[float, str], None]  # (fraction done 0..1, stage)


@dataclass(frozen=True)
class FoundObject:
    """One object a detector found: its label, a probability (0..1) and its box (ratios of the image)."""

    label: str
    probability: float
    box: Box


@dataclass(frozen=True)
class ImageOutput:
    """What a model says of one image. ``probs``: every label's probability (0..1); from a detector,
    the probability of the label's best object (0 without one). ``objects``: a detector's objects, None
    from a classifier (core.scoring.output_predictions applies the threshold rule to either)."""

    probs: dict[str, float]
    objects: tuple[FoundObject, ...] | None = None


class LoadedModel(Protocol):
    labels: tuple[str, ...]

    def predict(self, images: Sequence[bytes]) -> list[list[float]]:
        """Calibrated probabilities (0..1), one list per image in the order of ``labels``."""
        ...


@runtime_checkable
class LoadedDetector(Protocol):
    """A loaded object detector (what TrainingEngine.load returns for an object-detection version)."""

    labels: tuple[str, ...]

    def detect(self, images: Sequence[bytes]) -> list[list[FoundObject]]:
        """The objects found in each image, best first."""
        ...


class TrainingEngine(Protocol):
    def train(
        self, spec: TrainingSpec, load_image: Callable[[str], bytes], progress: ProgressFn
    ) -> TrainedModel: ...

    def load(self, files: Mapping[str, bytes]) -> LoadedModel | LoadedDetector: ...


# --- serving -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolStats:
    """What an inference host knows about one version's units, at one moment."""

    units: int  # units loaded and serving
    loading: int  # units being started
    target: int  # units the pool is asked to keep
    busy: int  # units working on a batch now
    queued: int  # requests waiting for a unit
    idle_seconds: float  # since the last request (or since the pool started)
    served: int  # images predicted since the pool started
    restarts: int  # units replaced after they died


StartedFn = Callable[[float | None, str | None], None]  # (load seconds, None) or (None, error message)


class InferenceHost(Protocol):
    """Keeps loaded models in inference units (worker processes) and runs predictions on them."""

    def start(
        self, version_id: int, files: Callable[[], Mapping[str, bytes]], units: int, started: StartedFn
    ) -> None:
        """Start ``units`` units in the background, each loading the artifact ``files()`` returns; call
        ``started`` once all of them serve, or with the error once loading failed (nothing is left)."""
        ...

    def scale(self, version_id: int, units: int) -> None:
        """Add (in the background) or remove units until the pool has ``units``."""
        ...

    def stop(self, version_id: int, stopped: Callable[[], None] | None = None) -> None:
        """Stop the version's units; queued requests fail with NotReady; then call ``stopped``."""
        ...

    def submit(self, version_id: int, images: Sequence[bytes]) -> Future[list[ImageOutput]]:
        """Queue images for prediction: the future gives what the model says of each image.
        Raises NotReady when the version has no serving units here."""
        ...

    def stats(self, version_id: int) -> PoolStats | None: ...

    def versions(self) -> list[int]:
        """Ids of the versions with a pool (starting, serving or stopping)."""
        ...

    def wait_ready(self, version_id: int, timeout: float) -> bool:
        """Block until the version's pool serves (True) or failed, stopped or timed out (False)."""
        ...

    def close(self) -> None: ...
