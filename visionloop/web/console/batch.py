"""Batch inference in the console (core.batch, run by the server as POST /api/v1/batches runs it):

GET  /console/batches[?out=s3://…]   the form to start a batch; with ``out``, that job's progress
                                     (the page refreshes itself while the job runs)
POST /console/batches                start one (model, source prefix, output prefix, workers), then its
                                     progress; a mistake is answered on the page with its reason"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from visionloop.api.batch import batch_jobs
from visionloop.api.errors import status_for
from visionloop.core.accounts import ReviewerSession
from visionloop.core.analyzing import KINDS
from visionloop.core.batch import check_job
from visionloop.errors import InvalidInput, VisionloopError
from visionloop.web.auth import Operator, OperatorForm
from visionloop.web.console import Link, console_router
from visionloop.web.pages import render
from visionloop.web.routing import web

router = console_router()
NAV = (Link("Batch", "/console/batches", 48),)


def _page(
    request: Request,
    session: ReviewerSession,
    *,
    out: str = "",
    status: int = 200,
    message: str = "",
    form: dict[str, Any] | None = None,
) -> Response:
    progress = None
    if out:
        try:
            progress = batch_jobs(request).state(web(request).services, out)
        except VisionloopError as e:
            status, message = status_for(e), message or e.message
    return render(
        request,
        "console/batch.html",
        status=status,
        session=session,
        title="Batch",
        out=out,
        progress=progress,
        kinds=KINDS,
        form=form or {"workers": 1},
        message=message,
    )


@router.get("/batches")
def batch_page(request: Request, session: Operator, out: str = "") -> Response:
    return _page(request, session, out=out.strip())


@router.post("/batches")
def start_batch(
    request: Request,
    session: OperatorForm,
    model: str = Form(""),
    source: str = Form(""),
    out: str = Form(""),
    workers: str = Form("1"),
) -> Response:
    model, source, out = model.strip(), source.strip(), out.strip()
    form = {"model": model, "source": source, "out": out, "workers": workers}
    try:
        if not workers.strip().isdigit() or not 0 <= int(workers) <= 256:
            raise InvalidInput("workers must be a whole number from 0 to 256")
        check_job(web(request).services, model, source, out)
        batch_jobs(request).start(model, source, out, workers=int(workers))
    except VisionloopError as e:
        return _page(request, session, status=status_for(e), message=e.message, form=form)
    return RedirectResponse(f"/console/batches?out={quote(out, safe='')}", status_code=303)
