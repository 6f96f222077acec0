"""Schedules of the training and sampling checks on a fake clock: armed when first seen, fired when due,
re-armed when their frequency changes, fired at once by a parameter change, persisted across restarts;
and the workflow runner that drives them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.factories import make_project
from tests.workflows.helpers import FakeClock, colour_project, rules
from visionloop.bootstrap import fake_engine
from visionloop.core import schedules
from visionloop.core.records.runs import RunStatus
from visionloop.core.runkinds import RunContext
from visionloop.core.runs import list_runs
from visionloop.core.schedules import CheckKind, list_schedules, register_check, run_schedules
from visionloop.core.services import Services
from visionloop.core.serving import Serving
from visionloop.workflows.inference import ProcessInferenceHost
from visionloop.workflows.runner import WorkflowRunner


@pytest.fixture
def clock(services: Services) -> FakeClock:
    fake = FakeClock()
    services.clock = fake
    return fake


@pytest.fixture
def calls() -> Iterator[list[tuple[str, str]]]:
    """A stand-in sampling check (the real one is core.sampling's), restored afterwards."""
    seen: list[tuple[str, str]] = []
    real = schedules.CHECKS["sampling"]

    def fire(svc: Services, project: str, trigger: str) -> str:
        seen.append((project, trigger))
        return f"sampled {project}"

    register_check(CheckKind(real.name, real.enabled_by, real.every, real.watched, fire))
    yield seen
    schedules.CHECKS["sampling"] = real


def by_kind(svc: Services, project: str) -> dict[str, schedules.Schedule]:
    return {s.kind: s for s in list_schedules(svc, project)}


def test_schedules_are_armed_fired_when_due_and_rearmed(
    services: Services, clock: FakeClock, calls: list[tuple[str, str]]
) -> None:
    make_project(services, "p")
    assert run_schedules(services) == []  # both checks are off by default: armed, never fired
    armed = by_kind(services, "p")
    assert set(armed) == {"training", "sampling"} and not armed["training"].enabled
    assert armed["training"].next_run_at is None and armed["training"].interval_minutes == 60

    rules(services, "p", human_sampling_enabled=True, human_sampling_minutes=10)
    [fired] = run_schedules(services)  # a change fires its check at once ...
    assert (fired.kind, fired.trigger, fired.result) == ("sampling", "parameter_change", "sampled p")
    assert set(fired.changed) == {"human_sampling_enabled", "human_sampling_minutes"}
    sampling = by_kind(services, "p")["sampling"]
    assert sampling.enabled and sampling.next_run_at == clock.now() + timedelta(minutes=10)
    assert sampling.last_result == "sampled p" and sampling.last_run_at == clock.now()

    clock.advance(minutes=9, seconds=59)
    assert run_schedules(services) == []  # ... and then every 10 minutes
    clock.advance(seconds=1)
    assert [f.trigger for f in run_schedules(services)] == ["schedule"]
    assert by_kind(services, "p")["sampling"].next_run_at == clock.now() + timedelta(minutes=10)

    clock.advance(minutes=3)
    rules(services, "p", human_sampling_minutes=2)  # a new frequency re-arms from now
    assert [f.trigger for f in run_schedules(services)] == ["parameter_change"]
    assert by_kind(services, "p")["sampling"].next_run_at == clock.now() + timedelta(minutes=2)
    clock.advance(minutes=2)
    assert len(run_schedules(services)) == 1

    rules(services, "p", human_sampling_interval=5)  # a watched parameter other than the period
    assert [f.changed for f in run_schedules(services)] == [("human_sampling_interval",)]
    rules(services, "p", min_confidence=70)  # not watched by either check
    assert run_schedules(services) == []
    rules(services, "p", human_sampling_enabled=False)  # disabled: re-armed off, not fired
    assert run_schedules(services) == []
    clock.advance(minutes=120)
    assert run_schedules(services) == [] and by_kind(services, "p")["sampling"].next_run_at is None
    assert len(calls) == 5


def test_a_stopped_server_does_not_catch_up_every_missed_check(
    services: Services, clock: FakeClock, calls: list[tuple[str, str]]
) -> None:
    make_project(services, "p")
    rules(services, "p", human_sampling_enabled=True, human_sampling_minutes=5)
    run_schedules(services)
    clock.advance(minutes=60)  # twelve periods while no server ran
    assert len(run_schedules(services)) == 1
    assert by_kind(services, "p")["sampling"].next_run_at == clock.now() + timedelta(minutes=5)
    assert run_schedules(services) == []


def test_a_change_made_by_another_process_is_seen(
    services: Services, clock: FakeClock, calls: list[tuple[str, str]], settings: object
) -> None:
    from visionloop.bootstrap import build_services

    make_project(services, "p")
    run_schedules(services)
    other = build_services(settings)  # type: ignore[arg-type]  # e.g. the CLI, with its own bus
    try:
        rules(other, "p", human_sampling_enabled=True)
    finally:
        other.repo.close()
    assert [f.trigger for f in run_schedules(services)] == ["parameter_change"]


def test_the_training_schedule_queues_checks_but_never_two_at_once(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    name = colour_project(services, tmp_path)
    run_schedules(services)
    rules(services, name, auto_training_enabled=True, training_poll_minutes=30)
    [fired] = [f for f in run_schedules(services) if f.kind == "training"]
    [run] = list_runs(services, name)
    assert fired.result == f"run {run.id} queued" and run.trigger == "parameter_change"
    clock.advance(minutes=30)
    [again] = [f for f in run_schedules(services) if f.kind == "training"]
    assert again.result.startswith(f"not queued: training check run {run.id} of project 'colours' is QUEUED")
    assert len(list_runs(services, name)) == 1
    assert by_kind(services, name)["training"].last_result == again.result


def test_an_unavailable_or_failing_check_is_recorded(services: Services, clock: FakeClock) -> None:
    make_project(services, "p")
    missing = schedules.by_name("visionloop.core.no_such_module:check")
    assert (
        missing(services, "p", "schedule")
        == "not available: visionloop.core.no_such_module:check does not exist"
    )

    def broken(svc: Services, project: str, trigger: str) -> str:
        raise RuntimeError("the disk is full")

    real = schedules.CHECKS["sampling"]
    register_check(CheckKind(real.name, real.enabled_by, real.every, real.watched, broken))
    try:
        rules(services, "p", human_sampling_enabled=True)
        [fired] = run_schedules(services)
    finally:
        schedules.CHECKS["sampling"] = real
    assert fired.result == "failed: RuntimeError: the disk is full"
    assert by_kind(services, "p")["sampling"].last_result == fired.result
    with pytest.raises(ValueError, match="unknown parameter"):
        register_check(CheckKind("x", "nope", "training_poll_minutes", (), broken))


def test_the_runner_wakes_on_a_parameter_change(services: Services, clock: FakeClock, tmp_path: Path) -> None:
    name = colour_project(services, tmp_path)
    host = ProcessInferenceHost(fake_engine, threads=1)
    now = [0.0]
    runner = WorkflowRunner(RunContext(services, Serving(host)), schedule_seconds=5, monotonic=lambda: now[0])
    try:
        runner.tick()  # first pass: schedules armed
        services.bus.subscribe(runner.wake)
        rules(services, name, auto_training_enabled=True, min_untrained_images=100)
        now[0] = 1.0  # within schedule_seconds: only a wake makes this pass look at the schedules
        runner.tick()
        [run] = list_runs(services, name)
        assert run.status is RunStatus.SUCCEEDED and run.outcome == "skipped"  # advanced in the same pass
        assert run.reason == "12 new labelled images; 100 needed"
    finally:
        host.close()
