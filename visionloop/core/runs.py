"""Workflow runs: persisted executions of a small state machine, like a Step Functions execution history.

Records
    Run       one execution for a project: ``kind`` (a RunKind the composition root registers:
              ``training_check`` and ``rollback``, see core.retraining and core.deployments), ``status``
              QUEUED → RUNNING → SUCCEEDED | FAILED, what started it (``trigger``: schedule, parameter_change,
              manual, api), ``current_step``, ``outcome`` once ended (e.g. skipped, deployed, rejected,
              rolled_back, failed) with a ``reason``, the ``error`` that failed it, ``input`` (what it was
              asked) and ``output`` (the state it carries: every step's output merged in), timestamps and
              ``resumed`` (how often a server start took it up again).
    RunStep   one step of a run, in order: ``name``, ``status`` RUNNING → SUCCEEDED | FAILED, ``input``
              (the run's state when the step began), ``output`` (while RUNNING: the step's own progress,
              e.g. the training job it waits for), ``error``, ``started_at`` / ``ended_at``.

How a run executes
    A RunKind maps step names to step functions ``fn(ctx, run, state) -> Wait | Next``. advance_run
    calls the current step: ``Wait(state)`` saves the step's progress and returns (the step is called
    again on the next pass, so a step polls what it waits for: a training job, a model starting);
    ``Next(output, next=…)`` ends the step, merges its output into the run's state and moves on to the
    ``next`` step, or ends the run with ``outcome`` when ``next`` is None. A step that raises fails
    itself and the run (RunFailed carries an outcome; any VisionloopError its message). A step waiting
    longer than ``RunContext.step_timeout`` fails. Every transition is one database write, so a run
    read back after a crash is at a step boundary or inside one step whose saved progress tells it
    where it was: recover_runs (at server start) resumes RUNNING runs from there, and fails those
    resumed too often.

    Runs of one project execute one at a time, oldest first (a rollback requested during a training
    check waits for it). The server's workflow runner (visionloop.workflows.runner) calls
    advance_pending on its own thread; the CLI and the API only queue runs.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from visionloop.core.projects import get_project
from visionloop.core.records.runs import ACTIVE, Run, RunStatus, RunStep, StepStatus
from visionloop.core.runkinds import Next, RunContext, RunFailed, Wait, run_kind
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, NotFound, VisionloopError

log = logging.getLogger("visionloop.runs")

MAX_RESUMES = 3  # a run interrupted by this many server starts is failed rather than resumed again
MAX_LIST = 500
RUNNERS = "workflow-runners"  # the repo.present topic of the workflow runners


# --- the state machine ---------------------------------------------------------------------------------


# --- use cases -----------------------------------------------------------------------------------------


def get_run(svc: Services, project_name: str, run_id: int) -> Run:
    """The project's run ``run_id`` (NotFound if it is another project's)."""
    project = get_project(svc, project_name)
    run = svc.repo.get_run(run_id)
    if run.project_id != project.id:
        raise NotFound(f"run {run_id} does not exist in project {project_name!r}")
    return run


def reload_run(svc: Services, run: Run) -> Run:
    """``run`` as it is now (for a caller that waits for a queued run to end)."""
    return svc.repo.get_run(run.id)


def list_runs(
    svc: Services,
    project_name: str,
    *,
    status: RunStatus | str | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Run]:
    """The project's runs, newest first."""
    project = get_project(svc, project_name)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit must be an integer between 1 and {MAX_LIST}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput("offset must be a non-negative integer")
    wanted = None
    if status:
        try:
            wanted = RunStatus(str(status).upper())
        except ValueError:
            known = ", ".join(s.value for s in RunStatus)
            raise InvalidInput(f"unknown run status {status!r}: use one of {known}") from None
    if kind:
        run_kind(kind)
    return svc.repo.list_runs(project.id, status=wanted, kind=kind or None, offset=offset, limit=limit)


def run_steps(svc: Services, run: Run) -> list[RunStep]:
    return svc.repo.list_steps(run.id)


def recover_runs(svc: Services) -> list[Run]:
    """At server start: RUNNING runs were interrupted; each is resumed from its last completed step (its
    current step runs again from its saved progress), or failed after MAX_RESUMES interruptions.
    Returns the runs it changed. Call it before the runner starts and only while no other server's
    runner is at work on the database (the runner calls it as repo.present's ``first``): that runner
    is advancing the RUNNING runs, which were then not interrupted."""
    changed = []
    now = svc.clock.now()
    for run in svc.repo.active_runs(None):
        if run.status is not RunStatus.RUNNING:
            continue
        if run.resumed >= MAX_RESUMES:
            message = f"interrupted by {run.resumed + 1} server restarts; not resumed again"
            changed.append(_fail(svc, run, message, "failed", now))
            continue
        log.info("resuming workflow run %d (%s, step %s)", run.id, run.kind, run.current_step)
        output = {**run.output, "resumed_at": [*run.output.get("resumed_at", []), now.isoformat()]}
        changed.append(svc.repo.update_run(run.id, resumed=run.resumed + 1, output=output))
    return changed


def runner_present(svc: Services) -> AbstractContextManager[bool]:
    """Show a workflow runner present to the other servers on the database for the block; the first one
    (none other present) resumes the runs the last ones left (recover_runs) before it, while the others
    that start meanwhile wait. Yields whether it was the first."""
    return svc.repo.present(RUNNERS, lambda: recover_runs(svc))


def advance_pending(ctx: RunContext) -> list[Run]:
    """One pass of the runner: advance the oldest active run of every project. Returns those runs. A run
    another server on the same database is advancing right now (repo.run_held) is left to it."""
    seen: set[int] = set()
    advanced = []
    for run in ctx.svc.repo.active_runs(None):
        if run.project_id in seen:
            continue
        seen.add(run.project_id)
        try:
            with ctx.svc.repo.run_held(run.id) as mine:
                if not mine:  # another server on this database is advancing it right now
                    continue
                run = ctx.svc.repo.get_run(run.id)  # as that server may have left it
                if run.status in ACTIVE:
                    advanced.append(advance_run(ctx, run))
        except Exception:  # a broken run must not stop the others; it is retried on the next pass
            log.exception("workflow run %d could not be advanced", run.id)
    return advanced


def advance_run(ctx: RunContext, run: Run) -> Run:
    """Run ``run``'s steps until one waits or the run ends; returns the run as stored."""
    svc = ctx.svc
    kind = run_kind(run.kind)
    if run.status is RunStatus.QUEUED:
        started = svc.repo.transition_run(
            run.id,
            [RunStatus.QUEUED],
            status=RunStatus.RUNNING,
            started_at=svc.clock.now(),
            current_step=kind.first,
        )
        if started is None:
            return svc.repo.get_run(run.id)
        run = started
    while run.status is RunStatus.RUNNING:
        name = run.current_step or kind.first
        fn = kind.steps.get(name)
        if fn is None:
            return _fail(
                svc, run, f"unknown step {name!r} for run kind {run.kind!r}", "failed", svc.clock.now()
            )
        step = _current_step(svc, run, name)
        state = dict(step.output)
        try:
            result = fn(ctx, run, state)
        except VisionloopError as e:
            outcome = e.outcome if isinstance(e, RunFailed) else "failed"
            return _fail_step(svc, run, step, e.message, outcome)
        except Exception as e:
            log.exception("step %s of workflow run %d failed", name, run.id)
            return _fail_step(svc, run, step, f"internal error: {type(e).__name__}: {e}", "failed")
        if isinstance(result, Wait):
            return _wait(ctx, run, step, dict(result.state))
        run = _complete_step(svc, run, step, result)
    return run


def _current_step(svc: Services, run: Run, name: str) -> RunStep:
    steps = svc.repo.list_steps(run.id)
    if steps and steps[-1].status is StepStatus.RUNNING and steps[-1].name == name:
        return steps[-1]
    return svc.repo.add_step(run.id, name, run.output, svc.clock.now())


def _wait(ctx: RunContext, run: Run, step: RunStep, state: dict[str, Any]) -> Run:
    svc = ctx.svc
    now = svc.clock.now()
    if now - step.started_at > ctx.step_timeout:
        minutes = ctx.step_timeout.total_seconds() / 60
        message = f"did not finish within {minutes:g} minutes ({state.get('waiting', 'waiting')})"
        return _fail_step(svc, run, step, message, "failed")
    if state != step.output:
        svc.repo.update_step(step.id, output=state)
    return run


def _complete_step(svc: Services, run: Run, step: RunStep, result: Next) -> Run:
    now = svc.clock.now()
    output = dict(result.output)
    merged = {**run.output, **output}
    changes: dict[str, Any] = {"output": merged, "current_step": result.next}
    if result.next is None:
        changes.update(
            status=RunStatus.SUCCEEDED, outcome=result.outcome or "done", reason=result.reason, ended_at=now
        )
    svc.repo.finish_step(step.id, StepStatus.SUCCEEDED, output, None, now, run.id, changes)
    return svc.repo.get_run(run.id)


def _fail_step(svc: Services, run: Run, step: RunStep, message: str, outcome: str) -> Run:
    now = svc.clock.now()
    changes: dict[str, Any] = {
        "status": RunStatus.FAILED,
        "outcome": outcome,
        "error": f"step {step.name}: {message}",
        "ended_at": now,
    }
    svc.repo.finish_step(step.id, StepStatus.FAILED, step.output, message, now, run.id, changes)
    log.warning("workflow run %d (%s) failed at step %s: %s", run.id, run.kind, step.name, message)
    return svc.repo.get_run(run.id)


def _fail(svc: Services, run: Run, message: str, outcome: str, now: datetime) -> Run:
    steps = svc.repo.list_steps(run.id)
    if steps and steps[-1].status is StepStatus.RUNNING:
        return _fail_step(svc, run, steps[-1], message, outcome)
    return svc.repo.update_run(run.id, status=RunStatus.FAILED, outcome=outcome, error=message, ended_at=now)


__all__ = [
    "advance_pending",
    "advance_run",
    "get_run",
    "list_runs",
    "recover_runs",
    "reload_run",
    "run_steps",
    "runner_present",
]
