"""Use cases for serving model versions, in Rekognition Custom Labels' lifecycle:

    StartProjectVersion  TRAINING_COMPLETED | STOPPED | FAILED → STARTING → RUNNING | FAILED (with a message)
    StopProjectVersion   RUNNING | STARTING → STOPPING → STOPPED
    DeleteProjectVersion refused while RUNNING | STARTING | STOPPING | TRAINING_IN_PROGRESS
    DetectCustomLabels   only while RUNNING (NotReady otherwise)

A started version is served by 1..n inference units (worker processes behind ports.InferenceHost, see
visionloop.workflows.inference). ``maintain`` is called periodically by the server: it scales a version
between MinInferenceUnits and MaxInferenceUnits by its queue, stops (scales to zero) a version idle for
longer than its idle timeout, and records how many units serve. ``recover_serving`` runs once when the
server starts, so that no version stays RUNNING or STARTING without units.

Several servers on one database (docs/scale.md): each serves every RUNNING version with units of its
own. The server that starts a version records its lifecycle (STARTING → RUNNING, and its stop); every
other one *follows* it: it loads units of its own (``follow``) at its start (``open_serving``, for the
versions already RUNNING) or at the first detection it is sent, without changing the stored status,
and drops them when the version is stopped elsewhere (``maintain``). So a detection may go to any
server; the first one a server gets for a version waits for that server's units to load."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from datetime import timedelta

from visionloop.core.entities import ModelVersion, Prediction, VersionStatus
from visionloop.core.images import ImageLimits, check_image
from visionloop.core.ports import ImageOutput, InferenceHost, PoolStats
from visionloop.core.records.detections import Detected, DetectionSource
from visionloop.core.records.review import Detection
from visionloop.core.scoring import check_detect_options, output_predictions
from visionloop.core.services import Services
from visionloop.core.training import MODELS_BUCKET, get_version, load_artifact
from visionloop.errors import Conflict, ImageTooLarge, InvalidInput, NotFound, NotReady, VisionloopError

log = logging.getLogger("visionloop.serving")

# DetectCustomLabels' image limits: 4 MB as raw bytes, 15 MB as a stored object, 64..4096 px, JPEG/PNG
DETECT_LIMITS = ImageLimits(max_bytes=4 * 1024 * 1024)
DETECT_OBJECT_LIMITS = ImageLimits(max_bytes=15 * 1024 * 1024)
MAX_UNITS = 32  # per version; a start asking for more is refused
RUNNING_CACHE_SECONDS = 1.0  # detection trusts a RUNNING status read this recently (saves 2 queries)

STARTABLE = (VersionStatus.TRAINING_COMPLETED, VersionStatus.STOPPED, VersionStatus.FAILED)
GONE = STARTABLE  # a version in one of these has no units anywhere (another server stopped it)
STOPPABLE = (VersionStatus.RUNNING, VersionStatus.STARTING)
DELETABLE = (
    VersionStatus.TRAINING_COMPLETED,
    VersionStatus.TRAINING_FAILED,
    VersionStatus.STOPPED,
    VersionStatus.FAILED,
    VersionStatus.DELETING,  # a delete that was interrupted can be repeated
)
STARTING_MESSAGE = "The model is being started."
RUNNING_MESSAGE = "The model is running."
STOPPING_MESSAGE = "The model is being stopped."
STOPPED_MESSAGE = "The model is stopped."
RESTARTING_MESSAGE = "The model is being started again after a server restart."
SERVERS = "servers"  # the repo.present topic of the serving servers


@dataclass(frozen=True)
class ServingPolicy:
    """How the server scales, stops and restarts versions (from the inference_* settings)."""

    scale_up_queue: float = 2.0  # waiting requests per serving unit that make a queue "deep"
    scale_up_seconds: float = 2.0  # a deep queue for this long adds a unit (up to MaxInferenceUnits)
    scale_down_seconds: float = 60.0  # a unit to spare for this long is removed (down to MinInferenceUnits)
    idle_timeout_seconds: float | None = None  # default for starts that give none; None: never
    auto_start: bool = False  # default for starts that do not say
    auto_start_wait_seconds: float = 300.0  # how long a request waits for an automatic start
    restore_on_restart: bool = True  # reload the versions left RUNNING/STARTING by a stopped server


@dataclass
class _ScaleState:
    deep_since: float | None = None
    spare_since: float | None = None


@dataclass
class Serving:
    """The inference host with the serving policy and the autoscaler's memory; one per server."""

    host: InferenceHost
    policy: ServingPolicy = field(default_factory=ServingPolicy)
    clock: Callable[[], float] = time.monotonic  # seconds, for the autoscaler's timings
    # human review: called with every detection (core.review.ReviewHook, which only queues it)
    review_hook: Callable[[Detection], None] | None = None
    # the detection log: called with every detection (core.detections.DetectionLog, which only queues it)
    detection_log: Callable[[Detected], None] | None = None
    _scale: dict[int, _ScaleState] = field(default_factory=dict, init=False, repr=False)
    _running: dict[tuple[str, str], tuple[float, ModelVersion]] = field(
        default_factory=dict, init=False, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    # versions whose units here follow a start through another server: their stored status is not ours
    followed: set[int] = field(default_factory=set, init=False, repr=False)

    def running_version(self, project: str, version: str) -> ModelVersion | None:
        """A RUNNING version read in the last second (detection asks the host anyway), or None."""
        hit = self._running.get((project, version))
        if hit is None or time.monotonic() - hit[0] > RUNNING_CACHE_SECONDS:
            return None
        return hit[1]

    def remember(self, project: str, version: ModelVersion) -> None:
        if version.status is VersionStatus.RUNNING:
            self._running[(project, version.name)] = (time.monotonic(), version)

    def scale_state(self, version_id: int) -> _ScaleState:
        with self._lock:
            return self._scale.setdefault(version_id, _ScaleState())

    def forget(self, version_id: int) -> None:
        with self._lock:
            self._scale.pop(version_id, None)
            self.followed.discard(version_id)
            for key, (_, v) in list(self._running.items()):
                if v.id == version_id:
                    self._running.pop(key, None)


@dataclass(frozen=True)
class StoredImage:
    """An image given by reference to a user bucket (Rekognition's S3Object)."""

    bucket: str
    name: str


# --- start / stop / delete -----------------------------------------------------------------------------


def check_units(min_units: int, max_units: int | None) -> tuple[int, int]:
    """(min, max) inference units, validated; ``max_units`` None means min (no autoscaling)."""
    if isinstance(min_units, bool) or not isinstance(min_units, int) or min_units < 1:
        raise InvalidInput(f"min_inference_units must be an integer ≥ 1, not {min_units!r}")
    if max_units is None:
        max_units = min_units
    if isinstance(max_units, bool) or not isinstance(max_units, int) or max_units < min_units:
        raise InvalidInput(
            f"max_inference_units ({max_units!r}) must be an integer ≥ min_inference_units ({min_units})"
        )
    if max_units > MAX_UNITS:
        raise InvalidInput(f"at most {MAX_UNITS} inference units can serve one model version")
    return min_units, max_units


def start_version(
    svc: Services,
    serving: Serving,
    project_name: str,
    version_name: str,
    min_units: int = 1,
    max_units: int | None = None,
    *,
    idle_timeout_seconds: float | None = None,
    auto_start: bool | None = None,
) -> ModelVersion:
    """StartProjectVersion: the version goes STARTING now; RUNNING once ``min_units`` units have loaded
    the model (in the background), or FAILED with the reason. ``idle_timeout_seconds`` (default: the
    policy's; 0: never) stops it after that long without requests; with ``auto_start`` the next request
    then starts it again. Raises Conflict when the version's status does not allow a start."""
    low, high = check_units(min_units, max_units)
    idle = serving.policy.idle_timeout_seconds if idle_timeout_seconds is None else idle_timeout_seconds
    if idle is not None and idle < 0:
        raise InvalidInput("the idle timeout must not be negative")
    auto = serving.policy.auto_start if auto_start is None else auto_start
    version = get_version(svc, project_name, version_name)
    if version.artifact_key is None and version.status in STARTABLE:
        raise Conflict(f"model version {version.name!r} has no trained model to start")
    started = svc.repo.transition_version(
        version.id,
        STARTABLE,
        status=VersionStatus.STARTING,
        status_message=STARTING_MESSAGE,
        min_inference_units=low,
        max_inference_units=high,
        inference_units=0,
        idle_timeout_seconds=idle or None,
        auto_start=auto,
        idle_stopped_at=None,
    )
    if started is None:
        raise _conflict(svc, version, "started", "TRAINING_COMPLETED, STOPPED or FAILED")
    _launch(svc, serving, started, low)
    return started


def stop_version(svc: Services, serving: Serving, project_name: str, version_name: str) -> ModelVersion:
    """StopProjectVersion: the version goes STOPPING now and STOPPED once its units are gone."""
    version = get_version(svc, project_name, version_name)
    stopping = svc.repo.transition_version(
        version.id, STOPPABLE, status=VersionStatus.STOPPING, status_message=STOPPING_MESSAGE
    )
    if stopping is None:
        raise _conflict(svc, version, "stopped", "RUNNING or STARTING")
    _halt(svc, serving, stopping, STOPPED_MESSAGE)
    return stopping


def delete_version(svc: Services, serving: Serving, project_name: str, version_name: str) -> ModelVersion:
    """DeleteProjectVersion: remove a version that is not in use, with its artifact; returns it as
    DELETING. The dataset snapshot stays (other versions may share it)."""
    version = get_version(svc, project_name, version_name)
    deleting = svc.repo.transition_version(
        version.id,
        DELETABLE,
        status=VersionStatus.DELETING,
        status_message="The model version is being deleted.",
    )
    if deleting is None:
        raise _conflict(svc, version, "deleted", "stopped, failed or trained")
    serving.host.stop(version.id)  # nothing to do unless a unit is left over
    if deleting.artifact_key:
        try:
            objects = list(svc.store.list_objects(MODELS_BUCKET, f"{deleting.artifact_key}/"))
        except NotFound:
            objects = []
        for obj in objects:
            with contextlib.suppress(NotFound):
                svc.store.delete(MODELS_BUCKET, obj.key)
    svc.repo.delete_version(version.id)
    serving.forget(version.id)
    return deleting


def _conflict(svc: Services, version: ModelVersion, verb: str, allowed: str) -> Conflict:
    try:
        current = svc.repo.get_version_by_id(version.id).status
    except NotFound:
        return Conflict(f"model version {version.name!r} was deleted")
    return Conflict(
        f"model version {version.name!r} is {current.value}; only a version that is {allowed} can be {verb}",
        status=current.value,
    )


def _launch(svc: Services, serving: Serving, version: ModelVersion, units: int) -> None:
    vid = version.id

    def started(seconds: float | None, error: str | None) -> None:
        if error is None:
            done = svc.repo.transition_version(
                vid,
                [VersionStatus.STARTING],
                status=VersionStatus.RUNNING,
                status_message=RUNNING_MESSAGE,
                started_at=svc.clock.now(),
                load_seconds=seconds,
                inference_units=units,
            )
            if done is None:  # stopped or deleted while loading
                serving.host.stop(vid)
            else:
                log.info("model version %s is RUNNING on %d unit(s) (%.2f s)", vid, units, seconds or 0)
        else:
            log.warning("model version %s could not be started: %s", vid, error)
            svc.repo.transition_version(
                vid,
                [VersionStatus.STARTING],
                status=VersionStatus.FAILED,
                status_message=f"The model could not be started: {error}",
                inference_units=0,
            )

    serving.forget(vid)
    try:
        serving.host.start(vid, lambda: load_artifact(svc, version), units, started)
    except VisionloopError as e:  # e.g. a pool for this version is still shutting down
        started(None, e.message)


def _halt(svc: Services, serving: Serving, version: ModelVersion, message: str, idle: bool = False) -> None:
    vid = version.id
    stats = serving.host.stats(vid)

    def stopped() -> None:
        now = svc.clock.now()
        changes: dict[str, object] = {
            "status": VersionStatus.STOPPED,
            "status_message": message,
            "stopped_at": now,
            "inference_units": 0,
            "idle_stopped_at": now if idle else None,
        }
        if stats is not None and stats.served:
            changes["last_used_at"] = now - timedelta(seconds=stats.idle_seconds)
        svc.repo.transition_version(vid, [VersionStatus.STOPPING], **changes)

    serving.forget(vid)
    serving.host.stop(vid, stopped)


# --- detection -----------------------------------------------------------------------------------------


def read_image(svc: Services, image: bytes | StoredImage) -> tuple[bytes, ImageLimits]:
    """The image's bytes and the limits that apply to it (stored objects may be larger)."""
    if isinstance(image, bytes):
        return image, DETECT_LIMITS
    data = svc.buckets.get(image.bucket, image.name, max_bytes=DETECT_OBJECT_LIMITS.max_bytes)
    if len(data) > DETECT_OBJECT_LIMITS.max_bytes:
        raise ImageTooLarge(
            f"s3://{image.bucket}/{image.name} is larger than the limit of "
            f"{DETECT_OBJECT_LIMITS.max_bytes:,} bytes"
        )
    return data, DETECT_OBJECT_LIMITS


def submit_detect(
    svc: Services,
    serving: Serving,
    project_name: str,
    version_name: str,
    image: bytes | StoredImage,
    min_confidence: float | None = None,
    max_results: int | None = None,
    *,
    source: DetectionSource = DetectionSource.API,
) -> Future[list[Prediction]]:
    """Check the request and queue it on the version's units; the future gives the labels (see
    ``detect``). Blocks only to read the image, to check it, and while an automatic start runs. Each
    detection is handed to ``serving.detection_log`` (with ``source``: who asked) and then to
    ``serving.review_hook``; neither slows it down nor can fail it."""
    check_detect_options(min_confidence, max_results)
    cached = serving.running_version(project_name, version_name)
    version = cached or get_version(svc, project_name, version_name)
    data, limits = read_image(svc, image)
    check_image(data, svc.inspector, limits)
    try:
        version = _ready(svc, serving, version)
        raw = _submit_here(svc, serving, version, data)
    except NotReady:
        if cached is None:
            raise
        serving.forget(cached.id)  # stopped since: read it again for the right answer
        version = _ready(svc, serving, get_version(svc, project_name, version_name))
        raw = _submit_here(svc, serving, version, data)
    serving.remember(project_name, version)
    out: Future[list[Prediction]] = Future()

    def done(f: Future[list[ImageOutput]]) -> None:
        try:
            if f.cancelled():
                out.cancel()
            elif (exc := f.exception()) is not None:
                out.set_exception(exc)
            else:
                output = f.result()[0]
                labels = output_predictions(output, version.thresholds, min_confidence, max_results)
                out.set_result(labels)
                _observe(serving, project_name, version.name, data, output.probs, labels, image, source)
        except InvalidStateError:  # the caller cancelled meanwhile
            pass

    def abandoned(o: Future[list[Prediction]]) -> None:
        if o.cancelled():
            raw.cancel()  # a request still queued is then skipped by the units

    out.add_done_callback(abandoned)
    raw.add_done_callback(done)
    return out


def _observe(
    serving: Serving,
    project: str,
    version: str,
    data: bytes,
    probs: Mapping[str, float],
    labels: list[Prediction],
    image: bytes | StoredImage,
    source: DetectionSource,
) -> None:
    """Hand the detection to the detection log and the human-review hook (sharing its ``ref``); a
    failing log or hook never fails the detection."""
    if serving.review_hook is None and serving.detection_log is None:
        return
    ref = f"s3://{image.bucket}/{image.name}" if isinstance(image, StoredImage) else None
    detected = Detected(project, version, data, probs, labels, source, ref)
    if serving.detection_log is not None:
        try:
            serving.detection_log(detected)
        except Exception:
            log.exception("the detection log failed on a detection of %s/%s", project, version)
    if serving.review_hook is not None:
        try:
            boxes = tuple(p for p in labels if p.box is not None)
            serving.review_hook(
                Detection(project, version, data, probs, source_ref=ref, ref=detected.ref, boxes=boxes)
            )
        except Exception:
            log.exception("the human-review hook failed on a detection of %s/%s", project, version)


def detect(
    svc: Services,
    serving: Serving,
    project_name: str,
    version_name: str,
    image: bytes | StoredImage,
    min_confidence: float | None = None,
    max_results: int | None = None,
    *,
    source: DetectionSource = DetectionSource.API,
) -> list[Prediction]:
    """DetectCustomLabels: labels sorted by confidence (0-100). Without ``min_confidence`` each label's
    own assumed threshold applies; ``min_confidence=0`` returns every label. NotReady unless RUNNING."""
    return submit_detect(
        svc, serving, project_name, version_name, image, min_confidence, max_results, source=source
    ).result()


def _submit_here(
    svc: Services, serving: Serving, version: ModelVersion, data: bytes
) -> Future[list[ImageOutput]]:
    """Queue ``data`` on this server's units of the RUNNING ``version``. With none here (it was started
    through another server on the database), follow it: load units here and wait for them, up to the
    policy's ``auto_start_wait_seconds``; NotReady if they do not come."""
    try:
        return serving.host.submit(version.id, [data])
    except NotReady:
        follow(svc, serving, version)
        if not serving.host.wait_ready(version.id, serving.policy.auto_start_wait_seconds):
            raise NotReady(
                f"model version {version.name!r} is RUNNING but its inference units could not be "
                "started on this server; try again",
                status=version.status.value,
            ) from None
        return serving.host.submit(version.id, [data])


def follow(svc: Services, serving: Serving, version: ModelVersion) -> bool:
    """Start units here for ``version``, RUNNING through another server, leaving its stored status as it
    is (a failure to load is logged and leaves no units here, and the version RUNNING). False when this
    server already has (or is loading) units for it."""
    vid = version.id

    def started(seconds: float | None, error: str | None) -> None:
        if error is not None:
            log.warning("model version %s: units here could not follow it: %s", vid, error)
            serving.forget(vid)
        elif svc.repo.get_version_by_id(vid).status is not VersionStatus.RUNNING:  # stopped meanwhile
            serving.forget(vid)
            serving.host.stop(vid)
        else:
            log.info("model version %s: %d unit(s) here follow it (%.2f s)", vid, units, seconds or 0)

    units = version.min_inference_units or 1
    with serving._lock:
        if vid in serving.host.versions():
            return False
        try:
            serving.host.start(vid, lambda: load_artifact(svc, version), units, started)
        except VisionloopError:  # a pool of it is still shutting down here
            return False
        serving.followed.add(vid)
    return True


def _ready(svc: Services, serving: Serving, version: ModelVersion) -> ModelVersion:
    """The version if it is RUNNING; with auto_start, start it (if the idle timeout stopped it) and wait."""
    if version.status is VersionStatus.RUNNING:
        return version
    waking = version.status is VersionStatus.STOPPED and version.idle_stopped_at is not None
    if version.auto_start and (waking or version.status is VersionStatus.STARTING):
        if waking:
            try:
                proj = svc.repo.get_project_by_id(version.project_id)
                start_version(
                    svc,
                    serving,
                    proj.name,
                    version.name,
                    version.min_inference_units or 1,
                    version.max_inference_units,
                    idle_timeout_seconds=version.idle_timeout_seconds or 0,
                    auto_start=True,
                )
            except Conflict:
                pass  # another request started it first
        if serving.host.wait_ready(version.id, serving.policy.auto_start_wait_seconds):
            version = svc.repo.get_version_by_id(version.id)
            if version.status is VersionStatus.RUNNING:
                return version
        version = svc.repo.get_version_by_id(version.id)
    raise NotReady(_not_ready_message(version), status=version.status.value)


def _not_ready_message(v: ModelVersion) -> str:
    if v.status is VersionStatus.STARTING:
        cost = f" (its last start took {v.load_seconds:.1f} s)" if v.load_seconds else ""
        return f"model version {v.name!r} is STARTING; try again when it is RUNNING{cost}"
    if v.status in (VersionStatus.STOPPED, VersionStatus.TRAINING_COMPLETED, VersionStatus.FAILED):
        return f"model version {v.name!r} is {v.status.value}; start it first"
    return f"model version {v.name!r} is {v.status.value}; only a RUNNING version can detect labels"


# --- periodic maintenance: scaling, idle timeout, unit counts -------------------------------------------


def next_units(
    state: _ScaleState,
    stats: PoolStats,
    min_units: int,
    max_units: int,
    policy: ServingPolicy,
    now: float,
) -> int:
    """The unit count to ask for: one more when the queue stayed deep for ``scale_up_seconds``, one
    fewer when a unit was to spare (no queue, an idle unit) for ``scale_down_seconds``."""
    target = stats.target
    if stats.loading:  # let a unit being added arrive before judging again
        state.deep_since = state.spare_since = None
        return target
    deep = stats.queued >= policy.scale_up_queue * max(stats.units, 1)
    spare = stats.queued == 0 and stats.busy < stats.units
    state.deep_since = (now if state.deep_since is None else state.deep_since) if deep else None
    state.spare_since = (now if state.spare_since is None else state.spare_since) if spare else None
    if (
        target < max_units
        and state.deep_since is not None
        and now - state.deep_since >= policy.scale_up_seconds
    ):
        state.deep_since = None
        return target + 1
    if (
        target > min_units
        and state.spare_since is not None
        and now - state.spare_since >= policy.scale_down_seconds
    ):
        state.spare_since = None
        return target - 1
    return max(min(target, max_units), min_units)


def maintain(svc: Services, serving: Serving) -> None:
    """One pass over the served versions: scale each between its min and max units, stop the ones idle
    beyond their timeout, record the number of units serving, and drop pools of deleted versions."""
    now = serving.clock()
    for vid in serving.host.versions():
        stats = serving.host.stats(vid)
        if stats is None:
            continue
        try:
            version = svc.repo.get_version_by_id(vid)
        except NotFound:
            serving.host.stop(vid)
            continue
        if version.status in GONE:  # stopped (or failed) through another server: our units go too
            log.info("model version %s is %s: stopping its units here", vid, version.status.value)
            serving.forget(vid)
            serving.host.stop(vid)
            continue
        if version.status is not VersionStatus.RUNNING:
            continue
        followed = vid in serving.followed
        if version.idle_timeout_seconds and stats.idle_seconds >= version.idle_timeout_seconds:
            if followed:  # idle here only: the server that started it decides for the version
                serving.forget(vid)
                serving.host.stop(vid)
            else:
                _stop_idle(svc, serving, version, stats)
            continue
        state = serving.scale_state(vid)
        low = version.min_inference_units or 1
        high = max(version.max_inference_units or low, low)
        target = next_units(state, stats, low, high, serving.policy, now)
        if target != stats.target:
            log.info("model version %s: %d -> %d inference units", vid, stats.target, target)
            serving.host.scale(vid, target)
        if stats.units != version.inference_units and stats.units > 0 and not followed:
            svc.repo.transition_version(vid, [VersionStatus.RUNNING], inference_units=stats.units)


def _stop_idle(svc: Services, serving: Serving, version: ModelVersion, stats: PoolStats) -> None:
    minutes = (version.idle_timeout_seconds or 0) / 60
    then = " the next detection starts it again." if version.auto_start else " start it to use it again."
    message = f"Stopped after {minutes:g} minutes without requests;{then}"
    stopping = svc.repo.transition_version(
        version.id, [VersionStatus.RUNNING], status=VersionStatus.STOPPING, status_message=message
    )
    if stopping is not None:
        log.info("model version %s idle for %.0f s: stopping it", version.id, stats.idle_seconds)
        _halt(svc, serving, stopping, message, idle=True)


# --- server start --------------------------------------------------------------------------------------


def recover_serving(svc: Services, serving: Serving) -> list[ModelVersion]:
    """At server start: versions left RUNNING or STARTING are started again (policy
    ``restore_on_restart``) or marked STOPPED with the reason; STOPPING ones become STOPPED. Returns the
    versions it changed. Call it only while no other server serves this database (open_serving)."""
    changed = []
    for project in svc.repo.list_projects():
        for v in svc.repo.list_versions(project.id):
            if v.status in STOPPABLE and serving.policy.restore_on_restart and v.artifact_key:
                again = svc.repo.transition_version(
                    v.id, STOPPABLE, status=VersionStatus.STARTING, status_message=RESTARTING_MESSAGE
                )
                if again is not None and again.id not in serving.host.versions():
                    log.info("starting %s/%s again after a server restart", project.name, v.name)
                    _launch(svc, serving, again, again.min_inference_units or 1)
                    changed.append(again)
            elif v.status in (*STOPPABLE, VersionStatus.STOPPING):
                message = f"Stopped: the server restarted while the model was {v.status.value}."
                done = svc.repo.transition_version(
                    v.id,
                    [v.status],
                    status=VersionStatus.STOPPED,
                    status_message=message,
                    stopped_at=svc.clock.now(),
                    inference_units=0,
                )
                if done is not None:
                    log.info("%s/%s: %s", project.name, v.name, message)
                    changed.append(done)
    return changed


def follow_running(svc: Services, serving: Serving) -> list[ModelVersion]:
    """At the start of a server beside others on the database: follow every RUNNING version (policy
    ``restore_on_restart``), so that detections sent here find units; their stored status stays as it
    is. Returns the versions followed."""
    if not serving.policy.restore_on_restart:
        return []
    followed = []
    for project in svc.repo.list_projects():
        for v in svc.repo.list_versions(project.id):
            if v.status is VersionStatus.RUNNING and v.artifact_key and follow(svc, serving, v):
                log.info("following %s/%s, RUNNING through another server", project.name, v.name)
                followed.append(v)
    return followed


def open_serving(svc: Services, serving: Serving) -> contextlib.ExitStack:
    """At server start: show this server present on the database for as long as the returned stack is
    open. The first one (no other server present) brings back what the last one left (recover_serving);
    one that starts beside others follows the RUNNING versions (follow_running) and changes no status,
    so that detections through the others keep working meanwhile."""
    stack = contextlib.ExitStack()
    alone = stack.enter_context(svc.repo.present(SERVERS, lambda: recover_serving(svc, serving)))
    if not alone:
        follow_running(svc, serving)
    return stack


def serving_state(version: ModelVersion, stats: PoolStats | None) -> dict[str, object]:
    """The serving side of a version as JSON-ready data (for the wire layers)."""
    return {
        "status": version.status.value,
        "status_message": version.status_message,
        "min_inference_units": version.min_inference_units,
        "max_inference_units": version.max_inference_units,
        "inference_units": stats.units if stats is not None else version.inference_units,
        "load_seconds": None if version.load_seconds is None else round(version.load_seconds, 3),
        "idle_timeout_seconds": version.idle_timeout_seconds,
        "auto_start": version.auto_start,
        "started_at": version.started_at.isoformat() if version.started_at else None,
        "stopped_at": version.stopped_at.isoformat() if version.stopped_at else None,
        "last_used_at": version.last_used_at.isoformat() if version.last_used_at else None,
        "idle_stopped_at": version.idle_stopped_at.isoformat() if version.idle_stopped_at else None,
        "queue": None
        if stats is None
        else {
            "queued": stats.queued,
            "busy_units": stats.busy,
            "loading_units": stats.loading,
            "target_units": stats.target,
            "idle_seconds": round(stats.idle_seconds, 3),
            "served": stats.served,
            "unit_restarts": stats.restarts,
        },
    }


__all__ = [
    "DETECT_LIMITS",
    "DETECT_OBJECT_LIMITS",
    "Serving",
    "ServingPolicy",
    "StoredImage",
    "delete_version",
    "detect",
    "follow",
    "follow_running",
    "maintain",
    "open_serving",
    "recover_serving",
    "start_version",
    "stop_version",
    "submit_detect",
]
