"""Native REST: projects and their dataset statistics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from visionloop.api.deps import ServicesDep
from visionloop.core import projects, stats
from visionloop.core.entities import Project

router = APIRouter(tags=["projects"])


class ProjectIn(BaseModel):
    name: str
    task: str = "classification"


def project_json(p: Project) -> dict[str, Any]:
    return {"name": p.name, "task": p.task.value, "created_at": p.created_at.isoformat()}


@router.get("/projects")
def list_projects(svc: ServicesDep) -> dict[str, Any]:
    return {"projects": [project_json(p) for p in projects.list_projects(svc)]}


@router.post("/projects", status_code=201)
def create_project(body: ProjectIn, svc: ServicesDep) -> dict[str, Any]:
    return project_json(projects.create_project(svc, body.name, body.task))


@router.get("/projects/{name}")
def get_project(name: str, svc: ServicesDep) -> dict[str, Any]:
    return project_json(projects.get_project(svc, name))


@router.delete("/projects/{name}", status_code=204)
def delete_project(name: str, svc: ServicesDep) -> Response:
    projects.delete_project(svc, name)
    return Response(status_code=204)


@router.get("/projects/{name}/stats")
def project_stats(name: str, svc: ServicesDep) -> dict[str, Any]:
    return stats.dataset_stats(svc, name).to_dict()
