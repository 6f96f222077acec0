"""The job worker: claims queued jobs one at a time and runs them. The server starts one worker process
(`visionloop worker`); the CLI runs a job it just queued in the foreground through the same code."""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass

from visionloop.core.entities import Job
from visionloop.core.gate import run_compare_job
from visionloop.core.jobs import (
    claim_next_job,
    fail_job,
    get_job,
    recover_interrupted_jobs,
    worker_present,
)
from visionloop.core.ports import TrainingEngine
from visionloop.core.services import Services
from visionloop.core.training import run_training_job
from visionloop.workflows.background import Ticker

log = logging.getLogger("visionloop.worker")


def worker_id(pid: int | None = None) -> str:
    """How a worker process signs the jobs it claims: "host:pid" (the server matches a dead worker by it)."""
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}"


def stop_when_parent_exits(parent_pid: int, poll_seconds: float = 1.0) -> Ticker:
    """End this worker when the server that started it is gone, however it ended (a server killed by a
    signal never runs its clean-up): a started Ticker that looks every ``poll_seconds``. A job cut short
    stays RUNNING until the next server start marks it failed; every write is atomic, so nothing
    half-written remains."""

    def look() -> None:
        if os.getppid() != parent_pid:
            log.warning("the server (pid %s) is gone; the worker stops", parent_pid)
            os._exit(0)

    return Ticker("parent-watch", look, poll_seconds, delay_first=True).start()


def run_job(svc: Services, engine: TrainingEngine, job: Job, region: str, account: str) -> Job:
    if job.kind == "train":
        run_training_job(svc, engine, job, region, account)
    elif job.kind == "compare":  # the champion/challenger gate of a training check (core.gate)
        run_compare_job(svc, engine, job)
    else:
        fail_job(svc, job, f"unknown job kind {job.kind!r}")
    return get_job(svc, job.id)


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
    with worker_present(svc, me):  # other servers' recovery leaves this worker's jobs alone
        while not stop.is_set():
            job = claim_next_job(svc, me)
            if job is None:
                stop.wait(poll_seconds)
                continue
            log.info("running job %s (%s)", job.id, job.kind)
            try:
                run_job(svc, engine, job, region, account)
            except Exception:  # already recorded on the job and version; keep serving other jobs
                log.exception("job %s failed", job.id)


@dataclass(frozen=True)
class Worker:
    """What a process runs jobs with (bootstrap.build_worker builds it): the services, the training engine,
    and the region and account in its versions' ARNs."""

    svc: Services
    engine: TrainingEngine
    region: str
    account: str

    def run_job(self, job: Job) -> Job:
        return run_job(self.svc, self.engine, job, self.region, self.account)

    def run(self, stop: threading.Event, poll_seconds: float = 1.0, recover: bool = True) -> None:
        run_worker(self.svc, self.engine, self.region, self.account, stop, poll_seconds, recover)
