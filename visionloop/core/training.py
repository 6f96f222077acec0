"""Use cases for model versions: request training (snapshot the datasets, queue a job), run a training
job through a TrainingEngine, store the artifact with a checksum, and predict with a trained version."""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from visionloop.core.entities import (
    Box,
    Dataset,
    DatasetEntry,
    DatasetStatus,
    DatasetType,
    Job,
    JobStatus,
    ModelVersion,
    Prediction,
    Project,
    TaskType,
    VersionStatus,
)
from visionloop.core.grouping import group_entries
from visionloop.core.ids import version_arn
from visionloop.core.images import load_image
from visionloop.core.jobs import finish_job
from visionloop.core.ports import (
    EVALUATED_PREFIX,
    LoadedDetector,
    LoadedModel,
    TrainingEngine,
    TrainingExample,
    TrainingSpec,
)
from visionloop.core.projects import get_dataset, get_project
from visionloop.core.scoring import check_detect_options, model_outputs, output_predictions
from visionloop.core.services import Services
from visionloop.core.splitting import SplitPreview, entry_phashes, preview_split, split_dataset
from visionloop.errors import Conflict, InvalidInput, NotFound, NotReady, StorageError, VisionloopError

MODELS_BUCKET = "models"
SNAPSHOTS_BUCKET = "snapshots"
DEFAULT_BACKBONE = "auto"  # the training recipe chooses (engines/recipe.py _MODE_DEFAULTS)
MODES = ("fast", "best")
_VERSION_NAME = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
READY_MESSAGE = "The model is ready to run."


@dataclass(frozen=True)
class TrainingOptions:
    version_name: str | None = None
    backbone: str = DEFAULT_BACKBONE
    mode: str = "fast"
    seed: int = 0
    max_seconds: float | None = None
    hyperparams: Mapping[str, object] | None = None
    auto_split: bool = True  # False: never move images; without TEST images training is then refused


NO_TEST_IMAGES = (
    "there are no test images: the evaluation, and each label's threshold, are measured on TEST images. "
    "Choose the automatic split, or move some images to TEST on the Dataset tab first"
)


def _check_complete(project: str, dataset: Dataset | None) -> None:
    """Train only on datasets whose creation finished (an interrupted CreateDataset is FAILED)."""
    if dataset is None or dataset.status is DatasetStatus.READY:
        return
    kind = dataset.type.value.lower()
    if dataset.status is DatasetStatus.CREATING:
        raise Conflict(f"the {kind} dataset of project {project} is still being created; train when it is")
    why = dataset.status_message or "no message"
    raise Conflict(
        f"the creation of the {kind} dataset of project {project} failed ({why}); "
        "create it again before training"
    )


def request_training(
    svc: Services, project_name: str, options: TrainingOptions | None = None
) -> tuple[ModelVersion, Job]:
    """Snapshot the project's datasets, create a version in TRAINING_IN_PROGRESS and queue its job.
    With no TEST images, 20% of TRAIN is split off first (stratified, seeded, recorded)."""
    opts = options or TrainingOptions()
    project = get_project(svc, project_name)
    if opts.mode not in MODES:
        raise InvalidInput(f"unknown training mode {opts.mode!r}; choose fast or best")
    if opts.max_seconds is not None and opts.max_seconds <= 0:
        raise InvalidInput("max_seconds must be positive")
    name = opts.version_name or _next_version_name(svc, project)
    if not _VERSION_NAME.match(name):
        raise InvalidInput(f"invalid version name {name!r}: use 1-255 letters, digits, '_', '.' or '-'")
    train = get_dataset(svc, project, DatasetType.TRAIN)
    test = svc.repo.find_dataset(project.id, DatasetType.TEST)
    for dataset in (train, test):
        _check_complete(project.name, dataset)
    splittable = _check_trainable(svc, project, train)
    empty_test = test is None or svc.repo.count_entries(test.id) == 0
    if empty_test and not opts.auto_split:
        raise InvalidInput(NO_TEST_IMAGES)
    if splittable and empty_test and svc.repo.count_entries(train.id) > 0:
        split_dataset(svc, project.name)
        test = svc.repo.find_dataset(project.id, DatasetType.TEST)
    snapshot = _snapshot(svc, project, train.id, test.id if test else None)
    body = json.dumps(snapshot, sort_keys=True, separators=(",", ":")).encode()
    snapshot_id = hashlib.sha256(body).hexdigest()
    if not svc.store.exists(SNAPSHOTS_BUCKET, f"{snapshot_id}.json"):
        svc.store.put(SNAPSHOTS_BUCKET, f"{snapshot_id}.json", body)
    now = svc.clock.now()
    version = svc.repo.create_version(project.id, name, opts.backbone, opts.mode, snapshot_id, now)
    version = svc.repo.update_version(
        version.id,
        params={
            "requested": {
                "backbone": opts.backbone,
                "mode": opts.mode,
                "seed": opts.seed,
                "max_seconds": opts.max_seconds,
                "hyperparams": dict(opts.hyperparams or {}),
            }
        },
    )
    job = svc.repo.create_job("train", project.id, version.id, now)
    return version, job


def split_preview(svc: Services, project_name: str) -> SplitPreview | None:
    """What training would set aside as TEST now (core.splitting.preview_split, nothing written), or
    None when training would not split: TEST already has images, TRAIN has no labelled image, or a
    classification project has fewer than 2 labels (its training fails first, moving nothing)."""
    project = get_project(svc, project_name)
    train = svc.repo.find_dataset(project.id, DatasetType.TRAIN)
    test = svc.repo.find_dataset(project.id, DatasetType.TEST)
    if train is None or (test is not None and svc.repo.count_entries(test.id) > 0):
        return None
    labels = {lab for e in svc.repo.list_entries(train.id) for lab in e.all_labels}
    if not labels or (project.task is TaskType.CLASSIFICATION and len(labels) < 2):
        return None
    return preview_split(svc, project.name)


def _check_trainable(svc: Services, project: Project, train: Dataset) -> bool:
    """Refuse a detection project whose TRAIN holds no box (InvalidInput, before anything changes).
    Returns whether the automatic split may run: not for a classification project with fewer than 2
    labels, whose version then fails with the reason (as Rekognition's does) and no image moves."""
    entries = svc.repo.list_entries(train.id)
    if project.task is TaskType.DETECTION:
        if not any(e.boxes for e in entries):
            raise InvalidInput(
                "the TRAIN dataset has no images with bounding boxes; an object detection model learns "
                "from boxes (draw them in the console or import a manifest with bounding boxes)"
            )
        return True
    return project.task is not TaskType.CLASSIFICATION or len({lab for e in entries for lab in e.labels}) >= 2


def _next_version_name(svc: Services, project: Project) -> str:
    taken = {v.name for v in svc.repo.list_versions(project.id)}
    n = len(taken) + 1
    while f"v{n}" in taken:
        n += 1
    return f"v{n}"


def _snapshot(svc: Services, project: Project, train_id: int, test_id: int | None) -> dict[str, Any]:
    """What a version trains on: TRAIN and TEST rows with their groups of similar photos (grouped over
    both datasets together, so that an engine's own folds can keep each group on one side), and whether
    TEST is what the project's last automatic split moved out of TRAIN (``test_split_off``)."""
    train = svc.repo.list_entries(train_id)
    test = svc.repo.list_entries(test_id) if test_id is not None else []
    splits = svc.repo.list_splits(project.id)
    split_off = bool(test) and bool(splits) and {e.content_hash for e in test} <= set(splits[-1].test_hashes)
    grouping = group_entries([*train, *test], entry_phashes(svc, [*train, *test]))

    def rows(entries: list[DatasetEntry]) -> list[dict[str, Any]]:
        return [
            {
                "hash": e.content_hash,
                "labels": list(e.labels),
                "boxes": [b.__dict__ for b in e.boxes],
                "group": grouping.groups[e.content_hash],
            }
            for e in entries
        ]

    return {
        "train": rows(train),
        "test": rows(test),
        "grouping": {
            "n_groups": grouping.n_groups,
            "evidence": grouping.evidence,
            "warnings": list(grouping.warnings),
        },
        "test_split_off": split_off,
    }


# --- running a training job ----------------------------------------------------------------------------


WRITE_EVERY_SECONDS = 0.5  # a job's progress is written at most this often, unless its stage changes
RATE_WINDOW_SECONDS = 20.0  # the ETA's rate: the progress made over about the last 20 s
MIN_RATE_SECONDS = 3.0  # no ETA until progress has been measured over at least this long


def stage_kind(stage: str) -> str:
    """A stage without its counts: "embedding images (40 of 120)" is of kind "embedding images"."""
    return stage.split(" (", 1)[0]


class JobProgress:
    """The progress callback of a training job: writes the job's progress, stage and ETA.

    The fraction never goes back (an engine's parts may overlap). A new kind of stage is written at once,
    other reports at most every WRITE_EVERY_SECONDS (the last one, 1.0, always). The ETA is what is left
    divided by the rate measured over the last RATE_WINDOW_SECONDS, and None ("estimating") until there
    is such a rate: an average since the start misleads when stages run at different speeds (60 s of
    reading and embedding, then 15 s of fitting, said "about 3 min left" 15 s before the end). The time
    of a stage that counted no work (loading a network, exported on its first use) is left out of it."""

    def __init__(self, svc: Services, job: Job, clock: Callable[[], float] = time.monotonic) -> None:
        self.svc, self.job, self.clock = svc, job, clock
        self.fraction, self.stage, self.written = 0.0, "", -math.inf
        self.kind, self.kind_fraction, self.kind_started = "", 0.0, clock()  # the current kind of stage
        self.samples: deque[tuple[float, float]] = deque([(clock(), 0.0)])
        self.lock = threading.Lock()

    def __call__(self, fraction: float, stage: str) -> None:
        with self.lock:
            now = self.clock()
            if stage_kind(stage) != self.kind:
                if self.fraction <= self.kind_fraction:  # the stage that ends counted no work (loading a
                    # network): the rate leaves its time out, as if the clock had stopped meanwhile
                    paused = now - self.kind_started
                    self.samples = deque((t + paused, f) for t, f in self.samples)
                self.kind, self.kind_fraction, self.kind_started = stage_kind(stage), self.fraction, now
            self.fraction = min(max(fraction, self.fraction, 0.0), 1.0)
            self.samples.append((now, self.fraction))
            while len(self.samples) > 2 and self.samples[1][0] <= now - RATE_WINDOW_SECONDS:
                self.samples.popleft()
            new_kind = stage_kind(stage) != stage_kind(self.stage)
            if not new_kind and now - self.written < WRITE_EVERY_SECONDS and self.fraction < 1.0:
                return
            self.stage, self.written = stage, now
            fraction, eta = self.fraction, self.eta(now)
        self.svc.repo.update_job(self.job.id, progress=fraction, stage=stage, eta_seconds=eta)

    def eta(self, now: float) -> float | None:
        """Seconds left at the measured rate; None before MIN_RATE_SECONDS of progress or while stalled."""
        then, was = self.samples[0]
        if now - then < MIN_RATE_SECONDS or self.fraction <= was:
            return None
        if self.fraction >= 1.0:
            return 0.0
        return (1.0 - self.fraction) * (now - then) / (self.fraction - was)


def run_training_job(
    svc: Services, engine: TrainingEngine, job: Job, region: str, account: str
) -> ModelVersion:
    """Train the job's version. Every failure ends as TRAINING_FAILED with a readable message."""
    if job.version_id is None:
        raise InvalidInput(f"job {job.id} has no model version")
    version = svc.repo.get_version_by_id(job.version_id)
    proj = svc.repo.get_project_by_id(version.project_id)
    started = time.monotonic()
    try:
        spec = _spec(svc, proj, version, region, account)
        trained = engine.train(spec, lambda h: load_image(svc.store, h), JobProgress(svc, job))
        key, checksum = _store_artifact(svc, proj, version, trained.files)
        seconds = time.monotonic() - started
        version = svc.repo.update_version(
            version.id,
            status=VersionStatus.TRAINING_COMPLETED,
            status_message=READY_MESSAGE,
            training_ended_at=svc.clock.now(),
            f1=trained.f1,
            thresholds=dict(trained.thresholds),
            evaluation=dict(trained.evaluation),
            params={**version.params, **dict(trained.params)},
            artifact_key=key,
            artifact_checksum=checksum,
            training_seconds=seconds,
        )
        svc.store.put(MODELS_BUCKET, f"{key}/{summary_name(proj.name, version.name)}", _json(trained.summary))
        finish_job(svc, job)
        return version
    except Exception as e:  # the job must end, whatever happened
        message = e.message if isinstance(e, VisionloopError) else f"internal error: {type(e).__name__}: {e}"
        svc.repo.update_version(
            version.id,
            status=VersionStatus.TRAINING_FAILED,
            status_message=message,
            training_ended_at=svc.clock.now(),
            training_seconds=time.monotonic() - started,
        )
        svc.repo.update_job(job.id, status=JobStatus.FAILED, message=message, finished_at=svc.clock.now())
        if not isinstance(e, VisionloopError):
            raise
        return svc.repo.get_version_by_id(version.id)


def summary_name(project: str, version: str) -> str:
    return f"EvaluationResultSummary-{project}-{version}.json"


def _examples(rows: list[dict[str, Any]], task: TaskType) -> tuple[TrainingExample, ...]:
    """The snapshot's labelled rows as examples; in a detection project, the images with boxes (their
    ``labels`` are the labels of their boxes). Snapshots taken before groups have no "group"."""
    if task is not TaskType.DETECTION:
        return tuple(
            TrainingExample(r["hash"], tuple(r["labels"]), r.get("group")) for r in rows if r["labels"]
        )
    out = []
    for r in rows:
        boxes = tuple(Box(**b) for b in r.get("boxes", ()))
        if boxes:
            labels = tuple(sorted({b.label for b in boxes}))
            out.append(TrainingExample(r["hash"], labels, r.get("group"), boxes))
    return tuple(out)


def _spec(svc: Services, project: Project, version: ModelVersion, region: str, account: str) -> TrainingSpec:
    snap = json.loads(svc.store.get(SNAPSHOTS_BUCKET, f"{version.snapshot_id}.json"))
    train, test = _examples(snap["train"], project.task), _examples(snap["test"], project.task)
    what = "images with bounding boxes" if project.task is TaskType.DETECTION else "labelled images"
    if not train:
        raise InvalidInput(f"the TRAIN dataset has no {what}")
    train_labels = {lab for ex in train for lab in ex.labels}
    if project.task is TaskType.CLASSIFICATION and len(train_labels) < 2:
        raise InvalidInput("a classification model needs at least 2 labels with training images")
    if not test:
        raise InvalidInput(
            f"the TEST dataset has no {what}; add test images or train with an automatic split"
        )
    test_labels = {lab for ex in test for lab in ex.labels}
    for label in sorted(test_labels - train_labels):
        raise InvalidInput(f"label '{label}' has no training images")
    requested = dict(version.params.get("requested", {}))  # type: ignore[call-overload]
    return TrainingSpec(
        project=project.name,
        version=version.name,
        version_arn=version_arn(region, account, project.name, version.name, version.created_at),
        task=project.task,
        labels=tuple(sorted(train_labels)),
        train=train,
        test=test,
        backbone=version.backbone,
        mode=version.mode,
        seed=int(requested.get("seed", 0)),
        max_seconds=requested.get("max_seconds"),
        hyperparams=dict(requested.get("hyperparams") or {}),
        grouping_warnings=tuple(snap.get("grouping", {}).get("warnings", ())),
        test_split_off=bool(snap.get("test_split_off", False)),
    )


def _json(doc: Mapping[str, object]) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=False).encode()


def _store_artifact(
    svc: Services, project: Project, version: ModelVersion, files: Mapping[str, bytes]
) -> tuple[str, str]:
    key = f"{project.name}/{version.name}-{version.id}"
    manifest = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
    svc.store.put_many(MODELS_BUCKET, [(f"{key}/{name}", data) for name, data in files.items()])
    body = _json({"files": manifest})
    svc.store.put(MODELS_BUCKET, f"{key}/artifact.json", body)
    return key, hashlib.sha256(body).hexdigest()


def load_artifact(svc: Services, version: ModelVersion) -> dict[str, bytes]:
    """The version's artifact files, each verified against the checksums stored with it."""
    if version.artifact_key is None or version.artifact_checksum is None:
        raise NotReady(f"model version {version.name!r} has no trained model ({version.status.value})")
    body = svc.store.get(MODELS_BUCKET, f"{version.artifact_key}/artifact.json")
    if hashlib.sha256(body).hexdigest() != version.artifact_checksum:
        raise StorageError(f"the artifact of model version {version.name!r} is corrupt (checksum mismatch)")
    files = {}
    for name, digest in json.loads(body)["files"].items():
        data = svc.store.get(MODELS_BUCKET, f"{version.artifact_key}/{name}")
        if hashlib.sha256(data).hexdigest() != digest:
            raise StorageError(f"artifact file {name!r} of model version {version.name!r} is corrupt")
        files[name] = data
    return files


def as_evaluated(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """An artifact's files as the model was when it was evaluated on TEST: the files under
    EVALUATED_PREFIX in place of those of the same name (the same files when it has none)."""
    out = {name: data for name, data in files.items() if not name.startswith(EVALUATED_PREFIX)}
    out.update(
        {
            name[len(EVALUATED_PREFIX) :]: data
            for name, data in files.items()
            if name.startswith(EVALUATED_PREFIX)
        }
    )
    return out


# --- prediction ----------------------------------------------------------------------------------------


class ModelCache:
    """Loaded models by version id, loaded once per process."""

    def __init__(self, svc: Services, engine: TrainingEngine) -> None:
        self.svc, self.engine = svc, engine
        self._models: dict[int, LoadedModel | LoadedDetector] = {}
        self._lock = threading.Lock()

    def get(self, version: ModelVersion) -> LoadedModel | LoadedDetector:
        with self._lock:
            model = self._models.get(version.id)
            if model is None:
                model = self.engine.load(load_artifact(self.svc, version))
                self._models[version.id] = model
            return model

    def evict(self, version_id: int) -> None:
        with self._lock:
            self._models.pop(version_id, None)


def get_version(svc: Services, project_name: str, version_name: str) -> ModelVersion:
    project = get_project(svc, project_name)
    return svc.repo.get_version(project.id, version_name)


def predict(
    cache: ModelCache,
    version: ModelVersion,
    images: Sequence[bytes],
    min_confidence: float | None = None,
    max_results: int | None = None,
) -> list[list[Prediction]]:
    """Labels per image sorted by confidence (0-100), each with its box from a detector. Without
    ``min_confidence`` each label's own assumed threshold applies, as Rekognition does;
    ``min_confidence=0`` returns every label (every object a detector kept)."""
    check_detect_options(min_confidence, max_results)
    if version.status in (VersionStatus.TRAINING_IN_PROGRESS, VersionStatus.TRAINING_FAILED):
        raise NotReady(f"model version {version.name!r} is {version.status.value}")
    model = cache.get(version)
    return [
        output_predictions(output, version.thresholds, min_confidence, max_results)
        for output in model_outputs(model, images)
    ]


def find_version(svc: Services, project_name: str, version_name: str | None) -> ModelVersion:
    """The named version, or the newest successfully trained one."""
    project = get_project(svc, project_name)
    if version_name:
        return svc.repo.get_version(project.id, version_name)
    trained = [v for v in svc.repo.list_versions(project.id) if v.artifact_key]
    if not trained:
        raise NotFound(f"project {project_name!r} has no trained model version")
    return trained[-1]
