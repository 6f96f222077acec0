"""Training from the console (over core.training and core.stats):

    GET  /console/projects/{p}/train                 what the model will learn from (images, labels, the
                                                     warnings), one Train button with the recipe's
                                                     defaults (advanced options folded away), the
                                                     project's training jobs
    POST /console/projects/{p}/train                 queue a training job → back to the page, on the job
    GET  /console/projects/{p}/train/jobs/{id}       one job's progress as an HTML fragment; while the job
                                                     is queued or running the fragment asks htmx to fetch
                                                     it again every second, so the page follows it live

The server's workers run the jobs (the ``workers`` setting, or ``visionloop worker``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from visionloop.api.deps import RowId
from visionloop.api.errors import status_for
from visionloop.core import projects, stats
from visionloop.core.entities import Job, JobStatus, ModelVersion, Project, TaskType
from visionloop.core.jobs import training_job, training_jobs
from visionloop.core.services import Services
from visionloop.core.training import DEFAULT_BACKBONE, MODES, TrainingOptions, request_training, split_preview
from visionloop.errors import AlreadyExists, Conflict, InvalidInput
from visionloop.web.auth import Operator, OperatorForm
from visionloop.web.console import Link, console_router
from visionloop.web.console.projects import project_url
from visionloop.web.console.wording import backbone_name, backbone_used
from visionloop.web.pages import render, set_global
from visionloop.web.routing import web

router = console_router()
set_global("backbone_used", backbone_used)  # job, version and versions pages: what training used
set_global("backbone_name", backbone_name)
PROJECT_TABS = (Link("Train", "/console/projects/{project}/train", 20),)

JOBS_SHOWN = 10
POLL_SECONDS = 1
STAGE_WORDS = {"": "waiting", "queued": "waiting for a worker"}
# a detector's default time budget (engines/detection/trainer.py DEFAULT_SECONDS, checked by a test)
DETECTION_MINUTES = {"fast": 10, "best": 14}
NO_TEST_WARNING = "there is no TEST dataset yet"  # the start of core.stats' warning
SPLIT_AUTO, SPLIT_KEEP = "auto", "keep"  # the Train form's choice when TEST has no images
SPLITS = (SPLIT_AUTO, SPLIT_KEEP)
MODE_HELP = {
    "fast": "fast: minutes on a CPU, a good first model",
    "best": "best: tries more recipes and keeps the best; takes longer",
}


@dataclass(frozen=True)
class JobView:
    job: Job
    version: ModelVersion | None
    project: Project

    @property
    def active(self) -> bool:
        return self.job.status in (JobStatus.QUEUED, JobStatus.RUNNING)

    @property
    def percent(self) -> int:
        return math.floor(self.job.progress * 100)

    @property
    def url(self) -> str:
        return project_url(self.project.name, f"/train/jobs/{self.job.id}")

    @property
    def eta(self) -> str:
        """The time left, once the engine's progress gives a measured rate (core.training.JobProgress)."""
        s = self.job.eta_seconds
        if self.job.status is not JobStatus.RUNNING:
            return ""
        if s is None:
            return "estimating the time left…"
        return f"about {max(1, round(s))} s left" if s < 90 else f"about {round(s / 60)} min left"

    @property
    def failure(self) -> str:
        if self.job.status is not JobStatus.FAILED:
            return ""
        return self.job.message or (self.version.status_message if self.version else "") or "training failed"


@lru_cache(maxsize=1)
def backbones() -> tuple[str, ...]:
    """The registered backbones (the engines' registry; imported here, never by the core)."""
    from visionloop.engines.registry import list_backbones

    return tuple(list_backbones())


def _jobs(svc: Services, project: Project) -> list[JobView]:
    return [JobView(job, version, project) for job, version in training_jobs(svc, project, JOBS_SHOWN)]


def _page(
    request: Request,
    session: object,
    project: Project,
    status: int = 200,
    message: str = "",
    job: int = 0,
    split: str = SPLIT_AUTO,
) -> Response:
    svc = web(request).services
    settings = request.app.state.settings
    jobs = _jobs(svc, project)
    figures = stats.dataset_stats(svc, project.name)
    preview = split_preview(svc, project.name)
    # with the split shown, core.stats' "no TEST dataset yet" line says less than the split panel does
    warnings = [w for w in figures.warnings if preview is None or not w.startswith(NO_TEST_WARNING)]
    return render(
        request,
        "console/train.html",
        status=status,
        session=session,
        title=f"Train: {project.name}",
        project=project,
        stats=figures,
        warnings=warnings,
        preview=preview,
        split=split,
        jobs=jobs,
        active=any(j.active for j in jobs),
        highlight=job,
        message=message,
        modes=[(m, MODE_HELP.get(m, m)) for m in MODES],
        backbones=[] if project.task is TaskType.DETECTION else backbones(),  # detectors: Lite0 only
        default_backbone=DEFAULT_BACKBONE,
        no_workers=getattr(settings, "workers", 1) == 0,
        detection_minutes=DETECTION_MINUTES,
        min_train_images=stats.MIN_TRAIN_IMAGES,
        poll=POLL_SECONDS,
    )


@router.get("/projects/{name}/train")
def train_page(request: Request, name: str, session: Operator, job: int = 0) -> Response:
    project = projects.get_project(web(request).services, name)
    return _page(request, session, project, job=job)


@router.post("/projects/{name}/train")
def train(
    request: Request,
    name: str,
    session: OperatorForm,
    mode: str = Form("fast"),
    backbone: str = Form(DEFAULT_BACKBONE),
    max_seconds: str = Form(""),
    version_name: str = Form(""),
    split: str = Form(SPLIT_AUTO),
) -> Response:
    svc = web(request).services
    project = projects.get_project(svc, name)
    try:
        options = _options(mode, backbone, max_seconds, version_name, split)
        if stats.dataset_stats(svc, project.name).labeled == 0:
            raise InvalidInput("there are no labelled images yet: add some on the Dataset tab first")
        _, job = request_training(svc, project.name, options)
    except (InvalidInput, AlreadyExists, Conflict) as e:
        return _page(request, session, project, status_for(e), e.message, split=split)
    return RedirectResponse(project_url(project.name, f"/train?job={job.id}#job-{job.id}"), status_code=303)


def _options(mode: str, backbone: str, max_seconds: str, version_name: str, split: str) -> TrainingOptions:
    if split not in SPLITS:
        raise InvalidInput("choose how to get test images: the automatic split or your datasets as they are")
    if backbone != DEFAULT_BACKBONE and backbone not in backbones():
        raise InvalidInput(f"unknown backbone {backbone!r}; choose one of the list")
    seconds = None
    if max_seconds.strip():
        try:
            seconds = float(max_seconds)
        except ValueError:
            raise InvalidInput("the time limit must be a number of seconds") from None
        if not math.isfinite(seconds) or seconds <= 0:
            raise InvalidInput("the time limit must be a positive number of seconds")
    return TrainingOptions(
        version_name.strip() or None, backbone, mode, 0, seconds, auto_split=split == SPLIT_AUTO
    )


@router.get("/projects/{name}/train/jobs/{job_id}")
def job_progress(request: Request, name: str, job_id: RowId, session: Operator) -> Response:
    svc = web(request).services
    project = projects.get_project(svc, name)
    job, version = training_job(svc, project, job_id)
    view = JobView(job, version, project)
    if request.headers.get("hx-request") != "true":  # a person opening the link: the page, on the job
        return RedirectResponse(
            project_url(project.name, f"/train?job={job.id}#job-{job.id}"), status_code=303
        )
    return render(request, "console/job.html", session=session, j=view, highlight=job.id, poll=POLL_SECONDS)
