"""Worker processes owned by the server: started with it, watched while it runs (a dead one is reaped,
its jobs failed and a new one started: WorkerPool), stopped with it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from visionloop.settings import ENV_PREFIX, AccessKey, Settings
from visionloop.workflows.background import Ticker

log = logging.getLogger("visionloop.supervisor")


def worker_env(settings: Settings) -> dict[str, str]:
    """The server's resolved settings as the environment variables load_settings reads back."""
    return {f"{ENV_PREFIX}{k.upper()}": _env_value(getattr(settings, k)) for k in Settings.model_fields}


def _env_value(value: object) -> str:
    if isinstance(value, tuple):  # lists are written back as a comma list (str() of a tuple is no setting)
        return ",".join(f"{v.id}:{v.secret}" if isinstance(v, AccessKey) else str(v) for v in value)
    return str(value)


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """One ``visionloop worker`` process with the server's resolved settings; it ends with the server."""
    env = {**os.environ, **worker_env(settings)}
    cmd = [sys.executable, "-m", "visionloop", "worker", "--no-recover", "--parent-pid", str(os.getpid())]
    return subprocess.Popen(cmd, env=env)


def start_workers(settings: Settings, count: int) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` ``visionloop worker`` processes with the server's resolved settings."""
    return [start_worker(settings) for _ in range(count)]


def stop_workers(procs: list[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def died_message(pid: int, returncode: int) -> str:
    how = f"killed by signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
    # "interrupted:" as a job cut short by a restart: a workflow run requests such a training once more
    return f"interrupted: the worker running this job died (pid {pid}, {how}); a new worker was started"


@dataclass
class _Slot:
    proc: subprocess.Popen[bytes]
    started: float
    failures: int = 0  # deaths in a row, each within STABLE_SECONDS of its start
    restart_at: float | None = None  # when a dead worker is due to be replaced


class WorkerPool:
    """The server's worker processes, watched: every ``poll_seconds`` a dead one is reaped, the jobs it
    held are failed (``on_death(worker_id, message)``, e.g. core.jobs.fail_jobs_of_worker) and
    it is replaced, after a delay that doubles with each quick death in a row (BACKOFF_BASE up to
    BACKOFF_MAX seconds) so that a crash-looping worker does not spin. ``health()`` for /healthz. A
    Background component: ``start`` starts the processes and the watching Ticker, ``flush`` waits for
    the check in progress, ``stop`` ends the watching and the processes."""

    BACKOFF_BASE = 1.0
    BACKOFF_MAX = 60.0
    STABLE_SECONDS = 60.0  # a worker that lived this long resets the backoff

    def __init__(
        self,
        start: Callable[[], subprocess.Popen[bytes]],
        count: int,
        on_death: Callable[[int, str], object],
        poll_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._start, self.count, self.on_death = start, count, on_death
        self.poll_seconds, self.monotonic = poll_seconds, monotonic
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._ticker = Ticker("visionloop-workers", self._watch, poll_seconds, delay_first=True)
        self.replaced = 0  # workers started again after one died

    def start(self) -> Self:
        if not self._slots and not self._ticker.stopping:
            now = self.monotonic()
            self._slots = [_Slot(self._start(), now) for _ in range(self.count)]
            self._ticker.start()
        return self

    def health(self) -> dict[str, int]:
        with self._lock:
            alive = sum(s.proc.poll() is None for s in self._slots)
        return {"expected": self.count, "alive": alive, "replaced": self.replaced}

    def pids(self) -> list[int]:
        with self._lock:
            return [s.proc.pid for s in self._slots if s.proc.poll() is None]

    def check(self) -> None:
        """One pass: reap the dead workers, fail their jobs, and start those due again."""
        for slot in self._slots:
            if self._ticker.stopping:
                return
            now = self.monotonic()
            if slot.restart_at is None and (code := slot.proc.poll()) is not None:
                self._reap(slot, code, now)
            if slot.restart_at is not None and now >= slot.restart_at:
                proc = self._start()
                with self._lock:
                    slot.proc, slot.started, slot.restart_at = proc, now, None
                self.replaced += 1
                log.warning("started worker pid %d in place of the dead one", proc.pid)

    def _reap(self, slot: _Slot, code: int, now: float) -> None:
        pid = slot.proc.pid
        log.error("worker pid %d died (return code %d)", pid, code)
        try:
            self.on_death(pid, died_message(pid, code))
        except Exception:  # e.g. the database is briefly unavailable: the next server start fails them
            log.exception("could not fail the jobs of dead worker pid %d", pid)
        slot.failures = slot.failures + 1 if now - slot.started < self.STABLE_SECONDS else 1
        delay = min(self.BACKOFF_BASE * 2 ** (slot.failures - 1), self.BACKOFF_MAX)
        slot.restart_at = now + delay

    def _watch(self) -> None:
        try:
            self.check()
        except Exception:
            log.exception("watching the workers failed")

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait for the check in progress."""
        return self._ticker.flush(timeout)

    def stop(self, timeout: float | None = 10.0) -> None:
        self._ticker.stop(timeout)
        stop_workers([s.proc for s in self._slots], 10.0 if timeout is None else timeout)
