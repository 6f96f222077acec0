"""The training check (run kind ``training_check``): when enough new labelled images arrived, train a new
version, evaluate it, compare it with the serving version, and deploy it or reject it.

Steps (core.runs executes them; each is recorded with its input, output, times and error)

    check          the project's parameters, read once for the whole run; with automatic training off,
                   or fewer new labelled TRAIN images than ``min_untrained_images`` since the last
                   successful training, the run ends ``skipped``. "New" means: labelled images of TRAIN
                   that are in neither dataset snapshot of the newest version trained successfully
                   (deployed or not), so a rejected version is not trained again on the same images.
    train          a normal training job (core.training.request_training: snapshot, version, job),
                   run by a worker process; the step waits for it. training_started, then
                   training_completed or training_failed are published. A job cut short by a server
                   restart is requested once more; a second failure fails the run.
    evaluate       the version's F1 on its TEST snapshot ≥ ``min_f1``, else → reject
    compare        the champion/challenger gate (core.gate), as a ``compare`` job against the serving
                   version; no serving version: passes. A drop of more than ``max_f1_drop`` in any
                   label's F1 → reject
    reject         the version is marked rejected (a note in its params and status message; it stays
                   TRAINING_COMPLETED), version_rejected is published, the run ends ``rejected``; the
                   serving version keeps serving
    start, switch, stop_previous
                   core.deployments: start with ``min_inference_units``, wait for RUNNING, point the
                   project's serving version at it (version_deployed), stop the previous one; the run
                   ends ``deployed``
"""

from __future__ import annotations

import json
import logging
from typing import Any

from visionloop.core import events, parameters
from visionloop.core.deployments import DEPLOY_STEPS, mark_rejected, serving_version
from visionloop.core.entities import DatasetType, JobStatus, ModelVersion, Project
from visionloop.core.gate import queue_compare, rejection_reason
from visionloop.core.ports import EntryFilter
from visionloop.core.projects import get_project
from visionloop.core.records.events import EventType
from visionloop.core.records.runs import Run, Trigger
from visionloop.core.runkinds import (
    Next,
    RunContext,
    RunFailed,
    RunKind,
    StepResult,
    Wait,
    active_run,
    queue_run,
)
from visionloop.core.services import Services
from visionloop.core.training import SNAPSHOTS_BUCKET, TrainingOptions, request_training
from visionloop.errors import Conflict, NotFound

log = logging.getLogger("visionloop.retraining")

KIND = "training_check"
INTERRUPTED_PREFIX = "interrupted:"  # core.training/workflows.worker mark a job cut short like this
MAX_JOB_ATTEMPTS = 2  # a job interrupted by a restart is queued once more


def last_trained_version(svc: Services, project: Project) -> ModelVersion | None:
    """The newest version whose training succeeded (it has a model), deployed or not."""
    trained = [v for v in svc.repo.list_versions(project.id) if v.artifact_key is not None]
    return trained[-1] if trained else None


def untrained_images(svc: Services, project: Project) -> tuple[int, ModelVersion | None]:
    """(labelled TRAIN images in neither snapshot of the last successful training, that version)."""
    last = last_trained_version(svc, project)
    train = svc.repo.find_dataset(project.id, DatasetType.TRAIN)
    if train is None:
        return 0, last
    labelled = {e.content_hash for e in svc.repo.list_entries(train.id, EntryFilter(labeled=True))}
    if last is None:
        return len(labelled), None
    try:
        snap = json.loads(svc.store.get(SNAPSHOTS_BUCKET, f"{last.snapshot_id}.json"))
    except NotFound:  # the snapshot is gone: count every image as new
        return len(labelled), last
    used = {r["hash"] for r in snap.get("train", [])} | {r["hash"] for r in snap.get("test", [])}
    return len(labelled - used), last


def request_check(
    svc: Services, project_name: str, trigger: Trigger | str = Trigger.MANUAL, **inputs: Any
) -> Run:
    """Queue a training check; Conflict when one is already queued or running for the project."""
    project = get_project(svc, project_name)
    current = active_run(svc, project.id, KIND)
    if current is not None:
        raise Conflict(
            f"training check run {current.id} of project {project.name!r} is {current.status.value}; "
            "wait for it to end",
            run_id=current.id,
        )
    return queue_run(svc, project.name, KIND, trigger, inputs)


def scheduled_check(svc: Services, project_name: str, trigger: str) -> str:
    """What the schedule calls: queue a check unless one is active; a line saying what happened."""
    try:
        run = request_check(svc, project_name, trigger)
    except Conflict as e:
        return f"not queued: {e.message}"
    return f"run {run.id} queued"


# --- steps ---------------------------------------------------------------------------------------------


def step_check(ctx: RunContext, run: Run, state: dict[str, Any]) -> StepResult:
    svc = ctx.svc
    project = svc.repo.get_project_by_id(run.project_id)
    params = parameters.get_parameters(svc, project)
    new, last = untrained_images(svc, project)
    out = {
        "auto_training_enabled": params.auto_training_enabled,
        "new_images": new,
        "min_untrained_images": params.min_untrained_images,
        "min_f1": params.min_f1,
        "max_f1_drop": params.max_f1_drop,
        "min_inference_units": params.min_inference_units,
        "last_trained_version": last.name if last else None,
    }
    if not params.auto_training_enabled:
        return Next(out, outcome="skipped", reason="automatic training is off (auto_training_enabled)")
    if new < params.min_untrained_images:
        since = f" since {last.name}" if last else ""
        reason = f"{new} new labelled images{since}; {params.min_untrained_images} needed"
        return Next(out, outcome="skipped", reason=reason)
    return Next(out, next="train")


def step_train(ctx: RunContext, run: Run, state: dict[str, Any]) -> StepResult:
    svc = ctx.svc
    project = svc.repo.get_project_by_id(run.project_id)
    if "job_id" not in state:
        return _request_training(svc, project, run, attempt=1)
    job = svc.repo.get_job(int(state["job_id"]))
    version = svc.repo.get_version_by_id(int(state["version_id"]))
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        progress = f"{100 * job.progress:.0f}%"
        return Wait(
            {**state, "waiting": f"training {version.name}: {job.status.value} {job.stage} {progress}"}
        )
    if job.status is JobStatus.SUCCEEDED and version.artifact_key is not None:
        payload = {"version": version.name, "f1": version.f1, "run_id": run.id}
        events.publish(svc, project, EventType.TRAINING_COMPLETED, payload)
        parameters.set_state(
            svc, project, {"training.last_version": version.name, "training.last_run": run.id}
        )
        out = {
            "version": version.name,
            "version_id": version.id,
            "job_id": job.id,
            "attempt": int(state.get("attempt", 1)),  # 2: the first training was cut short by a restart
            "f1": version.f1,
            "training_seconds": version.training_seconds,
            "deploy_reason": KIND,
        }
        return Next(out, next="evaluate")
    message = job.message or version.status_message
    if message.startswith(INTERRUPTED_PREFIX) and int(state.get("attempt", 1)) < MAX_JOB_ATTEMPTS:
        log.info("run %d: training of %s was interrupted; training again", run.id, version.name)
        return _request_training(svc, project, run, attempt=int(state.get("attempt", 1)) + 1)
    payload = {"version": version.name, "error": message, "run_id": run.id}
    events.publish(svc, project, EventType.TRAINING_FAILED, payload)
    raise RunFailed(f"training {version.name} failed: {message}", outcome="training_failed")


def _request_training(svc: Services, project: Project, run: Run, attempt: int) -> StepResult:
    version, job = request_training(svc, project.name, TrainingOptions())
    payload = {"version": version.name, "run_id": run.id, "trigger": run.trigger}
    events.publish(svc, project, EventType.TRAINING_STARTED, payload)
    state = {"version": version.name, "version_id": version.id, "job_id": job.id, "attempt": attempt}
    return Wait({**state, "waiting": f"training {version.name}: queued"})


def step_evaluate(ctx: RunContext, run: Run, state: dict[str, Any]) -> StepResult:
    version = ctx.svc.repo.get_version_by_id(int(run.output["version_id"]))
    f1, least = version.f1, float(run.output["min_f1"])
    passed = f1 is not None and f1 >= least
    out = {"f1": f1, "min_f1": least, "f1_passed": passed}
    if passed:
        return Next(out, next="compare")
    shown = "none" if f1 is None else f"{f1:.3f}"
    return Next({**out, "rejected_because": f"F1 {shown} is below min_f1 {least}"}, next="reject")


def step_compare(ctx: RunContext, run: Run, state: dict[str, Any]) -> StepResult:
    svc = ctx.svc
    challenger = svc.repo.get_version_by_id(int(run.output["version_id"]))
    max_drop = float(run.output["max_f1_drop"])
    if "job_id" not in state:
        champion = serving_version(svc, run.project)
        if champion is None or champion.id == challenger.id or champion.artifact_key is None:
            gate = {"champion": None, "passed": True, "note": "no version serves the project"}
            return Next({"previous": None, "previous_id": None, "gate": gate}, next="start")
        job = queue_compare(svc, champion, challenger, max_drop)
        state = {"champion": champion.name, "champion_id": champion.id, "job_id": job.id, "attempt": 1}
        return Wait({**state, "waiting": f"comparing {challenger.name} with {champion.name}"})
    job = svc.repo.get_job(int(state["job_id"]))
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return Wait(state)
    if job.status is JobStatus.FAILED:
        if job.message.startswith(INTERRUPTED_PREFIX) and int(state["attempt"]) < MAX_JOB_ATTEMPTS:
            champion = svc.repo.get_version_by_id(int(state["champion_id"]))
            again = queue_compare(svc, champion, challenger, max_drop)
            return Wait({**state, "job_id": again.id, "attempt": int(state["attempt"]) + 1})
        raise RunFailed(f"the comparison with {state['champion']} failed: {job.message}")
    result = dict(job.result or {})
    out = {"previous": state["champion"], "previous_id": state["champion_id"], "gate": result}
    if result.get("passed"):
        return Next(out, next="start")
    return Next({**out, "rejected_because": rejection_reason(result, state["champion"])}, next="reject")


def step_reject(ctx: RunContext, run: Run, state: dict[str, Any]) -> StepResult:
    version = ctx.svc.repo.get_version_by_id(int(run.output["version_id"]))
    reason = str(run.output.get("rejected_because", "rejected"))
    mark_rejected(ctx.svc, version, reason, run)
    serving = serving_version(ctx.svc, run.project)
    kept = f"; {serving.name} keeps serving" if serving is not None else ""
    return Next({"rejected": version.name}, outcome="rejected", reason=f"{version.name}: {reason}{kept}")


TRAINING_CHECK = RunKind(
    KIND,
    first="check",
    steps={
        "check": step_check,
        "train": step_train,
        "evaluate": step_evaluate,
        "compare": step_compare,
        "reject": step_reject,
        **DEPLOY_STEPS,
    },
    description="train, evaluate and deploy a new version when enough new labelled images arrived",
)

__all__ = [
    "KIND",
    "TRAINING_CHECK",
    "last_trained_version",
    "request_check",
    "scheduled_check",
    "untrained_images",
]
