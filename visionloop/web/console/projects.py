"""Projects in the console:

GET  /console/                              → /console/projects
GET  /console/projects                      every project with its task, image counts and the state
                                            of the version that serves (or the newest one); the
                                            create form
POST /console/projects                      create (name, task) → the new project's dataset
GET  /console/projects/{p}                  → its TRAIN dataset
GET  /console/projects/{p}/delete           the confirmation page (type the name)
POST /console/projects/{p}/delete           delete it, with its datasets and versions; refused while a
                                            version serves"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from visionloop.api.errors import status_for
from visionloop.core import projects
from visionloop.core.entities import DatasetType, ModelVersion, Project, TaskType, VersionStatus
from visionloop.core.services import Services
from visionloop.errors import VisionloopError
from visionloop.web.auth import Operator, OperatorForm
from visionloop.web.console import Link, console_router
from visionloop.web.pages import render
from visionloop.web.routing import web

router = console_router()
NAV = (Link("Projects", "/console/projects", 10),)

TASKS = (
    (TaskType.CLASSIFICATION, "Classification", "one label per image: what the whole photo shows"),
    (TaskType.MULTI_LABEL, "Multi-label", "any number of labels per image"),
    (
        TaskType.DETECTION,
        "Object detection",
        "where each object is: you draw a labelled box around each object on the training images "
        "(10 or more images of each label advised), then train a detector, which takes up to 10 minutes",
    ),
)
SERVING = (VersionStatus.RUNNING, VersionStatus.STARTING, VersionStatus.STOPPING)
NOTICES = {
    "deleted": "Project {name} was deleted.",
    "welcome": "Welcome, {name}: you are the first operator and signed in. Next, create a project; "
    "people who label unsure images get accounts on the Reviewers page.",
}


@dataclass(frozen=True)
class ProjectRow:
    project: Project
    train_images: int
    test_images: int
    version: ModelVersion | None  # the one serving, else the newest
    serving: bool


def project_url(name: str, rest: str = "") -> str:
    return f"/console/projects/{quote(name, safe='')}{rest}"


def _row(svc: Services, p: Project) -> ProjectRow:
    counts = projects.image_counts(svc, p)
    versions = projects.list_versions(svc, p)
    serving = [v for v in versions if v.status in SERVING]
    newest = max(versions, key=lambda v: (v.created_at, v.id), default=None)
    return ProjectRow(
        p,
        counts.get(DatasetType.TRAIN, 0),
        counts.get(DatasetType.TEST, 0),
        serving[0] if serving else newest,
        bool(serving),
    )


def _list_page(
    request: Request,
    session: object,
    status: int = 200,
    message: str = "",
    name: str = "",
    task: str = TaskType.CLASSIFICATION.value,
    notice: str = "",
) -> Response:
    svc = web(request).services
    rows = [_row(svc, p) for p in sorted(projects.list_projects(svc), key=lambda p: p.name.lower())]
    return render(
        request,
        "console/projects.html",
        status=status,
        session=session,
        title="Projects",
        rows=rows,
        tasks=TASKS,
        message=message,
        name=name,
        task=task,
        notice=notice,
    )


@router.get("/")
def home(session: Operator) -> Response:
    return RedirectResponse("/console/projects", status_code=303)


@router.get("/projects")
def list_projects(request: Request, session: Operator, notice: str = "", name: str = "") -> Response:
    text = NOTICES.get(notice, "").format(name=name)
    return _list_page(request, session, notice=text)


@router.post("/projects")
def create(request: Request, session: OperatorForm, name: str = Form(""), task: str = Form("")) -> Response:
    try:
        project = projects.create_project(web(request).services, name.strip(), task)
    except VisionloopError as e:
        return _list_page(request, session, status_for(e), e.message, name, task)
    return RedirectResponse(project_url(project.name, "/datasets/train?notice=created"), status_code=303)


@router.get("/projects/{name}")
def project_home(name: str, session: Operator, request: Request) -> Response:
    project = projects.get_project(web(request).services, name)
    return RedirectResponse(project_url(project.name, "/datasets/train"), status_code=303)


@router.get("/projects/{name}/delete")
def confirm_delete(request: Request, name: str, session: Operator) -> Response:
    svc = web(request).services
    row = _row(svc, projects.get_project(svc, name))
    versions = projects.list_versions(svc, row.project)
    return render(
        request,
        "console/delete_project.html",
        session=session,
        title=f"Delete {row.project.name}",
        row=row,
        versions=len(versions),
        message="",
    )


@router.post("/projects/{name}/delete")
def delete(request: Request, name: str, session: OperatorForm, confirm: str = Form("")) -> Response:
    svc = web(request).services
    project = projects.get_project(svc, name)
    if confirm.strip() != project.name:
        row = _row(svc, project)
        return render(
            request,
            "console/delete_project.html",
            status=400,
            session=session,
            title=f"Delete {project.name}",
            row=row,
            versions=len(projects.list_versions(svc, project)),
            message=f"Type the project's name, {project.name}, to confirm.",
        )
    projects.delete_project(svc, project.name)  # refused (409 page) while a version is in use
    return RedirectResponse(
        f"/console/projects?notice=deleted&name={quote(project.name, safe='')}", status_code=303
    )
