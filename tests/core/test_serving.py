"""Serving with the colour engine (a real, tiny engine) in real unit processes: Rekognition's start/stop
lifecycle, detection and its errors, deletion, scaling between min and max units, the idle timeout with
automatic restart, recovery after a server restart, and a unit that dies."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.factories import image_bytes, make_project
from visionloop.bootstrap import build_engine, fake_engine
from visionloop.core import datasets
from visionloop.core.entities import ModelVersion, VersionStatus
from visionloop.core.ports import ImageOutput, PoolStats, StartedFn
from visionloop.core.scoring import to_predictions
from visionloop.core.services import Services
from visionloop.core.serving import (
    DETECT_LIMITS,
    Serving,
    ServingPolicy,
    StoredImage,
    _ScaleState,
    delete_version,
    detect,
    maintain,
    next_units,
    recover_serving,
    start_version,
    stop_version,
    submit_detect,
)
from visionloop.core.training import (
    MODELS_BUCKET,
    ModelCache,
    TrainingOptions,
    predict,
    request_training,
    run_training_job,
)
from visionloop.engines.fake import ColourEngine
from visionloop.errors import (
    Conflict,
    ImageTooLarge,
    InvalidImage,
    InvalidInput,
    NotFound,
    NotReady,
    ObjectNotFound,
)
from visionloop.settings import Settings
from visionloop.workflows import inference
from visionloop.workflows.inference import ProcessInferenceHost

RED = image_bytes(color=(230, 10, 10))
BLUE = image_bytes(color=(10, 10, 230))


class FakeClock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def serving(clock: FakeClock) -> Iterator[Serving]:
    host = ProcessInferenceHost(fake_engine, threads=2, clock=clock)
    policy = ServingPolicy(scale_up_seconds=2, scale_down_seconds=10, auto_start_wait_seconds=30)
    yield Serving(host, policy, clock)
    host.close()


def train(svc: Services, project: str, name: str) -> ModelVersion:
    request_training(svc, project, TrainingOptions(version_name=name))
    job = svc.repo.claim_job(svc.clock.now())
    assert job is not None
    return run_training_job(svc, ColourEngine(), job, "us-east-1", "123456789012")


@pytest.fixture
def project(services: Services, tmp_path: Path) -> str:
    root = tmp_path / "d"
    for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        (root / label).mkdir(parents=True)
        for i in range(6):
            (root / label / f"{i}.jpg").write_bytes(
                image_bytes(color=(colour[0] - i, colour[1] + i, colour[2]))
            )
    make_project(services, "colours")
    datasets.import_folder(services, "colours", str(root))
    assert train(services, "colours", "v1").status is VersionStatus.TRAINING_COMPLETED
    return "colours"


def wait_status(svc: Services, version: str, *statuses: VersionStatus, timeout: float = 20) -> ModelVersion:
    project = svc.repo.get_project("colours")
    deadline = time.monotonic() + timeout
    while True:
        v = svc.repo.get_version(project.id, version)
        if v.status in statuses:
            return v
        assert time.monotonic() < deadline, f"{version} stayed {v.status.value}: {v.status_message}"
        time.sleep(0.02)


def running(
    svc: Services, serving: Serving, version: str = "v1", units: int = 1, **kw: object
) -> ModelVersion:
    start_version(svc, serving, "colours", version, units, **kw)  # type: ignore[arg-type]
    return wait_status(svc, version, VersionStatus.RUNNING)


# --- lifecycle -----------------------------------------------------------------------------------------


def test_start_detect_stop(services: Services, serving: Serving, project: str) -> None:
    with pytest.raises(NotReady, match="TRAINING_COMPLETED; start it first"):
        detect(services, serving, project, "v1", RED)
    starting = start_version(services, serving, project, "v1", 2, 3)
    assert starting.status is VersionStatus.STARTING
    assert (starting.min_inference_units, starting.max_inference_units) == (2, 3)
    with pytest.raises(Conflict, match="STARTING"):
        start_version(services, serving, project, "v1", 1)
    v = wait_status(services, "v1", VersionStatus.RUNNING)
    assert v.inference_units == 2 and v.load_seconds is not None and 0 < v.load_seconds < 20
    assert v.started_at is not None and v.status_message == "The model is running."
    assert len(serving.host.unit_pids(v.id)) == 2  # two processes, each with the model loaded
    [top] = detect(services, serving, project, "v1", RED)
    assert top.label == "red" and top.confidence > 50
    assert [p.label for p in detect(services, serving, project, "v1", BLUE, min_confidence=0)] == [
        "blue",
        "red",
    ]
    assert len(detect(services, serving, project, "v1", BLUE, min_confidence=0, max_results=1)) == 1
    with pytest.raises(Conflict, match="RUNNING; only a version that is TRAINING_COMPLETED"):
        start_version(services, serving, project, "v1", 1)
    stopping = stop_version(services, serving, project, "v1")
    assert stopping.status is VersionStatus.STOPPING
    v = wait_status(services, "v1", VersionStatus.STOPPED)
    assert v.inference_units == 0 and v.stopped_at is not None and v.last_used_at is not None
    assert v.idle_stopped_at is None and serving.host.versions() == []
    with pytest.raises(NotReady, match="STOPPED; start it first"):
        detect(services, serving, project, "v1", RED)
    with pytest.raises(Conflict, match="STOPPED"):
        stop_version(services, serving, project, "v1")
    # a stopped version starts again, with new units
    assert running(services, serving, "v1").inference_units == 1
    assert detect(services, serving, project, "v1", RED)[0].label == "red"


def test_unit_limits_and_unknown_versions(services: Services, serving: Serving, project: str) -> None:
    for low, high in ((0, None), (2, 1), (1, 33), (True, None)):
        with pytest.raises(InvalidInput):
            start_version(services, serving, project, "v1", low, high)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        start_version(services, serving, project, "nope", 1)
    with pytest.raises(NotFound):
        detect(services, serving, "ghost", "v1", RED)
    assert services.repo.get_version(services.repo.get_project(project).id, "v1").min_inference_units is None


def test_no_start_or_stop_while_training(services: Services, serving: Serving, project: str) -> None:
    request_training(services, project, TrainingOptions(version_name="busy"))
    with pytest.raises(Conflict, match="TRAINING_IN_PROGRESS"):
        start_version(services, serving, project, "busy", 1)
    with pytest.raises(Conflict, match="TRAINING_IN_PROGRESS"):
        stop_version(services, serving, project, "busy")
    with pytest.raises(Conflict, match="TRAINING_IN_PROGRESS"):
        delete_version(services, serving, project, "busy")
    with pytest.raises(Conflict):
        stop_version(services, serving, project, "v1")  # TRAINING_COMPLETED: nothing to stop


def test_a_model_that_cannot_load_ends_failed(
    services: Services, serving: Serving, project: str, settings: Settings
) -> None:
    v1 = services.repo.get_version(services.repo.get_project(project).id, "v1")
    services.store.put(MODELS_BUCKET, f"{v1.artifact_key}/centroids.npy", b"tampered")
    start_version(services, serving, project, "v1", 1)
    failed = wait_status(services, "v1", VersionStatus.FAILED)
    assert "could not be started" in failed.status_message and "corrupt" in failed.status_message
    assert serving.host.versions() == []
    # the unit process itself fails: the real engine cannot read a colour model
    train(services, project, "v2")
    real = Serving(ProcessInferenceHost(real_engine_factory(settings)), serving.policy)
    try:
        start_version(services, real, project, "v2", 1)
        failed = wait_status(services, "v2", VersionStatus.FAILED)
        assert "incomplete or unreadable" in failed.status_message, failed.status_message
    finally:
        real.host.close()
    # FAILED may be started again (here with the engine that can read it)
    assert running(services, serving, "v2").status is VersionStatus.RUNNING


def real_engine_factory(settings: Settings) -> Callable[[int], object]:
    import functools

    return functools.partial(build_engine, settings)  # picklable, as unit processes need


def test_stop_while_starting(services: Services, serving: Serving, project: str) -> None:
    start_version(services, serving, project, "v1", 2)
    assert stop_version(services, serving, project, "v1").status is VersionStatus.STOPPING
    # the stop waits for both unit processes to finish starting; on a loaded 2-core machine that took
    # over 20 s once in a full run of the suite
    v = wait_status(services, "v1", VersionStatus.STOPPED, VersionStatus.FAILED, timeout=60)
    assert v.status is VersionStatus.STOPPED
    deadline = time.monotonic() + 10
    while serving.host.versions() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert serving.host.versions() == []


def test_stop_while_a_unit_is_being_added(
    services: Services, serving: Serving, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop joins every unit it sees; one seen before its thread started made the join raise and the
    version stay STOPPING (a unit is now visible only once started)."""
    real_start = inference._Unit.start

    def slow_start(unit: inference._Unit) -> None:
        time.sleep(0.5)  # the moment the stop used to fall into
        real_start(unit)

    monkeypatch.setattr(inference._Unit, "start", slow_start)
    start_version(services, serving, project, "v1", 2)
    time.sleep(0.1)
    stop_version(services, serving, project, "v1")
    assert wait_status(services, "v1", VersionStatus.STOPPED, VersionStatus.FAILED, timeout=60).status is (
        VersionStatus.STOPPED
    )


def test_delete(services: Services, serving: Serving, project: str) -> None:
    v = running(services, serving)
    with pytest.raises(Conflict, match="RUNNING"):
        delete_version(services, serving, project, "v1")
    stop_version(services, serving, project, "v1")
    wait_status(services, "v1", VersionStatus.STOPPED)
    assert delete_version(services, serving, project, "v1").status is VersionStatus.DELETING
    assert not list(services.store.list_objects(MODELS_BUCKET, f"{v.artifact_key}/"))
    with pytest.raises(NotFound):
        services.repo.get_version_by_id(v.id)
    with pytest.raises(NotFound):
        delete_version(services, serving, project, "v1")


# --- detection -----------------------------------------------------------------------------------------


def test_detection_checks_the_image(services: Services, serving: Serving, project: str) -> None:
    running(services, serving)
    with pytest.raises(InvalidImage):
        detect(services, serving, project, "v1", b"GIF89a not an image")
    with pytest.raises(InvalidInput, match="at least 64 px"):
        detect(services, serving, project, "v1", image_bytes(32, 80))
    with pytest.raises(ImageTooLarge):
        detect(services, serving, project, "v1", image_bytes(4100, 80))
    with pytest.raises(ImageTooLarge, match="4,194,304 bytes"):
        detect(services, serving, project, "v1", RED + b"\0" * DETECT_LIMITS.max_bytes)
    with pytest.raises(InvalidInput, match="empty"):
        detect(services, serving, project, "v1", b"")
    with pytest.raises(InvalidInput, match="min_confidence"):
        detect(services, serving, project, "v1", RED, min_confidence=100.5)
    with pytest.raises(InvalidInput, match="max_results"):
        detect(services, serving, project, "v1", RED, max_results=-1)
    # a stored object may be larger than raw bytes (15 MB), and is read from the user's buckets
    services.buckets.create_bucket("inbox")
    services.buckets.put("inbox", "big.png", RED + b"\0" * DETECT_LIMITS.max_bytes)
    assert detect(services, serving, project, "v1", StoredImage("inbox", "big.png"))[0].label == "red"
    with pytest.raises(ObjectNotFound):
        detect(services, serving, project, "v1", StoredImage("inbox", "missing.jpg"))


def test_thresholds_follow_training_predict(services: Services, serving: Serving, project: str) -> None:
    v = running(services, serving)
    cache = ModelCache(services, ColourEngine())
    purple = image_bytes(color=(120, 10, 120))
    for image in (RED, BLUE, purple):
        for min_confidence, max_results in ((None, None), (0, None), (0, 1), (40, None)):
            expected = predict(cache, v, [image], min_confidence, max_results)[0]
            got = detect(services, serving, project, "v1", image, min_confidence, max_results)
            assert got == expected
    assert to_predictions({"a": 0.6, "b": 0.3}, {"a": 0.7, "b": 0.2}) == to_predictions(
        {"b": 0.3}, {"b": 0.2}
    )


def test_concurrent_requests_and_a_start_beside_them(
    services: Services, serving: Serving, project: str
) -> None:
    running(services, serving, units=2)
    train(services, project, "v2")
    images = [image_bytes(color=(200 + i % 50, 10, 10 + i)) for i in range(60)]
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(detect, services, serving, project, "v1", im) for im in images[:30]]
        start_version(services, serving, project, "v2", 2)  # loads while v1 serves
        futures += [pool.submit(detect, services, serving, project, "v1", im) for im in images[30:]]
        labels = [f.result()[0].label for f in futures]
    assert labels == ["red"] * 60
    wait_status(services, "v2", VersionStatus.RUNNING)
    # submit_detect returns at once with a future; many requests are batched by the units
    pending = [submit_detect(services, serving, project, "v2", BLUE) for _ in range(40)]
    assert all(f.result(10)[0].label == "blue" for f in pending)
    stats = serving.host.stats(services.repo.get_version(services.repo.get_project(project).id, "v2").id)
    assert stats is not None and stats.served == 40 and stats.units == 2


def test_a_unit_that_dies_is_replaced(services: Services, serving: Serving, project: str) -> None:
    v = running(services, serving)
    [pid] = serving.host.unit_pids(v.id)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:
        try:
            assert detect(services, serving, project, "v1", RED)[0].label == "red"
            break
        except Exception:  # Unavailable while the unit is replaced
            assert time.monotonic() < deadline
            time.sleep(0.05)
    stats = serving.host.stats(v.id)
    assert stats is not None and stats.restarts == 1 and serving.host.unit_pids(v.id) != [pid]


# --- scaling and the idle timeout ----------------------------------------------------------------------


def stats(
    units: int = 1, queued: int = 0, busy: int = 0, target: int | None = None, loading: int = 0
) -> PoolStats:
    return PoolStats(units, loading, target or units, busy, queued, 0.0, 0, 0)


def test_next_units_policy() -> None:
    policy = ServingPolicy(scale_up_queue=2, scale_up_seconds=2, scale_down_seconds=10)
    s = _ScaleState()
    assert next_units(s, stats(1, queued=5, busy=1), 1, 3, policy, now=0) == 1  # deep, but not for long
    assert next_units(s, stats(1, queued=5, busy=1), 1, 3, policy, now=1.9) == 1
    assert next_units(s, stats(1, queued=5, busy=1), 1, 3, policy, now=2.0) == 2
    assert next_units(s, stats(2, queued=4, busy=2, loading=1), 1, 3, policy, now=3) == 2  # wait for it
    assert next_units(s, stats(2, queued=3, busy=2), 1, 3, policy, now=4) == 2  # not deep for 2 units
    assert next_units(s, stats(3, queued=9, busy=3), 1, 3, policy, now=5) == 3  # at max
    assert next_units(s, stats(3, queued=9, busy=3), 1, 3, policy, now=9) == 3
    # a unit to spare for 10 s gives one back, never below min
    s = _ScaleState()
    assert next_units(s, stats(2, busy=1), 1, 3, policy, now=0) == 2
    assert next_units(s, stats(2, queued=1, busy=2), 1, 3, policy, now=5) == 2  # saturated: timer resets
    assert next_units(s, stats(2, busy=1), 1, 3, policy, now=6) == 2
    assert next_units(s, stats(2, busy=0), 1, 3, policy, now=16) == 1
    assert next_units(s, stats(1, busy=0), 1, 3, policy, now=100) == 1


class FakeHost:
    """An in-memory InferenceHost whose statistics a test sets (for the maintenance policy)."""

    def __init__(self) -> None:
        self.pools: dict[int, PoolStats] = {}
        self.scaled: list[tuple[int, int]] = []
        self.stopped: list[int] = []
        self.futures: list[Future[list[ImageOutput]]] = []

    def start(
        self, version_id: int, files: Callable[[], Mapping[str, bytes]], units: int, started: StartedFn
    ) -> None:
        files()
        self.pools[version_id] = stats(units)
        started(0.25, None)

    def scale(self, version_id: int, units: int) -> None:
        self.scaled.append((version_id, units))
        self.pools[version_id] = stats(units)

    def stop(self, version_id: int, stopped: Callable[[], None] | None = None) -> None:
        self.stopped.append(version_id)
        self.pools.pop(version_id, None)
        if stopped:
            stopped()

    def submit(self, version_id: int, images: Sequence[bytes]) -> Future[list[ImageOutput]]:
        if version_id not in self.pools:
            raise NotReady("not here")
        future: Future[list[ImageOutput]] = Future()
        self.futures.append(future)  # the test answers them
        return future

    def stats(self, version_id: int) -> PoolStats | None:
        return self.pools.get(version_id)

    def versions(self) -> list[int]:
        return list(self.pools)

    def wait_ready(self, version_id: int, timeout: float) -> bool:
        return version_id in self.pools

    def close(self) -> None:
        self.pools.clear()


def test_maintain_scales_between_min_and_max(services: Services, project: str, clock: FakeClock) -> None:
    host = FakeHost()
    srv = Serving(host, ServingPolicy(scale_up_seconds=2, scale_down_seconds=10), clock)
    v = start_version(services, srv, project, "v1", 1, 2)
    assert services.repo.get_version_by_id(v.id).status is VersionStatus.RUNNING
    host.pools[v.id] = stats(1, queued=6, busy=1)
    maintain(services, srv)
    clock.t += 2.5
    maintain(services, srv)
    assert host.scaled == [(v.id, 2)]
    maintain(services, srv)  # records the units now serving
    assert services.repo.get_version_by_id(v.id).inference_units == 2
    host.pools[v.id] = stats(2, queued=9, busy=2)
    clock.t += 5
    maintain(services, srv)
    assert host.scaled == [(v.id, 2)]  # never beyond max
    host.pools[v.id] = stats(2, busy=1)
    maintain(services, srv)
    clock.t += 11
    maintain(services, srv)
    assert host.scaled[-1] == (v.id, 1)


def test_a_cancelled_request_is_dropped_from_the_queue(
    services: Services, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    host = FakeHost()
    srv = Serving(host)
    start_version(services, srv, project, "v1", 1)
    kept = submit_detect(services, srv, project, "v1", RED, min_confidence=0)
    dropped = submit_detect(services, srv, project, "v1", RED)
    assert dropped.cancel() and host.futures[1].cancelled()
    host.futures[0].set_result([ImageOutput({"red": 0.9, "blue": 0.1})])
    assert [(p.label, p.confidence) for p in kept.result(1)] == [("red", 90.0), ("blue", 10.0)]
    # an answer that arrives after the caller gave up is dropped quietly
    late = submit_detect(services, srv, project, "v1", RED)
    host.futures[2].set_running_or_notify_cancel()  # a unit has it already
    assert late.cancel()
    host.futures[2].set_result([ImageOutput({"red": 1.0})])
    assert late.cancelled() and not caplog.records


def test_scaling_real_units(services: Services, serving: Serving, project: str, clock: FakeClock) -> None:
    v = running(services, serving, units=1, max_units=2)
    serving.host.scale(v.id, 2)
    deadline = time.monotonic() + 20
    while (s := serving.host.stats(v.id)) is None or s.units != 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    maintain(services, serving)
    assert services.repo.get_version_by_id(v.id).inference_units == 2
    assert len(serving.host.unit_pids(v.id)) == 2
    # idle: after scale_down_seconds with a unit to spare, back to min
    maintain(services, serving)
    clock.t += 11
    maintain(services, serving)
    while (s := serving.host.stats(v.id)) is None or s.units != 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert detect(services, serving, project, "v1", RED)[0].label == "red"


def test_idle_timeout_scales_to_zero_and_restarts_on_demand(
    services: Services, serving: Serving, project: str, clock: FakeClock
) -> None:
    train(services, project, "v2")
    v1 = running(services, serving, "v1", idle_timeout_seconds=600, auto_start=True)
    v2 = running(services, serving, "v2", idle_timeout_seconds=600)
    assert v1.idle_timeout_seconds == 600 and v1.auto_start and not v2.auto_start
    clock.t += 300
    detect(services, serving, project, "v1", RED)  # v1 was used, v2 was not
    clock.t += 301
    maintain(services, serving)
    v2 = wait_status(services, "v2", VersionStatus.STOPPED)
    assert v2.idle_stopped_at is not None and "10 minutes without requests" in v2.status_message
    assert services.repo.get_version_by_id(v1.id).status is VersionStatus.RUNNING
    with pytest.raises(NotReady):
        detect(services, serving, project, "v2", RED)  # no auto_start
    clock.t += 300
    maintain(services, serving)
    v1 = wait_status(services, "v1", VersionStatus.STOPPED)
    assert "the next detection starts it again" in v1.status_message
    # the next request starts it again and waits for it
    assert detect(services, serving, project, "v1", RED)[0].label == "red"
    v1 = services.repo.get_version_by_id(v1.id)
    assert v1.status is VersionStatus.RUNNING and v1.idle_stopped_at is None and v1.auto_start
    # an explicit stop is not undone by a request
    stop_version(services, serving, project, "v1")
    wait_status(services, "v1", VersionStatus.STOPPED)
    with pytest.raises(NotReady):
        detect(services, serving, project, "v1", RED)


# --- server restart ------------------------------------------------------------------------------------


def test_recovery_after_a_server_restart(services: Services, serving: Serving, project: str) -> None:
    train(services, project, "v2")
    v1 = running(services, serving, "v1", units=2)
    v2 = running(services, serving, "v2")
    serving.host.close()  # the server went away; the database still says RUNNING
    assert services.repo.get_version_by_id(v1.id).status is VersionStatus.RUNNING
    services.repo.update_version(v2.id, status=VersionStatus.STOPPING)
    fresh = Serving(ProcessInferenceHost(fake_engine), serving.policy)
    try:
        changed = recover_serving(services, fresh)
        assert {v.name for v in changed} == {"v1", "v2"}
        v1 = wait_status(services, "v1", VersionStatus.RUNNING)
        assert v1.inference_units == 2 and len(fresh.host.unit_pids(v1.id)) == 2
        assert services.repo.get_version_by_id(v2.id).status is VersionStatus.STOPPED
        assert detect(services, fresh, project, "v1", RED)[0].label == "red"
    finally:
        fresh.host.close()
    # without restore: marked STOPPED with the reason
    no_restore = Serving(FakeHost(), ServingPolicy(restore_on_restart=False))
    [stopped] = recover_serving(services, no_restore)
    assert stopped.status is VersionStatus.STOPPED
    assert stopped.status_message == "Stopped: the server restarted while the model was RUNNING."


def test_host_refuses_work_it_cannot_do(serving: Serving) -> None:
    with pytest.raises(NotReady):
        serving.host.submit(12345, [RED])
    assert serving.host.stats(12345) is None and not serving.host.wait_ready(12345, 0.01)
    done = threading.Event()
    serving.host.stop(12345, done.set)  # nothing to stop: called at once
    assert done.is_set()
