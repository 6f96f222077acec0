"""Two servers on one PostgreSQL database and one object store (docs/scale.md): what each would do on its
own must still happen once. Each "server" here is what a `visionloop serve` process builds for it
(bootstrap.build_services on the same database_url and data folder: its own engine, connection pool and
in-process writer), with its own worker threads and its own workflow passes, run side by side in threads
so that their transactions really interleave on the database. The colour engine trains (engines.fake):
real `serve` processes would train with torch, which this 2-core machine cannot afford twice over.

Skipped, with the reason, where PostgreSQL binaries or psycopg are missing (tests/workflows/conftest)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.factories import image_bytes
from tests.storage.postgres import Cluster
from tests.storage.test_concurrent_stores import NOW, at_once, new_loop
from tests.workflows.helpers import RED, FakeClock, colour_project, rules, run_jobs
from visionloop.bootstrap import build_services, fake_engine
from visionloop.core.deployments import DEPLOY_STEPS
from visionloop.core.entities import JobStatus, TaskType, VersionStatus
from visionloop.core.jobs import recover_interrupted_jobs
from visionloop.core.records.review import FlowSettings
from visionloop.core.records.runs import Run, RunStatus
from visionloop.core.runkinds import KINDS, Next, RunContext, RunKind, queue_run, register_kind
from visionloop.core.runs import advance_pending
from visionloop.core.schedules import run_schedules
from visionloop.core.services import Services
from visionloop.core.serving import Serving, detect, maintain, start_version, stop_version
from visionloop.core.training import MODELS_BUCKET, get_version, request_training
from visionloop.engines.fake import ColourEngine
from visionloop.errors import NotReady
from visionloop.settings import Settings, load_settings
from visionloop.workflows.inference import ProcessInferenceHost
from visionloop.workflows.runner import WorkflowRunner
from visionloop.workflows.units import InferenceUnits
from visionloop.workflows.worker import run_worker


@pytest.fixture
def settings(cluster: Cluster, tmp_path: Path) -> Settings:
    """The servers' settings: one new database and one data folder (store and buckets)."""
    return load_settings(
        {"data_dir": str(tmp_path / "var"), "database_url": cluster.fresh_database()}, environ={}
    )


@pytest.fixture
def servers(settings: Settings) -> Iterator[tuple[Services, Services]]:
    """Two servers' services on one new database and one data folder (store and buckets), one clock."""
    clock = FakeClock()
    pair = (build_services(settings), build_services(settings))
    for svc in pair:
        svc.clock = clock
    yield pair
    for svc in pair:
        svc.repo.close()


def test_queued_trainings_are_each_trained_once_by_the_two_servers_workers(
    servers: tuple[Services, Services], tmp_path: Path
) -> None:
    a, b = servers
    jobs = []
    for i in range(3):
        colour_project(a, tmp_path, f"p{i}", per_label=3)
        for _ in range(2):
            jobs.append(request_training(b if i % 2 else a, f"p{i}")[1])
    engines = [ColourEngine() for _ in range(4)]  # two worker threads per server
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=run_worker,
            args=(svc, engine, "us-east-1", "123456789012", stop),
            kwargs={"poll_seconds": 0.05, "recover": False},
        )
        for svc, engine in zip((a, a, b, b), engines, strict=True)
    ]
    for thread in threads:
        thread.start()
    try:
        _wait_until_ended(a, [job.id for job in jobs])
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    done = [a.repo.get_job(job.id) for job in jobs]
    assert [j.status for j in done] == [JobStatus.SUCCEEDED] * len(jobs), [j.message for j in done]
    assert sum(e.trained for e in engines) == len(jobs)  # nothing trained twice
    versions = [b.repo.get_version_by_id(j.version_id) for j in done if j.version_id is not None]
    assert {v.status for v in versions} == {VersionStatus.TRAINING_COMPLETED}


def _wait_until_ended(svc: Services, job_ids: list[int], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while any(svc.repo.get_job(i).status in (JobStatus.QUEUED, JobStatus.RUNNING) for i in job_ids):
        assert time.monotonic() < deadline, "the jobs did not end"
        time.sleep(0.05)


def test_reviewers_leasing_through_both_servers_get_distinct_items(
    servers: tuple[Services, Services],
) -> None:
    a, b = servers
    now = NOW  # the loops new_loop makes expire a day after NOW
    project = a.repo.create_project("p", TaskType.CLASSIFICATION, now)
    flow = a.repo.create_flow(project.id, "f", "arn:f", FlowSettings(labels=("a", "b")), now)
    repos = [svc.repo for svc in servers]
    for i in range(12):
        repos[i % 2].create_loop(new_loop(flow.id, i), now)
    # 16 reviewers at once, half through each server, for 12 items that each need one answer
    leased = at_once(16, lambda i: repos[i % 2].lease_next_loop(f"reviewer-{i}", now, now))
    items = [got[0].id for got in leased if got is not None]
    assert len(items) == 12 and len(set(items)) == 12, items


def test_a_due_training_check_fires_once_per_period_across_both_servers(
    servers: tuple[Services, Services], tmp_path: Path
) -> None:
    a, b = servers
    colour_project(a, tmp_path, "p", per_label=3)
    rules(a, "p", auto_training_enabled=True, training_poll_minutes=10)
    clock = a.clock
    assert isinstance(clock, FakeClock)
    fired = []
    for _ in range(6):
        both = at_once(2, lambda i: run_schedules(servers[i]))
        fired.append(sum(1 for f in both[0] + both[1] if f.kind == "training"))
        for svc in servers:  # the check's run ends (here: unrun) before the next period
            for run in svc.repo.active_runs(None):
                svc.repo.update_run(run.id, status=RunStatus.FAILED)
        clock.advance(minutes=10)
    assert fired == [1] * 6
    runs = a.repo.list_runs(a.repo.get_project("p").id)
    assert len(runs) == 6


def test_a_schedule_both_servers_create_stays_as_the_first_armed_it(
    servers: tuple[Services, Services],
) -> None:
    a, b = servers
    project = a.repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    armed = {"enabled": True, "interval_minutes": 10.0, "next_run_at": NOW}
    created = a.repo.create_schedule(project.id, "training", NOW, **armed)
    fired = a.repo.rearm_schedule(created, next_run_at=NOW + timedelta(minutes=10), updated_at=NOW)
    # b had read no schedule before a created it: its creation must not arm it again (b would fire it)
    assert b.repo.create_schedule(project.id, "training", NOW, **armed) == fired
    assert [s.next_run_at for s in b.repo.list_schedules(project.id)] == [NOW + timedelta(minutes=10)]


@pytest.fixture
def deploy_kind() -> Iterator[str]:
    """A run kind that deploys the version named in its input with the product's deploy steps
    (core.deployments.DEPLOY_STEPS: start, switch, stop_previous), as a training check's end does."""

    def pick(ctx: RunContext, run: Run, state: dict[str, Any]) -> Next:
        version = ctx.svc.repo.get_version_by_id(int(run.input["version_id"]))
        chosen = {"version_id": version.id, "version": version.name, "previous": None, "previous_id": None}
        return Next({**chosen, "deploy_reason": "test"}, next="start")

    register_kind(RunKind("deploy_test", first="pick", steps={"pick": pick, **DEPLOY_STEPS}))
    yield "deploy_test"
    del KINDS["deploy_test"]


def test_a_deployment_switch_happens_once_when_both_servers_advance_the_run(
    servers: tuple[Services, Services], tmp_path: Path, deploy_kind: str
) -> None:
    a, b = servers
    serving = Serving(ProcessInferenceHost(fake_engine, threads=1))  # starts no unit: versions are RUNNING
    contexts = [RunContext(svc, serving) for svc in servers]
    runs = []
    for i in range(6):
        colour_project(a, tmp_path, f"p{i}", per_label=3)
        version, _ = request_training(a, f"p{i}")
        a.repo.update_version(version.id, status=VersionStatus.STARTING)  # as if its units were starting
        runs.append(queue_run(a, f"p{i}", deploy_kind, "manual", {"version_id": version.id}))
    at_once(2, lambda i: advance_pending(contexts[i]))  # both wait at "start" on the STARTING versions
    for run in runs:
        assert a.repo.get_run(run.id).current_step == "start"
        a.repo.update_version(int(run.input["version_id"]), status=VersionStatus.RUNNING)
    at_once(2, lambda i: advance_pending(contexts[i]))  # both servers find the runs ready to switch
    for run in runs:
        assert b.repo.get_run(run.id).status is RunStatus.SUCCEEDED
        assert len(b.repo.list_deployments(run.project_id)) == 1


class HeldEngine(ColourEngine):
    """The colour engine, holding each training until ``release`` is set (a long training)."""

    def __init__(self) -> None:
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()

    def train(self, *args: Any, **kwargs: Any) -> Any:
        self.started.set()
        assert self.release.wait(60)
        return super().train(*args, **kwargs)


def test_a_second_servers_start_fails_only_the_jobs_of_workers_that_are_gone(
    servers: tuple[Services, Services], tmp_path: Path
) -> None:
    a, b = servers
    colour_project(a, tmp_path, "p", per_label=3)
    _, lost = request_training(a, "p")
    assert a.repo.claim_job(a.clock.now(), lost.id, worker="gone-host:1") is not None  # a worker that died
    _, training = request_training(a, "p")
    engine, stop = HeldEngine(), threading.Event()
    worker = threading.Thread(
        target=run_worker,
        args=(a, engine, "us-east-1", "123456789012", stop),
        kwargs={"poll_seconds": 0.05, "recover": False},
    )
    worker.start()
    try:
        assert engine.started.wait(30)  # server a's worker is training ...
        failed = recover_interrupted_jobs(b)  # ... when server b starts and recovers
        assert [job.id for job in failed] == [lost.id]
        assert b.repo.get_job(training.id).status is JobStatus.RUNNING
        engine.release.set()
        _wait_until_ended(a, [training.id])
    finally:
        engine.release.set()
        stop.set()
        worker.join(30)
    assert a.repo.get_job(training.id).status is JobStatus.SUCCEEDED and engine.trained == 1
    assert a.repo.get_job(lost.id).status is JobStatus.FAILED


def test_a_server_restarted_four_times_beside_a_working_runner_neither_fails_nor_repeats_its_run(
    servers: tuple[Services, Services], settings: Settings, tmp_path: Path, deploy_kind: str
) -> None:
    a, b = servers
    serving = Serving(ProcessInferenceHost(fake_engine, threads=1))  # starts no unit: versions are RUNNING
    colour_project(a, tmp_path, "p", per_label=3)
    version, _ = request_training(a, "p")
    a.repo.update_version(version.id, status=VersionStatus.STARTING)  # the run waits at "start"
    run = queue_run(a, "p", deploy_kind, "manual", {"version_id": version.id})
    working = WorkflowRunner(RunContext(b, serving), poll_seconds=0.02, recover=True).start()
    try:
        _wait_for(lambda: b.repo.get_run(run.id).current_step == "start")
        for _ in range(4):  # server a comes and goes, with its own services, as a restarted process does
            again = build_services(settings)
            again.clock = a.clock
            restarted = WorkflowRunner(RunContext(again, serving), poll_seconds=0.02, recover=True).start()
            time.sleep(0.1)  # both advance the run meanwhile
            restarted.stop()
            again.repo.close()
        waiting = a.repo.get_run(run.id)
        assert (waiting.status, waiting.resumed, waiting.output.get("resumed_at")) == (
            RunStatus.RUNNING,
            0,
            None,
        )
    finally:
        working.stop()
    # server b is gone: a start alone now resumes the run it left (and stops showing itself at its stop)
    alone = WorkflowRunner(RunContext(a, serving), poll_seconds=0.02, recover=True).start()
    try:
        assert a.repo.get_run(run.id).resumed == 1
        a.repo.update_version(version.id, status=VersionStatus.RUNNING)
        _wait_for(lambda: a.repo.get_run(run.id).status is RunStatus.SUCCEEDED)
    finally:
        alone.stop()
    assert len(a.repo.list_deployments(run.project_id)) == 1
    steps = [s.name for s in a.repo.list_steps(run.id)]
    assert steps == ["pick", "start", "switch", "stop_previous"], steps


def _wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true"
        time.sleep(0.02)


def _trained(svc: Services, project: str) -> str:
    version, _ = request_training(svc, project)
    assert run_jobs(svc) == 1
    return version.name


def _status(svc: Services, project: str, version: str) -> VersionStatus:
    return get_version(svc, project, version).status


def test_a_server_starting_beside_another_follows_its_running_versions_and_changes_no_status(
    servers: tuple[Services, Services], tmp_path: Path
) -> None:
    a, b = servers
    colour_project(a, tmp_path, "p", per_label=3)
    first, second = _trained(a, "p"), _trained(a, "p")
    serving_a, serving_b = (Serving(ProcessInferenceHost(fake_engine, threads=1)) for _ in range(2))
    red = image_bytes(color=RED)
    units_a = InferenceUnits(a, serving_a).start()  # alone on the database: brings back (nothing)
    try:
        start_version(a, serving_a, "p", first)
        _wait_for(lambda: _status(a, "p", first) is VersionStatus.RUNNING)
        expected = detect(a, serving_a, "p", first, red)
        units_b = InferenceUnits(b, serving_b).start()  # beside a: loads its own units for "first"
        try:
            seen = set()
            while True:  # while b loads, the stored status stays RUNNING and a answers
                seen.add(_status(b, "p", first))
                assert detect(a, serving_a, "p", first, red) == expected
                if serving_b.host.wait_ready(get_version(b, "p", first).id, 0.01):
                    break
            assert seen == {VersionStatus.RUNNING}
            assert detect(b, serving_b, "p", first, red) == expected
            # started through a after b's start: b follows it at the first detection it is sent
            start_version(a, serving_a, "p", second)
            _wait_for(lambda: _status(a, "p", second) is VersionStatus.RUNNING)
            assert detect(b, serving_b, "p", second, red) == detect(a, serving_a, "p", second, red)
            # stopped through a: b's units go at its next maintenance, and b answers NotReady
            stop_version(a, serving_a, "p", first)
            _wait_for(lambda: _status(a, "p", first) is VersionStatus.STOPPED)
            maintain(b, serving_b)
            assert get_version(b, "p", first).id not in serving_b.host.versions()
            with pytest.raises(NotReady):
                detect(b, serving_b, "p", first, red)
        finally:
            units_b.stop()
        # b's stop stops only its own units: the version it followed is RUNNING on a
        assert _status(a, "p", second) is VersionStatus.RUNNING
        assert detect(a, serving_a, "p", second, red)
        units_b = InferenceUnits(b, serving_b := Serving(ProcessInferenceHost(fake_engine, threads=1)))
        units_b.start()  # b restarted beside a: nothing is moved to STARTING again
        try:
            assert _status(b, "p", second) is VersionStatus.RUNNING
            assert detect(b, serving_b, "p", second, red) == detect(a, serving_a, "p", second, red)
        finally:
            units_b.stop()
    finally:
        units_a.stop()


def test_a_server_that_cannot_load_a_version_started_elsewhere_answers_not_ready_alone(
    servers: tuple[Services, Services], tmp_path: Path
) -> None:
    a, b = servers
    colour_project(a, tmp_path, "p", per_label=3)
    name = _trained(a, "p")
    serving_a, serving_b = (Serving(ProcessInferenceHost(fake_engine, threads=1)) for _ in range(2))
    red = image_bytes(color=RED)
    units_a, units_b = InferenceUnits(a, serving_a).start(), InferenceUnits(b, serving_b).start()
    try:
        start_version(a, serving_a, "p", name)
        _wait_for(lambda: _status(a, "p", name) is VersionStatus.RUNNING)
        expected = detect(a, serving_a, "p", name, red)
        version = get_version(a, "p", name)
        for obj in list(a.store.list_objects(MODELS_BUCKET, f"{version.artifact_key}/")):
            a.store.delete(MODELS_BUCKET, obj.key)  # lost from the store after a loaded it
        with pytest.raises(NotReady, match="could not be started on this server"):
            detect(b, serving_b, "p", name, red)
        assert _status(b, "p", name) is VersionStatus.RUNNING  # b's failure is b's alone
        assert detect(a, serving_a, "p", name, red) == expected
        assert version.id not in serving_b.host.versions()
    finally:
        units_b.stop()
        units_a.stop()
