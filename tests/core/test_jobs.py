"""The job use cases a worker runs on (core.jobs): claim the next job, fail a job with the version it
trains, fail the jobs of a dead worker or those a stopped server left running."""

from __future__ import annotations

from pathlib import Path

from tests.workflows.helpers import colour_project
from visionloop.core import jobs
from visionloop.core.entities import JobStatus, VersionStatus
from visionloop.core.services import Services
from visionloop.core.training import TrainingOptions, request_training


def test_the_next_job_is_claimed_once_and_signed_by_its_worker(services: Services, tmp_path: Path) -> None:
    name = colour_project(services, tmp_path)
    _, job = request_training(services, name, TrainingOptions())
    claimed = jobs.claim_next_job(services, "host:1")
    assert claimed is not None and claimed.id == job.id
    assert (claimed.status, claimed.worker) == (JobStatus.RUNNING, "host:1")
    assert jobs.claim_next_job(services, "host:2") is None


def test_a_failed_job_fails_the_version_it_was_training(services: Services, tmp_path: Path) -> None:
    name = colour_project(services, tmp_path)
    version, job = request_training(services, name, TrainingOptions())
    failed = jobs.fail_job(services, job, "no luck")
    assert (failed.status, failed.message) == (JobStatus.FAILED, "no luck") and failed.finished_at
    v = jobs.job_version(services, job)
    assert (v.status, v.status_message) == (VersionStatus.TRAINING_FAILED, "no luck")


def test_only_the_dead_workers_jobs_fail_and_recovery_fails_every_running_one(
    services: Services, tmp_path: Path
) -> None:
    name = colour_project(services, tmp_path)
    _, first = request_training(services, name, TrainingOptions())
    _, second = request_training(services, name, TrainingOptions())
    assert jobs.claim_next_job(services, "host:1") is not None
    assert jobs.claim_next_job(services, "host:2") is not None
    [dead] = jobs.fail_jobs_of_worker(services, "host:1", "interrupted: died")
    assert dead.id == first.id and jobs.get_job(services, second.id).status is JobStatus.RUNNING
    [left] = jobs.recover_interrupted_jobs(services)
    assert left.id == second.id and left.message == jobs.INTERRUPTED


def test_a_finished_job_keeps_its_result(services: Services, tmp_path: Path) -> None:
    name = colour_project(services, tmp_path)
    _, job = request_training(services, name, TrainingOptions())
    done = jobs.finish_job(services, job, {"passed": True})
    assert (done.status, done.progress, done.stage, done.result) == (
        JobStatus.SUCCEEDED,
        1.0,
        "done",
        {"passed": True},
    )
    assert done.finished_at is not None
