"""The job worker: claims queued jobs one at a time and runs them. The server starts one worker process
(`visionloop worker`); the CLI runs a job it just queued in the foreground through the same code."""

from __future__ import annotations

import logging
import os
import socket
import threading

from visionloop.core.entities import Job, JobStatus, VersionStatus
from visionloop.core.gate import run_compare_job
from visionloop.core.ports import TrainingEngine
from visionloop.core.services import Services
from visionloop.core.training import run_training_job

log = logging.getLogger("visionloop.worker")
INTERRUPTED = "interrupted: the worker stopped before the job finished (server restart?); train again"


def worker_id(pid: int | None = None) -> str:
    """How a worker process signs the jobs it claims: "host:pid" (the server matches a dead worker by it)."""
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}"


def recover_interrupted_jobs(svc: Services) -> list[Job]:
    """Jobs left RUNNING by a worker that died are marked FAILED, and their versions TRAINING_FAILED,
    so that nothing stays 'in progress' forever. Call only when no other worker runs."""
    return fail_jobs(svc, svc.repo.list_jobs(status=JobStatus.RUNNING), INTERRUPTED)


def fail_jobs_of_worker(svc: Services, worker: str, message: str) -> list[Job]:
    """The RUNNING jobs claimed by ``worker`` (a process that died) are failed with ``message``."""
    running = svc.repo.list_jobs(status=JobStatus.RUNNING)
    return fail_jobs(svc, [j for j in running if j.worker == worker], message)


def fail_jobs(svc: Services, jobs: list[Job], message: str) -> list[Job]:
    """Mark ``jobs`` FAILED with ``message``, and a version each was training TRAINING_FAILED."""
    failed = []
    for job in jobs:
        now = svc.clock.now()
        failed.append(svc.repo.update_job(job.id, status=JobStatus.FAILED, message=message, finished_at=now))
        if job.version_id is not None:
            version = svc.repo.get_version_by_id(job.version_id)
            if version.status is VersionStatus.TRAINING_IN_PROGRESS:
                svc.repo.update_version(
                    version.id,
                    status=VersionStatus.TRAINING_FAILED,
                    status_message=message,
                    training_ended_at=now,
                )
        log.warning("job %s failed: %s", job.id, message)
    return failed


def stop_when_parent_exits(parent_pid: int, stop: threading.Event, poll_seconds: float = 1.0) -> None:
    """End this worker when the server that started it is gone, however it ended (a server killed by a
    signal never runs its clean-up). A job cut short stays RUNNING until the next server start marks it
    failed; every write is atomic, so nothing half-written remains."""

    def watch() -> None:
        while not stop.wait(poll_seconds):
            if os.getppid() != parent_pid:
                log.warning("the server (pid %s) is gone; the worker stops", parent_pid)
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_job(svc: Services, engine: TrainingEngine, job: Job, region: str, account: str) -> Job:
    if job.kind == "train":
        run_training_job(svc, engine, job, region, account)
    elif job.kind == "compare":  # the champion/challenger gate of a training check (core.gate)
        run_compare_job(svc, engine, job)
    else:
        svc.repo.update_job(job.id, status=JobStatus.FAILED, message=f"unknown job kind {job.kind!r}")
    return svc.repo.get_job(job.id)


def run_worker(
    svc: Services,
    engine: TrainingEngine,
    region: str,
    account: str,
    stop: threading.Event,
    poll_seconds: float = 1.0,
    recover: bool = True,
) -> None:
    """Run queued jobs until ``stop`` is set; with ``recover``, first fail the jobs a dead worker left."""
    if recover:
        recover_interrupted_jobs(svc)
    me = worker_id()
    while not stop.is_set():
        job = svc.repo.claim_job(svc.clock.now(), worker=me)
        if job is None:
            stop.wait(poll_seconds)
            continue
        log.info("running job %s (%s)", job.id, job.kind)
        try:
            run_job(svc, engine, job, region, account)
        except Exception:  # already recorded on the job and version; keep serving other jobs
            log.exception("job %s failed", job.id)
