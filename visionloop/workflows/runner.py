"""The workflow runner: one thread of the server process that fires the schedules and advances the runs.

Runs execute here rather than in the worker processes because their deploy steps start and stop model
versions, and the inference units belong to the server (core.serving). The heavy work is not done on
this thread: training and the champion/challenger comparison are jobs for the worker processes
(workflows.worker), which a step queues and then polls. So a pass is quick: it reads the schedules,
fires what is due, and moves every active run on by the steps that can finish now.

The server's BackgroundGroup (bootstrap.build_server) starts the runner built by build_runner: its start
resumes the runs a previous server left RUNNING (core.runs.recover_runs) and subscribes ``wake`` to
``parameter_changed`` events so that a parameter change is acted on at once rather than at the next
pass. The CLI and the API only queue runs; a run queued while no server runs waits for one.

Several servers on one database (docs/scale.md): every runner advances every active run, one server at
a time per run (repo.run_held). A runner is shown present to the others for as long as it runs
(core.runs.runner_present), and a starting runner resumes runs only when no other runner is present:
while one is, the RUNNING runs were not interrupted (it is advancing them), so a server restarted next
to it neither counts them as resumed nor, after MAX_RESUMES such restarts, fails them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta
from typing import Self

from visionloop.core.events import Event, EventType
from visionloop.core.runkinds import RunContext
from visionloop.core.runs import advance_pending, runner_present
from visionloop.core.schedules import run_schedules
from visionloop.core.services import Services
from visionloop.core.serving import Serving
from visionloop.settings import Settings
from visionloop.workflows.background import Ticker

log = logging.getLogger("visionloop.workflow")


class WorkflowRunner:
    """Every ``poll_seconds`` (or at once when woken): advance the active runs; every
    ``schedule_seconds`` (or when woken): a pass over the schedules. A Background component: ``start``
    (with ``recover``: show this runner present on the database and, when no other runner is, first
    resume the runs a previous server left RUNNING; then follow parameter changes), ``flush`` (the pass
    in progress), ``stop``."""

    def __init__(
        self,
        ctx: RunContext,
        poll_seconds: float = 1.0,
        schedule_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        recover: bool = False,
    ) -> None:
        self.ctx = ctx
        self.recover = recover
        self.poll_seconds, self.schedule_seconds = poll_seconds, schedule_seconds
        self.monotonic = monotonic
        self._last_schedules: float | None = None
        self._woken = threading.Event()
        self._ticker = Ticker("visionloop-workflow", self._pass, poll_seconds)
        self._unsubscribe: Callable[[], None] | None = None
        self._presence = ExitStack()

    def start(self) -> Self:
        if self._unsubscribe is None:
            if self.recover:
                self._presence.enter_context(runner_present(self.ctx.svc))
            self._unsubscribe = self.ctx.svc.bus.subscribe(self.wake, [EventType.PARAMETER_CHANGED])
        self._ticker.start()
        return self

    def wake(self, _: Event | None = None) -> None:
        """Run a pass now (also a bus subscriber: ``svc.bus.subscribe(runner.wake, [PARAMETER_CHANGED])``)."""
        self._woken.set()
        self._ticker.wake()

    def tick(self) -> None:
        """One pass: the schedules when due (or woken), then every project's active run."""
        now = self.monotonic()
        woken = self._woken.is_set()
        self._woken.clear()
        if woken or self._last_schedules is None or now - self._last_schedules >= self.schedule_seconds:
            self._last_schedules = now
            run_schedules(self.ctx.svc)
        advance_pending(self.ctx)

    def _pass(self) -> None:
        try:
            self.tick()
        except Exception:  # e.g. the database is briefly unavailable: try again on the next pass
            log.exception("workflow pass failed")

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait for the pass in progress."""
        return self._ticker.flush(timeout)

    def stop(self, timeout: float | None = 30.0) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._ticker.stop(timeout)
        self._presence.close()


def build_runner(svc: Services, serving: Serving, settings: Settings) -> WorkflowRunner | None:
    """The server's runner (not started; its start resumes the runs a previous server left RUNNING and
    wakes it on every parameter change). None when ``workflow_enabled`` is off (runs then wait in
    QUEUED)."""
    if not settings.workflow_enabled:
        return None
    timeout = timedelta(minutes=settings.workflow_step_timeout_minutes)
    ctx = RunContext(svc, serving, timeout)
    return WorkflowRunner(ctx, poll_seconds=settings.workflow_poll_seconds, recover=True)
