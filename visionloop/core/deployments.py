"""Which version serves a project, switching it without failing a request, and rolling back.

Records
    Deployment   one entry of a project's deployment log: the version that became the project's serving
                 version, the one it replaced (``previous``), why (``reason``: training_check, rollback)
                 and the run that did it. The newest entry is the project's **serving version** pointer.

The serving version
    serving_version(svc, project) is the version of the newest deployment, or — for a project nobody
    deployed through a workflow yet — its newest RUNNING version. Detections addressed to the project
    (``POST /api/v1/projects/{project}/detect``, the workflow's inbox) go to it through
    detect_project / submit_detect_project; DetectCustomLabels still names a version explicitly.

The switch (steps ``start`` → ``switch`` → ``stop_previous`` of a run)
    The new version is started and waited for until RUNNING, then the pointer moves to it, and only then
    is the previous version stopped, so a version serves at every moment. A detection that was sent to
    the previous version just before it stopped fails with NotReady inside detect_project, which then
    reads the pointer again and sends the image to the new version: no request fails during a switch.

Rollback (run kind ``rollback``): request_rollback(svc, project, to_version=None) queues a run whose
``select`` step picks the version deployed before the current one, or the one the current one replaced
(or ``to_version``), starts it if needed (with its recorded inference units), switches to it and stops
the current one; the log records it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

from visionloop.core import events
from visionloop.core.entities import ModelVersion, Prediction, Project, VersionStatus
from visionloop.core.projects import get_project
from visionloop.core.records.deployments import (
    Deployment,
    ProjectDetection,
)
from visionloop.core.records.events import EventType
from visionloop.core.records.runs import Run, Trigger
from visionloop.core.runkinds import (
    Next,
    RunContext,
    RunFailed,
    RunKind,
    StepResult,
    Wait,
    queue_run,
)
from visionloop.core.services import Services
from visionloop.core.serving import (
    STARTABLE,
    STOPPABLE,
    Serving,
    StoredImage,
    start_version,
    stop_version,
    submit_detect,
)
from visionloop.errors import Conflict, NotFound, NotReady

log = logging.getLogger("visionloop.deployments")

MAX_SWITCH_RETRIES = 2  # a detection follows the pointer this many times when its version stopped


# --- the pointer ---------------------------------------------------------------------------------------


def deployed_version(svc: Services, project: Project) -> ModelVersion | None:
    """The version of the project's newest deployment, if it still exists."""
    for d in svc.repo.list_deployments(project.id, limit=1):
        if d.version_id is not None:
            try:
                return svc.repo.get_version_by_id(d.version_id)
            except NotFound:
                return None
    return None


def serving_version(svc: Services, project_name: str | Project) -> ModelVersion | None:
    """The project's serving version: the deployed one, else its newest RUNNING version, else None."""
    project = project_name if isinstance(project_name, Project) else get_project(svc, project_name)
    deployed = deployed_version(svc, project)
    if deployed is not None:
        return deployed
    running = [v for v in svc.repo.list_versions(project.id) if v.status is VersionStatus.RUNNING]
    return running[-1] if running else None


def deployments(svc: Services, project_name: str, limit: int | None = None) -> list[Deployment]:
    """The project's deployment log, newest first."""
    return svc.repo.list_deployments(get_project(svc, project_name).id, limit=limit)


def _target(svc: Services, project_name: str) -> ModelVersion:
    version = serving_version(svc, project_name)
    if version is None:
        raise NotReady(
            f"project {project_name!r} has no serving version: deploy one with a training check, "
            "or start a version",
            status="NO_SERVING_VERSION",
        )
    return version


def submit_detect_project(
    svc: Services,
    serving: Serving,
    project_name: str,
    image: bytes | StoredImage,
    min_confidence: float | None = None,
    max_results: int | None = None,
) -> tuple[ModelVersion, Future[list[Prediction]]]:
    """Send the image to the project's serving version (core.serving.submit_detect); returns that
    version and the future of its labels. A caller whose future fails with NotReady should call
    retry_target to follow a switch (detect_project does)."""
    version = _target(svc, project_name)
    try:
        return version, submit_detect(
            svc, serving, project_name, version.name, image, min_confidence, max_results
        )
    except NotReady:
        again = retry_target(svc, project_name, version)
        if again is None:
            raise
        return again, submit_detect(
            svc, serving, project_name, again.name, image, min_confidence, max_results
        )


def retry_target(svc: Services, project_name: str, failed: ModelVersion) -> ModelVersion | None:
    """The version to send a detection to after ``failed`` answered NotReady: the serving version if
    the pointer moved away from ``failed`` meanwhile, else None (the NotReady stands)."""
    now = serving_version(svc, project_name)
    if now is None or now.id == failed.id:
        return None
    return now


def detect_project(
    svc: Services,
    serving: Serving,
    project_name: str,
    image: bytes | StoredImage,
    min_confidence: float | None = None,
    max_results: int | None = None,
) -> ProjectDetection:
    """DetectCustomLabels on the project's serving version; follows a switch that happens meanwhile."""
    version, future = submit_detect_project(svc, serving, project_name, image, min_confidence, max_results)
    for attempt in range(MAX_SWITCH_RETRIES + 1):
        try:
            return ProjectDetection(version.name, future.result())
        except NotReady:
            again = retry_target(svc, project_name, version)
            if again is None or attempt == MAX_SWITCH_RETRIES:
                raise
            version = again
            future = submit_detect(
                svc, serving, project_name, version.name, image, min_confidence, max_results
            )
    raise AssertionError("unreachable")


# --- steps shared by the training check and rollback ---------------------------------------------------
#
# They read from the run's state: ``version`` / ``version_id`` (to deploy), ``previous`` / ``previous_id``
# (serving before; None when nothing served), ``min_inference_units`` and ``deploy_reason``.


def step_start(ctx: RunContext, run: Run, state: dict[str, Any]) -> StepResult:
    """Start the new version (unless it is RUNNING already) and wait until it is RUNNING."""
    svc = ctx.svc
    version = svc.repo.get_version_by_id(int(run.output["version_id"]))
    attempts = int(state.get("attempts", 0))
    if version.status is VersionStatus.RUNNING:
        done = {"load_seconds": version.load_seconds, "inference_units": version.inference_units}
        return Next(done, next="switch")
    if version.status is VersionStatus.STARTING:
        return Wait({**state, "waiting": f"version {version.name} is STARTING"})
    if version.status is VersionStatus.STOPPING:  # e.g. a rollback right after a switch: start it again
        return Wait({**state, "waiting": f"version {version.name} is STOPPING; it is started once STOPPED"})
    problem = None
    if version.status is VersionStatus.FAILED and attempts >= 1:
        problem = f"version {version.name} could not be started: {version.status_message}"
    elif version.status not in STARTABLE or attempts >= 2:
        problem = f"version {version.name} is {version.status.value} and cannot be started"
    if problem is not None:
        if run.output.get("deploy_reason") == "training_check":
            mark_rejected(svc, version, problem, run)
        raise RunFailed(problem)
    units = int(run.output.get("min_inference_units") or version.min_inference_units or 1)
    start_version(
        svc, ctx.serving, run.project, version.name, units, max(units, version.max_inference_units or units)
    )
    return Wait(
        {"attempts": attempts + 1, "min_inference_units": units, "waiting": f"starting {version.name}"}
    )


def step_switch(ctx: RunContext, run: Run, state: dict[str, Any]) -> StepResult:
    """Point the project's serving version at the new version (once), and publish the event."""
    svc = ctx.svc
    project = svc.repo.get_project_by_id(run.project_id)
    version = svc.repo.get_version_by_id(int(run.output["version_id"]))
    if version.status is not VersionStatus.RUNNING:
        raise RunFailed(f"version {version.name} stopped before the switch ({version.status.value})")
    reason = str(run.output.get("deploy_reason", run.kind))
    previous = run.output.get("previous")
    latest = svc.repo.list_deployments(project.id, limit=1)
    if not (latest and latest[0].run_id == run.id and latest[0].version_id == version.id):
        svc.repo.add_deployment(
            project.id, version.id, version.name, previous, run.id, reason, svc.clock.now()
        )
        if reason == "rollback":
            payload = {"version": version.name, "from_version": previous, "run_id": run.id}
            events.publish(svc, project, EventType.VERSION_ROLLED_BACK, payload)
        else:
            payload = {"version": version.name, "previous": previous, "f1": version.f1, "run_id": run.id}
            events.publish(svc, project, EventType.VERSION_DEPLOYED, payload)
        log.info("%s now serves %s (was %s; run %d)", project.name, version.name, previous, run.id)
    return Next({"serving": version.name, "switched_at": svc.clock.now().isoformat()}, next="stop_previous")


def step_stop_previous(ctx: RunContext, run: Run, state: dict[str, Any]) -> StepResult:
    """Stop the version that served before (if it still runs and is not the new one)."""
    svc = ctx.svc
    outcome = "rolled_back" if run.output.get("deploy_reason") == "rollback" else "deployed"
    reason = f"{run.output['version']} serves project {run.project}"
    prev_id = run.output.get("previous_id")
    if prev_id is None or prev_id == run.output.get("version_id"):
        return Next({"stopped": None}, outcome=outcome, reason=reason)
    try:
        previous = svc.repo.get_version_by_id(int(prev_id))
    except NotFound:
        return Next({"stopped": None}, outcome=outcome, reason=reason)
    if previous.status in STOPPABLE:
        with contextlib.suppress(Conflict):  # stopped meanwhile
            stop_version(svc, ctx.serving, run.project, previous.name)
        return Next({"stopped": previous.name}, outcome=outcome, reason=f"{reason}; {previous.name} stopped")
    return Next({"stopped": None}, outcome=outcome, reason=reason)


def mark_rejected(svc: Services, version: ModelVersion, reason: str, run: Run) -> ModelVersion:
    """Note on the version (it stays TRAINING_COMPLETED, or whatever it is) that a run did not deploy
    it, and why; publish version_rejected. The previous version keeps serving."""
    note = {"rejected": True, "reason": reason, "run_id": run.id, "at": svc.clock.now().isoformat()}
    changes: dict[str, Any] = {"params": {**version.params, "workflow": note}}
    if version.status is VersionStatus.TRAINING_COMPLETED:
        changes["status_message"] = f"Not deployed by run {run.id}: {reason}"
    marked = svc.repo.update_version(version.id, **changes)
    payload = {"version": version.name, "reason": reason, "f1": version.f1, "run_id": run.id}
    events.publish(svc, run.project, EventType.VERSION_REJECTED, payload)
    return marked


def is_rejected(version: ModelVersion) -> bool:
    note = version.params.get("workflow")
    return isinstance(note, dict) and bool(note.get("rejected"))


# --- rollback ------------------------------------------------------------------------------------------


def rollback_target(
    svc: Services, project: Project, to_version: str | None = None
) -> tuple[ModelVersion, ModelVersion | None]:
    """(the version to go back to, the one serving now). Without ``to_version``: the newest version in the
    deployment log, as deployed or as replaced, other than the current one and with a trained model. The
    "replaced" side counts too, so a version that was started by hand and then replaced by a deployment
    ("v2 replaced v1" in the log) is the one to go back to, as the log says. Conflict when there is none."""
    current = serving_version(svc, project)
    if to_version is not None:
        target = svc.repo.get_version(project.id, to_version)
        if target.artifact_key is None:
            raise Conflict(f"model version {to_version!r} has no trained model to deploy")
        if current is not None and target.id == current.id:
            raise Conflict(f"model version {to_version!r} already serves project {project.name!r}")
        return target, current
    for candidate in _logged_versions(svc, project):
        if (current is None or candidate.id != current.id) and candidate.artifact_key is not None:
            return candidate, current
    raise Conflict(f"project {project.name!r} has no earlier deployed version to roll back to")


def default_rollback(svc: Services, project: Project) -> ModelVersion | None:
    """The version a rollback without a target would go back to, or None when there is none (for forms
    that name it before anyone asks)."""
    try:
        return rollback_target(svc, project)[0]
    except Conflict:
        return None


def _logged_versions(svc: Services, project: Project) -> Iterator[ModelVersion]:
    """The versions the deployment log names, newest entry first: each entry's deployed version, then the
    one it replaced; versions deleted since are left out."""
    for d in svc.repo.list_deployments(project.id):
        for found in (_version_by_id(svc, d.version_id), _version_by_name(svc, project, d.previous)):
            if found is not None:
                yield found


def _version_by_id(svc: Services, version_id: int | None) -> ModelVersion | None:
    try:
        return None if version_id is None else svc.repo.get_version_by_id(version_id)
    except NotFound:
        return None


def _version_by_name(svc: Services, project: Project, name: str | None) -> ModelVersion | None:
    try:
        return None if name is None else svc.repo.get_version(project.id, name)
    except NotFound:
        return None


def request_rollback(
    svc: Services, project_name: str, to_version: str | None = None, trigger: Trigger | str = Trigger.MANUAL
) -> Run:
    """Queue a rollback run (checked now, and again when it runs: a run ahead of it may change things)."""
    project = get_project(svc, project_name)
    rollback_target(svc, project, to_version)
    inputs = {"to_version": to_version} if to_version else {}
    return queue_run(svc, project_name, "rollback", trigger, inputs)


def step_select(ctx: RunContext, run: Run, state: dict[str, Any]) -> StepResult:
    svc = ctx.svc
    project = svc.repo.get_project_by_id(run.project_id)
    target, current = rollback_target(svc, project, run.input.get("to_version"))
    return Next(
        {
            "version": target.name,
            "version_id": target.id,
            "previous": current.name if current else None,
            "previous_id": current.id if current else None,
            "min_inference_units": target.min_inference_units or 1,
            "deploy_reason": "rollback",
        },
        next="start",
    )


DEPLOY_STEPS = {"start": step_start, "switch": step_switch, "stop_previous": step_stop_previous}

ROLLBACK = RunKind(
    "rollback",
    first="select",
    steps={"select": step_select, **DEPLOY_STEPS},
    description="switch the project back to the version deployed before the current one",
)


__all__ = [
    "DEPLOY_STEPS",
    "ROLLBACK",
    "Deployment",
    "ProjectDetection",
    "deployed_version",
    "default_rollback",
    "deployments",
    "detect_project",
    "is_rejected",
    "mark_rejected",
    "request_rollback",
    "retry_target",
    "rollback_target",
    "serving_version",
    "submit_detect_project",
]
