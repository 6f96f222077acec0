"""The workflow runner: one thread of the server process that fires the schedules and advances the runs.

Runs execute here rather than in the worker processes because their deploy steps start and stop model
versions, and the inference units belong to the server (core.serving). The heavy work is not done on
this thread: training and the champion/challenger comparison are jobs for the worker processes
(workflows.worker), which a step queues and then polls. So a pass is quick: it reads the schedules,
fires what is due, and moves every active run on by the steps that can finish now.

The server (api/app.py lifespan) calls recover_runs, starts the runner, and subscribes ``wake`` to
``parameter_changed`` events so that a parameter change is acted on at once rather than at the next
pass. The CLI and the API only queue runs; a run queued while no server runs waits for one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from visionloop.core.events import Event, EventType
from visionloop.core.runs import RunContext, advance_pending, recover_runs
from visionloop.core.schedules import run_schedules
from visionloop.core.services import Services
from visionloop.core.serving import Serving
from visionloop.settings import Settings

log = logging.getLogger("visionloop.workflow")


class WorkflowRunner:
    """Every ``poll_seconds`` (or at once when woken): advance the active runs; every
    ``schedule_seconds`` (or when woken): a pass over the schedules."""

    def __init__(
        self,
        ctx: RunContext,
        poll_seconds: float = 1.0,
        schedule_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.poll_seconds, self.schedule_seconds = poll_seconds, schedule_seconds
        self.monotonic = monotonic
        self._last_schedules: float | None = None
        self._woken = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="visionloop-workflow", daemon=True)
        self.on_stop: Callable[[], None] | None = None  # e.g. unsubscribe from the event bus

    def start(self) -> WorkflowRunner:
        self._thread.start()
        return self

    def wake(self, _: Event | None = None) -> None:
        """Run a pass now (also a bus subscriber: ``svc.bus.subscribe(runner.wake, [PARAMETER_CHANGED])``)."""
        self._woken.set()

    def tick(self) -> None:
        """One pass: the schedules when due (or woken), then every project's active run."""
        now = self.monotonic()
        woken = self._woken.is_set()
        self._woken.clear()
        if woken or self._last_schedules is None or now - self._last_schedules >= self.schedule_seconds:
            self._last_schedules = now
            run_schedules(self.ctx.svc)
        advance_pending(self.ctx)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # e.g. the database is briefly unavailable: try again on the next pass
                log.exception("workflow pass failed")
            self._woken.wait(self.poll_seconds)

    def stop(self, timeout: float = 30.0) -> None:
        if self.on_stop is not None:
            self.on_stop()
        self._stop.set()
        self._woken.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


def start_runner(svc: Services, serving: Serving, settings: Settings) -> WorkflowRunner | None:
    """For the server's start: resume the runs a previous server left RUNNING (core.runs.recover_runs),
    start the runner and wake it on every parameter change. None when ``workflow_enabled`` is off (runs
    then wait in QUEUED)."""
    if not settings.workflow_enabled:
        return None
    recover_runs(svc)
    timeout = timedelta(minutes=settings.workflow_step_timeout_minutes)
    runner = WorkflowRunner(RunContext(svc, serving, timeout), poll_seconds=settings.workflow_poll_seconds)
    unsubscribe = svc.bus.subscribe(runner.wake, [EventType.PARAMETER_CHANGED])
    runner.on_stop = unsubscribe
    return runner.start()
