"""A training job's progress as the console reads it (core.training.JobProgress over the real repository,
with a clock the test moves): it never goes back, a new stage is written at once, and the ETA appears
only once a rate has been measured, from the recent rate rather than the average since the start."""

from __future__ import annotations

import pytest

from tests.factories import make_project
from visionloop.core.entities import Job
from visionloop.core.services import Services
from visionloop.core.training import MIN_RATE_SECONDS, RATE_WINDOW_SECONDS, JobProgress, stage_kind


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def job(services: Services) -> Job:
    project = make_project(services, "p")
    return services.repo.create_job("train", project.id, None, services.clock.now())


def read(services: Services, job: Job) -> tuple[float, str, float | None]:
    found = services.repo.get_job(job.id)
    return found.progress, found.stage, found.eta_seconds


def test_no_eta_before_a_measured_rate_then_the_recent_rate(services: Services, job: Job) -> None:
    clock = Clock()
    report = JobProgress(services, job, clock)
    report(0.0, "reading images (0 of 40)")
    assert read(services, job) == (0.0, "reading images (0 of 40)", None)
    clock.t += 0.1
    report(0.01, "reading images (2 of 40)")  # the same stage within half a second: not written yet
    assert read(services, job)[1] == "reading images (0 of 40)"
    clock.t += 0.1
    report(0.02, "embedding images (0 of 40)")  # a new stage: written at once
    assert read(services, job) == (0.02, "embedding images (0 of 40)", None), "no rate measured yet"
    for _ in range(int(MIN_RATE_SECONDS)):  # 0.05 a second
        clock.t += 1.0
        report(read(services, job)[0] + 0.05, "embedding images (n of 40)")
    progress, _, eta = read(services, job)
    assert eta is not None and eta == pytest.approx((1 - progress) / 0.05, rel=0.1)

    # the rate changes: after a window at 0.01 a second, the ETA follows the new rate, not the average
    for _ in range(int(RATE_WINDOW_SECONDS) + 2):
        clock.t += 1.0
        report(read(services, job)[0] + 0.01, "cross-validating (fold 1 of 5)")
    progress, stage, eta = read(services, job)
    assert stage_kind(stage) == "cross-validating"
    assert eta == pytest.approx((1 - progress) / 0.01, rel=0.1)

    # an engine part that reports a smaller fraction does not move the bar back
    clock.t += 1.0
    report(0.1, "fitting the linear head")
    assert read(services, job)[0] == progress

    # stalled for a whole window: no rate any more, so no ETA
    clock.t += RATE_WINDOW_SECONDS + 1
    report(progress, "fitting the linear head")
    clock.t += 1.0
    report(progress, "calibrating")
    assert read(services, job) == (progress, "calibrating", None)

    clock.t += 0.1
    report(1.0, "done")  # the end is always written
    assert read(services, job)[:2] == (1.0, "done")


def test_stage_kinds() -> None:
    assert stage_kind("embedding images (40 of 120, pass 2 of 7)") == "embedding images"
    assert stage_kind("calibrating") == "calibrating"


def test_a_stage_that_counted_no_work_is_left_out_of_the_rate(services: Services, job: Job) -> None:
    """Loading a network (exported on its first use) took 30 s and counted no image: the time left after
    it comes from the images embedded since, not from an average over the wait."""
    clock = Clock()
    report = JobProgress(services, job, clock)
    report(0.0, "reading images (0 of 100)")
    clock.t += 0.5
    report(0.05, "reading images (100 of 100)")
    report(0.05, "embedding images (0 of 100)")
    report(0.05, "loading the network (efficientnet-lite0)")
    clock.t += 30.0
    report(0.05, "embedding images (0 of 100)")  # loaded: the engine says the embedding begins
    for _ in range(4):  # then 0.1 a second
        clock.t += 1.0
        report(read(services, job)[0] + 0.1, "embedding images (n of 100)")
    progress, _, eta = read(services, job)
    # about 5.5 s at the rate of the work counted (not 40 s, as the 34.5 s since the start would say)
    assert progress == pytest.approx(0.45) and eta == pytest.approx((1 - 0.45) / 0.1, rel=0.1)
