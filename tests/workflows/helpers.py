"""Shared by the workflow tests: a fake clock, a colour project, running jobs and driving runs."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.factories import image_bytes, make_project
from visionloop.core import datasets, parameters
from visionloop.core.ports import TrainingEngine
from visionloop.core.records.runs import ACTIVE, Run
from visionloop.core.runkinds import RunContext
from visionloop.core.runs import advance_pending
from visionloop.core.services import Services
from visionloop.engines.fake import ColourEngine
from visionloop.workflows.worker import run_job

RED = (220, 20, 20)
BLUE = (20, 20, 220)
GREEN = (20, 220, 20)
PURPLE = (200, 20, 120)


class FakeClock:
    """core.ports.Clock whose time moves only when a test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self.t = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t

    def advance(self, minutes: float = 0, seconds: float = 0) -> datetime:
        self.t += timedelta(minutes=minutes, seconds=seconds)
        return self.t


def write_images(root: Path, label: str, colour: tuple[int, int, int], count: int, start: int = 0) -> Path:
    """``count`` distinct images near ``colour`` under ``root/label/``."""
    folder = root / label
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        shade = (
            _clamp(colour[0] - i % 8),
            _clamp(colour[1] + (i // 8) % 8),
            _clamp(colour[2] + (i // 64) % 8),
        )
        (folder / f"{label}-{i}.png").write_bytes(image_bytes(color=shade, fmt="PNG"))  # lossless: distinct
    return root


def _clamp(value: int) -> int:
    return min(max(value, 0), 255)


def colour_project(svc: Services, tmp: Path, name: str = "colours", per_label: int = 6) -> str:
    """A classification project with ``per_label`` red and blue TRAIN images and 2 + 2 in TEST."""
    make_project(svc, name)
    train = tmp / f"{name}-train"
    write_images(train, "red", RED, per_label)
    write_images(train, "blue", BLUE, per_label)
    datasets.import_folder(svc, name, str(train))
    test = tmp / f"{name}-test"
    write_images(test, "red", RED, 2, start=40)
    write_images(test, "blue", BLUE, 2, start=40)
    datasets.import_folder(svc, name, str(test), "test")
    return name


def add_train_images(
    svc: Services, project: str, tmp: Path, label: str, colour: tuple[int, int, int], count: int, start: int
) -> None:
    folder = tmp / f"more-{label}-{start}"
    write_images(folder, label, colour, count, start)
    datasets.import_folder(svc, project, str(folder))


def rules(svc: Services, project: str, **values: object) -> None:
    parameters.update_parameters(svc, project, values, changed_by="test")


def run_jobs(svc: Services, engine: TrainingEngine | None = None) -> int:
    """Run every queued job (training, comparison) here, as a worker would, with the colour engine;
    how many ran."""
    n = 0
    while (job := svc.repo.claim_job(svc.clock.now())) is not None:
        with contextlib.suppress(Exception):  # recorded on the job, as the worker does
            run_job(svc, engine or ColourEngine(), job, "us-east-1", "123456789012")
        n += 1
    return n


def drive(
    ctx: RunContext,
    run_id: int,
    until: Callable[[Run], bool] | None = None,
    timeout: float = 60,
    jobs: bool = True,
) -> Run:
    """Advance the runs and (with ``jobs``) run the queued jobs until the run ended (or ``until``);
    real time passes only while versions start or stop in their unit processes."""
    deadline = time.monotonic() + timeout
    while True:
        advance_pending(ctx)
        if jobs:
            run_jobs(ctx.svc)
        run = ctx.svc.repo.get_run(run_id)
        if until(run) if until else run.status not in ACTIVE:
            return run
        assert time.monotonic() < deadline, f"run {run_id} stayed {run.status.value} at {run.current_step}"
        time.sleep(0.05)
