"""The training check and rollback as runs, with the colour engine in real inference units and a fake
clock: skipped checks, a deployment, a second version replacing the first, rejection by F1 and by the
champion/challenger gate, rollback, resuming after a restart, step timeouts, and detections that never
fail while the serving version switches."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.factories import grey_shape, image_bytes, make_project
from tests.workflows.helpers import (
    BLUE,
    GREEN,
    PURPLE,
    RED,
    FakeClock,
    add_train_images,
    colour_project,
    drive,
    rules,
    run_jobs,
)
from visionloop.bootstrap import fake_engine
from visionloop.core import datasets, events
from visionloop.core.deployments import (
    detect_project,
    is_rejected,
    request_rollback,
    serving_version,
)
from visionloop.core.entities import JobStatus, TaskType, VersionStatus
from visionloop.core.jobs import recover_interrupted_jobs
from visionloop.core.manifests import PixelBox
from visionloop.core.records.runs import RunStatus, StepStatus
from visionloop.core.retraining import request_check, untrained_images
from visionloop.core.runkinds import RunContext, queue_run
from visionloop.core.runs import (
    MAX_RESUMES,
    advance_pending,
    get_run,
    list_runs,
    recover_runs,
    run_steps,
)
from visionloop.core.services import Services
from visionloop.core.serving import Serving, ServingPolicy, start_version
from visionloop.core.training import request_training
from visionloop.engines.fake import ColourEngine
from visionloop.errors import Conflict, InvalidInput, NotFound, NotReady
from visionloop.workflows.inference import ProcessInferenceHost

DEPLOY_STEPS = ["check", "train", "evaluate", "compare", "start", "switch", "stop_previous"]


@pytest.fixture
def clock(services: Services) -> FakeClock:
    fake = FakeClock()
    services.clock = fake
    return fake


@pytest.fixture
def serving() -> Iterator[Serving]:
    host = ProcessInferenceHost(fake_engine, threads=1)
    yield Serving(host, ServingPolicy(auto_start_wait_seconds=30))
    host.close()


@pytest.fixture
def ctx(services: Services, serving: Serving, clock: FakeClock) -> RunContext:
    return RunContext(services, serving, step_timeout=timedelta(minutes=30))


@pytest.fixture
def project(services: Services, tmp_path: Path, clock: FakeClock) -> str:
    name = colour_project(services, tmp_path)
    rules(services, name, auto_training_enabled=True, min_untrained_images=4, min_f1=0.7)
    return name


def status(svc: Services, project: str, version: str) -> VersionStatus:
    return svc.repo.get_version(svc.repo.get_project(project).id, version).status


def event_types(svc: Services, project: str) -> list[str]:
    return [
        e.type.value
        for e in events.list_events(svc, project, limit=1000)
        if e.type.value != "parameter_changed"
    ]


def test_a_check_is_skipped_when_automatic_training_is_off_or_images_are_few(
    services: Services, ctx: RunContext, tmp_path: Path
) -> None:
    name = colour_project(services, tmp_path)
    run = drive(ctx, request_check(services, name).id)
    assert (run.status, run.outcome) == (RunStatus.SUCCEEDED, "skipped")
    assert run.reason == "automatic training is off (auto_training_enabled)"
    rules(services, name, auto_training_enabled=True, min_untrained_images=20)
    run = drive(ctx, request_check(services, name).id)
    assert run.outcome == "skipped" and run.reason == "12 new labelled images; 20 needed"
    [step] = run_steps(services, run)
    assert step.name == "check" and step.status is StepStatus.SUCCEEDED
    assert step.output["new_images"] == 12 and step.output["min_untrained_images"] == 20
    assert services.repo.list_versions(services.repo.get_project(name).id) == []


def test_a_check_trains_evaluates_and_deploys(services: Services, ctx: RunContext, project: str) -> None:
    queued = request_check(services, project)
    assert queued.status is RunStatus.QUEUED and queued.trigger == "manual"
    with pytest.raises(Conflict, match="is QUEUED; wait for it"):
        request_check(services, project)
    drive(ctx, queued.id, until=lambda r: r.current_step == "train", jobs=False)
    [job] = services.repo.list_jobs()
    assert job.kind == "train" and job.status is JobStatus.QUEUED  # the worker's job, not the runner's
    run = drive(ctx, queued.id)
    assert (run.status, run.outcome) == (RunStatus.SUCCEEDED, "deployed"), run.error
    assert run.reason == "v1 serves project colours"
    steps = run_steps(services, run)
    assert [s.name for s in steps] == DEPLOY_STEPS
    assert all(s.status is StepStatus.SUCCEEDED and s.ended_at is not None for s in steps)
    by_name = {s.name: s for s in steps}
    assert by_name["train"].output["version"] == "v1" and by_name["train"].output["f1"] == 1.0
    assert by_name["evaluate"].input["version"] == "v1"  # a step's input is the run's state so far
    assert by_name["compare"].output["gate"]["champion"] is None  # nothing served: nothing to compare
    assert run.output["serving"] == "v1" and run.started_at and run.ended_at
    assert status(services, project, "v1") is VersionStatus.RUNNING
    assert serving_version(services, project).name == "v1"  # type: ignore[union-attr]
    assert event_types(services, project) == ["training_started", "training_completed", "version_deployed"]
    assert untrained_images(services, services.repo.get_project(project))[0] == 0
    # nothing new: the next check is skipped
    assert drive(ctx, request_check(services, project).id).outcome == "skipped"


def test_a_second_version_replaces_the_first(
    services: Services, ctx: RunContext, project: str, tmp_path: Path
) -> None:
    assert drive(ctx, request_check(services, project).id).outcome == "deployed"
    add_train_images(services, project, tmp_path, "red", RED, 4, start=60)
    run = drive(ctx, request_check(services, project).id)
    assert run.outcome == "deployed", run.error
    gate = run.output["gate"]
    assert gate["passed"] and gate["champion"] == "v1" and gate["challenger"] == "v2"
    assert {row["label"] for row in gate["labels"]} == {"red", "blue"} and gate["images"] == 4
    assert run.output["previous"] == "v1" and run.output["stopped"] == "v1"
    assert serving_version(services, project).name == "v2"  # type: ignore[union-attr]
    assert status(services, project, "v2") is VersionStatus.RUNNING
    assert status(services, project, "v1") in (VersionStatus.STOPPING, VersionStatus.STOPPED)
    [compare_job] = [j for j in services.repo.list_jobs() if j.kind == "compare"]
    assert compare_job.status is JobStatus.SUCCEEDED and compare_job.result == gate
    assert compare_job.params == {"champion_id": 1, "challenger_id": 2, "max_drop": 0.05}
    log = [(d.version, d.previous, d.reason) for d in services.repo.list_deployments(1)]
    assert log == [("v2", "v1", "training_check"), ("v1", None, "training_check")]


def test_a_version_below_min_f1_is_rejected_and_the_old_one_keeps_serving(
    services: Services, ctx: RunContext, project: str, tmp_path: Path
) -> None:
    assert drive(ctx, request_check(services, project).id).outcome == "deployed"
    # mislabelled training images pull both centroids away: red test images now look blue
    add_train_images(services, project, tmp_path, "red", GREEN, 20, start=100)
    add_train_images(services, project, tmp_path, "blue", PURPLE, 20, start=100)
    run = drive(ctx, request_check(services, project).id)
    assert (run.status, run.outcome) == (RunStatus.SUCCEEDED, "rejected")
    assert [s.name for s in run_steps(services, run)] == ["check", "train", "evaluate", "reject"]
    assert (
        run.reason is not None
        and "F1 0.500 is below min_f1 0.7" in run.reason
        and "v1 keeps serving" in run.reason
    )
    v2 = services.repo.get_version(1, "v2")
    assert v2.status is VersionStatus.TRAINING_COMPLETED and is_rejected(v2)
    assert v2.status_message.startswith(f"Not deployed by run {run.id}: F1")
    assert serving_version(services, project).name == "v1"  # type: ignore[union-attr]
    assert status(services, project, "v1") is VersionStatus.RUNNING
    assert event_types(services, project)[-1] == "version_rejected"
    # the rejected version's images count as trained: no retraining loop on the same data
    assert drive(ctx, request_check(services, project).id).outcome == "skipped"


def test_the_gate_rejects_a_version_worse_on_a_label(
    services: Services, ctx: RunContext, project: str, tmp_path: Path
) -> None:
    assert drive(ctx, request_check(services, project).id).outcome == "deployed"
    rules(services, project, min_f1=0.0, max_f1_drop=0.1)
    # mislabelled training images pull both centroids away: red test images now look blue
    add_train_images(services, project, tmp_path, "red", GREEN, 20, start=100)
    add_train_images(services, project, tmp_path, "blue", PURPLE, 20, start=100)
    run = drive(ctx, request_check(services, project).id)
    assert run.outcome == "rejected", run.error
    assert [s.name for s in run_steps(services, run)] == ["check", "train", "evaluate", "compare", "reject"]
    gate = run.output["gate"]
    assert not gate["passed"] and gate["worst"]["label"] == "red"
    assert gate["worst"]["champion_f1"] == 1.0 and gate["worst"]["challenger_f1"] == 0.0
    assert "the F1 of label 'red' fell from 1.000 (v1) to 0.000" in (run.reason or "")
    assert serving_version(services, project).name == "v1"  # type: ignore[union-attr]
    assert status(services, project, "v2") is VersionStatus.TRAINING_COMPLETED


def test_rollback_goes_back_to_the_previous_version(
    services: Services, ctx: RunContext, project: str, tmp_path: Path
) -> None:
    with pytest.raises(Conflict, match="no earlier deployed version"):
        request_rollback(services, project)
    assert drive(ctx, request_check(services, project).id).outcome == "deployed"
    with pytest.raises(Conflict, match="no earlier deployed version"):
        request_rollback(services, project)
    add_train_images(services, project, tmp_path, "blue", BLUE, 4, start=80)
    assert drive(ctx, request_check(services, project).id).outcome == "deployed"
    run = drive(ctx, request_rollback(services, project).id)
    assert (run.status, run.outcome) == (RunStatus.SUCCEEDED, "rolled_back"), run.error
    assert [s.name for s in run_steps(services, run)] == ["select", "start", "switch", "stop_previous"]
    assert run.output["version"] == "v1" and run.output["previous"] == "v2"
    assert serving_version(services, project).name == "v1"  # type: ignore[union-attr]
    assert status(services, project, "v1") is VersionStatus.RUNNING
    assert status(services, project, "v2") in (VersionStatus.STOPPING, VersionStatus.STOPPED)
    assert event_types(services, project)[-1] == "version_rolled_back"
    [rolled] = events.list_events(services, project, type="version_rolled_back")
    assert rolled.payload == {"version": "v1", "from_version": "v2", "run_id": run.id}
    # rolling back again returns to v2; an explicit target is checked
    with pytest.raises(Conflict, match="already serves"):
        request_rollback(services, project, "v1")
    with pytest.raises(NotFound):
        request_rollback(services, project, "v9")
    assert drive(ctx, request_rollback(services, project).id).output["version"] == "v2"


def test_rollback_goes_back_to_the_version_the_log_says_was_replaced(
    services: Services, ctx: RunContext, project: str, tmp_path: Path
) -> None:
    """v1 trained and started by hand (no deployment of its own), then a check deploys v2: the log says
    "v2 replaced v1", so the default rollback goes to v1 (issue 18, item 4)."""
    request_training(services, project)
    run_jobs(services)
    start_version(services, ctx.serving, project, "v1")
    deadline = time.monotonic() + 60
    while status(services, project, "v1") is not VersionStatus.RUNNING:
        assert time.monotonic() < deadline, "v1 did not start"
        time.sleep(0.05)
    add_train_images(services, project, tmp_path, "blue", BLUE, 4, start=80)
    assert drive(ctx, request_check(services, project).id).outcome == "deployed"
    log = [(d.version, d.previous) for d in services.repo.list_deployments(1)]
    assert log == [("v2", "v1")]
    run = drive(ctx, request_rollback(services, project).id)
    assert run.outcome == "rolled_back" and run.output["version"] == "v1", run.error
    assert serving_version(services, project).name == "v1"  # type: ignore[union-attr]
    # and back again: v1's rollback entry says it replaced v2
    assert drive(ctx, request_rollback(services, project).id).output["version"] == "v2"


def test_a_rollback_waits_for_the_check_before_it(
    services: Services, ctx: RunContext, project: str, tmp_path: Path
) -> None:
    assert drive(ctx, request_check(services, project).id).outcome == "deployed"
    add_train_images(services, project, tmp_path, "blue", BLUE, 4, start=80)
    check = request_check(services, project)
    rollback = queue_run(services, project, "rollback", "manual")
    drive(ctx, check.id)
    assert get_run(services, project, rollback.id).status is RunStatus.QUEUED  # one run per project
    run = drive(ctx, rollback.id)
    assert run.outcome == "rolled_back" and run.output["version"] == "v1"


def test_a_run_interrupted_during_training_resumes_and_trains_again(
    services: Services, ctx: RunContext, project: str
) -> None:
    queued = request_check(services, project)
    drive(ctx, queued.id, until=lambda r: r.current_step == "train", jobs=False)
    job = services.repo.claim_job(services.clock.now())  # a worker took it ... and the server died
    assert job is not None
    recover_interrupted_jobs(services)  # what `visionloop serve` does first when it starts again
    [resumed] = recover_runs(services)
    assert resumed.id == queued.id and resumed.resumed == 1 and resumed.output["resumed_at"]
    run = drive(ctx, queued.id)
    assert run.outcome == "deployed", run.error
    train = next(s for s in run_steps(services, run) if s.name == "train")
    assert train.output["version"] == "v2"  # v1 was cut short (TRAINING_FAILED); v2 is its retry
    assert train.output["attempt"] == 2
    assert status(services, project, "v1") is VersionStatus.TRAINING_FAILED
    assert event_types(services, project).count("training_started") == 2


def test_a_run_resumed_too_often_fails_with_the_reason(
    services: Services, ctx: RunContext, project: str
) -> None:
    queued = request_check(services, project)
    drive(ctx, queued.id, until=lambda r: r.current_step == "train", jobs=False)
    for _ in range(MAX_RESUMES):
        recover_runs(services)
    [failed] = recover_runs(services)
    assert failed.status is RunStatus.FAILED and failed.ended_at is not None
    assert failed.error == f"step train: interrupted by {MAX_RESUMES + 1} server restarts; not resumed again"
    assert run_steps(services, failed)[-1].status is StepStatus.FAILED


def test_a_step_that_waits_too_long_fails(
    services: Services, ctx: RunContext, project: str, clock: FakeClock
) -> None:
    queued = request_check(services, project)
    drive(ctx, queued.id, until=lambda r: r.current_step == "train", jobs=False)
    clock.advance(minutes=31)  # no worker ever ran the job
    advance_pending(ctx)
    run = get_run(services, project, queued.id)
    assert run.status is RunStatus.FAILED and run.outcome == "failed"
    assert run.error == "step train: did not finish within 30 minutes (training v1: QUEUED queued 0%)"


def test_a_failed_training_fails_the_run(services: Services, ctx: RunContext, project: str) -> None:
    queued = request_check(services, project)
    drive(ctx, queued.id, until=lambda r: r.current_step == "train", jobs=False)
    run_jobs(services, ColourEngine(fail_with=InvalidInput("the engine ran out of memory")))
    run = drive(ctx, queued.id)
    assert (run.status, run.outcome) == (RunStatus.FAILED, "training_failed")
    assert run.error == "step train: training v1 failed: the engine ran out of memory"
    assert event_types(services, project)[-2:] == ["training_started", "training_failed"]
    assert serving_version(services, project) is None


def test_no_detection_fails_while_the_serving_version_switches(
    services: Services, ctx: RunContext, project: str, tmp_path: Path
) -> None:
    assert drive(ctx, request_check(services, project).id).outcome == "deployed"
    add_train_images(services, project, tmp_path, "red", RED, 4, start=90)
    check = request_check(services, project)
    stop = threading.Event()
    answers: list[str] = []
    errors: list[BaseException] = []
    red = image_bytes(color=RED)

    def client() -> None:
        while not stop.is_set():
            try:
                found = detect_project(services, ctx.serving, project, red)
                answers.append(found.version)
                assert found.labels[0].label == "red"
            except BaseException as e:  # collected: the test fails below
                errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        run = drive(ctx, check.id)
        drive(ctx, check.id, until=lambda r: status(services, project, "v1") is VersionStatus.STOPPED)
        stop.wait(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert run.outcome == "deployed" and errors == []
    assert "v1" in answers and answers[-1] == "v2"


def test_detections_addressed_to_a_project_need_a_serving_version(
    services: Services, ctx: RunContext, project: str
) -> None:
    with pytest.raises(NotReady, match="has no serving version"):
        detect_project(services, ctx.serving, project, image_bytes(color=RED))
    with pytest.raises(NotFound):
        detect_project(services, ctx.serving, "ghost", image_bytes(color=RED))


def test_runs_are_listed_newest_first_and_filtered(services: Services, ctx: RunContext, project: str) -> None:
    first = drive(ctx, request_check(services, project).id)
    second = drive(ctx, request_check(services, project).id)
    assert [r.id for r in list_runs(services, project)] == [second.id, first.id]
    assert [r.id for r in list_runs(services, project, status="succeeded", limit=1)] == [second.id]
    assert list_runs(services, project, kind="rollback") == []
    for bad in ({"status": "DONE"}, {"kind": "nope"}, {"limit": 0}, {"offset": -1}):
        with pytest.raises(InvalidInput):
            list_runs(services, project, **bad)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="run 999 does not exist"):
        get_run(services, project, 999)
    make_project(services, "other")
    with pytest.raises(NotFound, match=f"run {first.id} does not exist in project 'other'"):
        get_run(services, "other", first.id)


def test_a_detection_project_retrains_and_redeploys_by_itself(
    services: Services, ctx: RunContext, clock: FakeClock
) -> None:
    rng = random.Random(3)
    make_project(services, "shapes", TaskType.DETECTION)

    def add(count: int, dataset: str = "train") -> None:
        for i in range(count):
            label = ("red", "blue")[i % 2]
            data, box = grey_shape(rng, label)
            name = f"{dataset}-{rng.random()}.jpg"
            datasets.add_image(
                services, "shapes", data, name, boxes=[PixelBox(label, *box)], dataset_type=dataset
            )

    add(12)
    add(4, "test")
    rules(services, "shapes", auto_training_enabled=True, min_untrained_images=4, min_f1=0.7)
    run = drive(ctx, request_check(services, "shapes").id)
    assert run.outcome == "deployed", run.error
    add(4)
    run = drive(ctx, request_check(services, "shapes").id)
    assert run.outcome == "deployed", run.error
    gate = run.output["gate"]  # detectors compared on the labels of the boxes they return
    assert gate["passed"] and gate["champion"] == "v1" and gate["challenger"] == "v2"
    assert {row["label"] for row in gate["labels"]} == {"red", "blue"}
    assert serving_version(services, "shapes").name == "v2"  # type: ignore[union-attr]
    answer = detect_project(services, ctx.serving, "shapes", grey_shape(rng, "blue")[0])
    [found] = answer.labels
    assert answer.version == "v2" and found.label == "blue" and found.box is not None
