"""Renaming and merging labels from the dataset page (over core.labels.rename_label):

    POST /console/projects/{p}/labels/rename    old, new → every image carrying ``old`` (training and
                                                test, labels and boxes) carries ``new``; a ``new`` the
                                                project has already merges the two

Back to the page it came from (``back``, kept inside this project's pages) with a notice that says how
many images changed. A refusal (no such label, a bad name, a version training) is a page with the
reason and its status, as every console form's."""

from __future__ import annotations

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from visionloop.core import projects
from visionloop.core.labels import rename_label
from visionloop.web.auth import OperatorForm
from visionloop.web.console import console_router
from visionloop.web.console.datasets import back_to, with_notice
from visionloop.web.routing import web

router = console_router()


@router.post("/projects/{name}/labels/rename")
def rename(
    request: Request,
    name: str,
    session: OperatorForm,
    old: str = Form(""),
    new: str = Form(""),
    back: str = Form(""),
) -> Response:
    svc = web(request).services
    project = projects.get_project(svc, name)
    done = rename_label(svc, project.name, old, new)
    notice = "merged" if done.merged else "renamed"
    return RedirectResponse(with_notice(back_to(project, back), notice, done.entries), status_code=303)
