"""Use cases for background jobs (a model version's training, queued by core.training): list them, read
one, claim a queued one to run it here (or the next one, for a worker), find the version a job trains,
and fail jobs with the versions they were training (a job of an unknown kind, the jobs of a worker that
died, those a stopped server left running)."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager

from visionloop.core.entities import Job, JobStatus, ModelVersion, Project, VersionStatus
from visionloop.core.projects import get_project
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, NotFound

log = logging.getLogger("visionloop.worker")
INTERRUPTED = "interrupted: the worker stopped before the job finished (server restart?); train again"


def list_jobs(svc: Services, project_name: str | None = None) -> list[Job]:
    """Every job, or only ``project_name``'s, oldest first."""
    project_id = get_project(svc, project_name).id if project_name else None
    return svc.repo.list_jobs(project_id)


def get_job(svc: Services, job_id: int) -> Job:
    return svc.repo.get_job(job_id)


def claim_job(svc: Services, job: Job) -> Job:
    """Take the queued ``job`` to run it in this process (InvalidInput if a worker took it first)."""
    claimed = svc.repo.claim_job(svc.clock.now(), job.id)
    if claimed is None:
        raise InvalidInput(f"job {job.id} was taken by another worker")
    return claimed


def claim_next_job(svc: Services, worker: str) -> Job | None:
    """The oldest queued job, taken by ``worker`` (how it signs its jobs); None when none waits."""
    return svc.repo.claim_job(svc.clock.now(), worker=worker)


def finish_job(svc: Services, job: Job, result: dict[str, object] | None = None) -> Job:
    """Mark ``job`` SUCCEEDED (progress 1, stage "done"), with its ``result`` when it has one."""
    extra = {} if result is None else {"result": result}
    return svc.repo.update_job(
        job.id,
        status=JobStatus.SUCCEEDED,
        progress=1.0,
        stage="done",
        eta_seconds=0.0,
        finished_at=svc.clock.now(),
        **extra,
    )


def fail_job(svc: Services, job: Job, message: str) -> Job:
    """Mark ``job`` FAILED with ``message``, and the version it was training TRAINING_FAILED."""
    now = svc.clock.now()
    failed = svc.repo.update_job(job.id, status=JobStatus.FAILED, message=message, finished_at=now)
    if job.version_id is not None:
        version = svc.repo.get_version_by_id(job.version_id)
        if version.status is VersionStatus.TRAINING_IN_PROGRESS:
            status = VersionStatus.TRAINING_FAILED
            svc.repo.update_version(version.id, status=status, status_message=message, training_ended_at=now)
    log.warning("job %s failed: %s", job.id, message)
    return failed


def recover_interrupted_jobs(svc: Services) -> list[Job]:
    """Jobs left RUNNING by a worker that died are failed (fail_job), so that nothing stays 'in progress'
    forever. Call only when none of this server's workers runs (the server's start, a recovering worker);
    on PostgreSQL the jobs of workers still alive elsewhere (another server's, repo.worker_alive) are
    left to them."""
    running = svc.repo.list_jobs(status=JobStatus.RUNNING)
    lost = [job for job in running if not (job.worker and svc.repo.worker_alive(job.worker))]
    return [fail_job(svc, job, INTERRUPTED) for job in lost]


def worker_present(svc: Services, worker: str) -> AbstractContextManager[None]:
    """For the block, ``worker`` shows as alive to other servers' start-up recovery
    (recover_interrupted_jobs), which then leaves its jobs alone; a dead process shows as gone."""
    return svc.repo.worker_present(worker)


def fail_jobs_of_worker(svc: Services, worker: str, message: str) -> list[Job]:
    """The RUNNING jobs claimed by ``worker`` (a process that died) are failed with ``message``."""
    running = svc.repo.list_jobs(status=JobStatus.RUNNING)
    return [fail_job(svc, job, message) for job in running if job.worker == worker]


def job_version(svc: Services, job: Job) -> ModelVersion:
    """The model version ``job`` trains, as it is now."""
    if job.version_id is None:
        raise InvalidInput(f"job {job.id} trains no model version")
    return svc.repo.get_version_by_id(job.version_id)


# --- the console's training jobs --------------------------------------------------------------------------


def training_jobs(svc: Services, project: Project, limit: int) -> list[tuple[Job, ModelVersion | None]]:
    """The project's ``limit`` newest training jobs, newest first, each with the version it trains (None
    when that version was deleted since)."""
    jobs = [j for j in svc.repo.list_jobs(project.id) if j.kind == "train"]
    jobs.sort(key=lambda j: (j.created_at, j.id), reverse=True)
    return [(j, _trained_version(svc, j)) for j in jobs[:limit]]


def training_job(svc: Services, project: Project, job_id: int) -> tuple[Job, ModelVersion | None]:
    """One training job of the project with the version it trains; NotFound when the project has no such
    job."""
    job = svc.repo.get_job(job_id)
    if job.project_id != project.id or job.kind != "train":
        raise NotFound(f"training job {job_id} is not in project {project.name!r}")
    return job, _trained_version(svc, job)


def _trained_version(svc: Services, job: Job) -> ModelVersion | None:
    if job.version_id is None:
        return None
    try:
        return svc.repo.get_version_by_id(job.version_id)
    except NotFound:  # deleted since
        return None
