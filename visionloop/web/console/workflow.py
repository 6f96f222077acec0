"""The operators' pages of continuous improvement: the project's workflow parameters and its runs.

GET  /console/projects/{p}/workflow/parameters       every parameter with its value, range and meaning;
                                                     the schedules they arm; the history of changes
POST /console/projects/{p}/workflow/parameters       the edited values (validated all together; a
                                                     value someone else changed meanwhile is refused,
                                                     never overwritten)
GET  /console/projects/{p}/workflow/runs[?status=]   run history: training checks and rollbacks, newest
                                                     first, with the deployment log
POST /console/projects/{p}/workflow/runs/check       queue a training check now
POST /console/projects/{p}/workflow/runs/rollback    queue a rollback (to the previous deployed version
                                                     or a chosen one)
GET  /console/projects/{p}/workflow/runs/{id}        one run with every step's input, output and error
                                                     (polled while the run is active)

Over core.parameters, core.schedules, core.runs, core.retraining and core.deployments, as the API and
the CLI. A run queued here has the trigger ``console``; the server's workflow runner executes it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from visionloop.api.errors import status_for
from visionloop.core import deployments, parameters, retraining, runs, schedules
from visionloop.core.accounts import ReviewerSession
from visionloop.core.entities import Project
from visionloop.core.projects import get_project, list_versions
from visionloop.core.records.parameters import PARAMETERS, ParameterSpec
from visionloop.core.records.runs import ACTIVE, RunStatus
from visionloop.core.services import Services
from visionloop.errors import Conflict, InvalidInput, VisionloopError
from visionloop.web.auth import Operator, OperatorForm
from visionloop.web.console import Link, console_router
from visionloop.web.console.parameter_scale import form_scale, form_text, history_text, parse_form
from visionloop.web.console.wording import facts, parameter_title, plain, step_sentence
from visionloop.web.pages import render
from visionloop.web.routing import web

router = console_router()
PROJECT_TABS = (
    Link(
        "Workflow",
        "/console/projects/{project}/workflow/parameters",
        60,
        "/console/projects/{project}/workflow/",
    ),
)
TRIGGER = "console"
HISTORY = 50
RUNS_SHOWN = 50
NOTICES = {
    "saved": "Saved.",
    "unchanged": "Nothing changed: every value was already set.",
}


def workflow_url(project: str, rest: str) -> str:
    return f"/console/projects/{quote(project, safe='')}/workflow/{rest}"


def pretty(value: Any) -> str:
    """A delivery's payload (web.console.channels): the JSON body that was sent, indented."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)


WORDS: dict[str, Any] = {
    "param_title": parameter_title,
    "plain": plain,
    "form_scale": form_scale,  # scores in percent on the form (parameter_scale.py)
    "history_text": history_text,
}  # what every workflow page may write with


# --- parameters -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One parameter as the form shows it."""

    spec: ParameterSpec
    value: bool | int | float  # stored or default
    shown: str  # what the input holds: the value, or what was typed when the form came back
    was: str  # the value the operator saw (a change to it since is refused, not overwritten)
    error: str = ""

    @property
    def is_bool(self) -> bool:
        return self.spec.type is bool

    @property
    def step(self) -> str:
        return "1" if self.spec.type is int else "any"


def _parameters_page(
    request: Request,
    session: ReviewerSession,
    project: Project,
    *,
    typed: dict[str, str] | None = None,
    was: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    message: str = "",
    notice: str = "",
    confirm: str = "",
) -> Response:
    svc = web(request).services
    current = parameters.get_parameters(svc, project).to_dict()
    typed, was, errors = typed or {}, was or {}, errors or {}
    fields = []
    for spec in PARAMETERS:
        now = form_text(spec, current[spec.key])
        fields.append(
            Field(
                spec,
                current[spec.key],
                typed.get(spec.key, now),
                was.get(spec.key, now),
                errors.get(spec.key, ""),
            )
        )
    return render(
        request,
        "console/parameters.html",
        status=status,
        session=session,
        title=f"Workflow parameters · {project.name}",
        project=project,
        fields=fields,
        history=parameters.parameter_history(svc, project, limit=HISTORY),
        schedules=schedules.list_schedules(svc, project.name),
        message=message,
        notice=notice,
        confirm=confirm,
        section="parameters",
        **WORDS,
    )


@router.get("/projects/{name}/workflow/parameters")
def parameters_page(request: Request, name: str, session: Operator, notice: str = "") -> Response:
    project = get_project(web(request).services, name)
    return _parameters_page(request, session, project, notice=NOTICES.get(notice, ""))


@router.post("/projects/{name}/workflow/parameters")
async def save_parameters(request: Request, name: str, session: OperatorForm) -> Response:
    form = await request.form()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    return await run_in_threadpool(_save, request, session, name, fields)


def _save(request: Request, session: ReviewerSession, name: str, form: dict[str, str]) -> Response:
    """Only the values the operator edited are changed: each field carries the value the form was shown
    with (``was_<key>``), and a key whose stored value is no longer that is refused (409) rather than
    overwritten."""
    svc = web(request).services
    project = get_project(svc, name)
    current = parameters.get_parameters(svc, project).to_dict()
    typed: dict[str, str] = {}
    seen: dict[str, str] = {}
    edited: dict[str, bool | int | float] = {}
    errors: dict[str, str] = {}
    stale: list[str] = []
    for spec in PARAMETERS:
        key = spec.key
        was = form.get(f"was_{key}")
        if was is None:
            continue  # not on the form that was posted
        text = ("true" if key in form else "false") if spec.type is bool else form.get(key, "").strip()
        typed[key], seen[key] = text, was
        if text == was:
            continue
        try:
            value = parse_form(spec, text)
        except InvalidInput as e:
            errors[key] = e.message
            continue
        if form_text(spec, current[key]) != was:
            stale.append(key)
        edited[key] = value
    if errors:
        message = "Nothing was saved: " + "; ".join(map(plain, errors.values())) + "."
        return _parameters_page(
            request, session, project, typed=typed, was=seen, errors=errors, status=400, message=message
        )
    if stale:
        message = (
            f"Nothing was saved: {', '.join(map(parameter_title, stale))} changed since this page was loaded "
            "(by someone else or a run). The form now shows the current values; make your change again."
        )
        return _parameters_page(request, session, project, status=409, message=message)
    if not edited:
        return RedirectResponse(workflow_url(project.name, "parameters?notice=unchanged"), status_code=303)
    if form.get("confirm") != "deploy" and (warning := _deploy_warning(svc, project, current, edited)):
        return _parameters_page(request, session, project, typed=typed, was=seen, confirm=warning)
    try:
        parameters.update_parameters(svc, project, edited, changed_by=session.reviewer)
    except VisionloopError as e:
        return _parameters_page(
            request, session, project, typed=typed, was=seen, status=status_for(e), message=e.message
        )
    return RedirectResponse(workflow_url(project.name, "parameters?notice=saved"), status_code=303)


CHECK_NOW = ("auto_training_enabled", "training_poll_minutes")  # a change to either runs the check at once


def _deploy_warning(
    svc: Services, project: Project, current: Mapping[str, object], edited: Mapping[str, object]
) -> str:
    """What saving would set off, when it may deploy a model: automatic training on after the change and
    the training check run at once (its switch or period changed). Empty when it would not."""
    after = {**current, **edited}
    if not after["auto_training_enabled"] or not any(key in edited for key in CHECK_NOW):
        return ""
    new, _ = retraining.untrained_images(svc, project)
    serving = deployments.serving_version(svc, project)
    needed = int(after["min_untrained_images"])  # type: ignore[call-overload]
    trains = (
        f"with {new} new labelled images ({needed} needed) it trains a new version now"
        if new >= needed
        else f"it trains a new version once there are {needed} new labelled images ({new} now)"
    )
    replaces = f"in place of {serving.name}, which serves now" if serving else "(no version serves yet)"
    min_f1, drop = history_text("min_f1", after["min_f1"]), history_text("max_f1_drop", after["max_f1_drop"])
    return (
        f"Saving runs a training check at once and then every {after['training_poll_minutes']} minutes: "
        f"{trains} and deploys it {replaces} when its F1 is at least {min_f1} and no label's F1 drops by "
        f"more than {drop.removesuffix('%')} points."
    )


# --- runs -----------------------------------------------------------------------------------------------


def _runs_page(
    request: Request,
    session: ReviewerSession,
    project: Project,
    status_filter: str = "",
    *,
    status: int = 200,
    message: str = "",
) -> Response:
    svc = web(request).services
    wanted = status_filter.upper() if status_filter.upper() in RunStatus.__members__ else ""
    found = runs.list_runs(svc, project.name, status=wanted or None, limit=RUNS_SHOWN)
    serving = deployments.serving_version(svc, project)
    trained = [v for v in list_versions(svc, project) if v.artifact_key is not None]
    untrained, last = retraining.untrained_images(svc, project)
    return render(
        request,
        "console/runs.html",
        status=status,
        session=session,
        title=f"Workflow runs · {project.name}",
        project=project,
        runs=found,
        status_filter=wanted,
        statuses=[s.value for s in RunStatus],
        serving=serving,
        trained=[v for v in trained if serving is None or v.id != serving.id],
        deployments=deployments.deployments(svc, project.name, limit=20),
        rollback_to=deployments.default_rollback(svc, project),
        untrained=untrained,
        last=last,
        params=parameters.get_parameters(svc, project),
        message=message,
        section="runs",
        **WORDS,
    )


@router.get("/projects/{name}/workflow/runs")
def runs_page(request: Request, name: str, session: Operator, status: str = "") -> Response:
    project = get_project(web(request).services, name)
    return _runs_page(request, session, project, status)


@router.post("/projects/{name}/workflow/runs/check")
def run_check(request: Request, name: str, session: OperatorForm) -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    try:
        run = retraining.request_check(svc, project.name, TRIGGER, requested_by=session.reviewer)
    except Conflict as e:
        return _runs_page(request, session, project, status=409, message=e.message)
    return RedirectResponse(workflow_url(project.name, f"runs/{run.id}"), status_code=303)


@router.post("/projects/{name}/workflow/runs/rollback")
def run_rollback(request: Request, name: str, session: OperatorForm, to_version: str = Form("")) -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    try:
        run = deployments.request_rollback(svc, project.name, to_version.strip() or None, TRIGGER)
    except VisionloopError as e:
        return _runs_page(request, session, project, status=status_for(e), message=e.message)
    return RedirectResponse(workflow_url(project.name, f"runs/{run.id}"), status_code=303)


@router.get("/projects/{name}/workflow/runs/{run_id}")
def run_page(request: Request, name: str, run_id: int, session: Operator, fragment: int = 0) -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    run = runs.get_run(svc, project.name, run_id)
    return render(
        request,
        "console/run_body.html" if fragment else "console/run.html",
        session=session,
        title=f"Run {run.id} · {project.name}",
        project=project,
        run=run,
        steps=runs.run_steps(svc, run),
        active=run.status in ACTIVE,
        facts=facts,
        step_sentence=step_sentence,
        section="runs",
        **WORDS,
    )
