"""Try it: drop an image, see what a running model version and the pretrained analysers make of it.

GET  /console/try                        the form: a running version (of any project) and the analysers
POST /console/try                        the image (multipart ``file``) → the same page with the results
GET  /console/projects/{p}/try[?version=] the same under the project's tabs, its running version chosen
POST /console/projects/{p}/try

The image goes through the same use cases as the APIs: core.serving.submit_detect (a real detection:
it is logged with source ``console`` and may open a human loop under the project's review rule) and
core.analyzing's detect_labels / detect_text / detect_moderation_labels. Every label of the version is
shown with its confidence, marked where it reaches the label's assumed threshold (what the API would
return); an object detector's labels come one per object, each with its box. Boxes, words and label
instances are drawn over a reduced copy of the image in an inline SVG. A section that fails (version
stopped meanwhile, analyser not installed) says why; the others still show."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fastapi import File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as ReceivedFile
from starlette.responses import Response

from visionloop.api.errors import status_for
from visionloop.core import analyzing, serving
from visionloop.core.accounts import ReviewerSession
from visionloop.core.detections import DetectionSource
from visionloop.core.entities import ModelVersion, Prediction, Project, VersionStatus
from visionloop.core.images import check_image
from visionloop.core.projects import get_project, list_projects, list_versions
from visionloop.core.records.analysis import ImageLabel, ModerationLabel, TextDetection
from visionloop.core.scoring import cut_off
from visionloop.core.services import Services
from visionloop.core.training import get_version
from visionloop.errors import InvalidInput, VisionloopError
from visionloop.web.auth import Operator, OperatorForm
from visionloop.web.console import Link, console_router
from visionloop.web.console.charts import colour
from visionloop.web.console.datasets import make_thumbnail
from visionloop.web.numbers import percent
from visionloop.web.pages import render
from visionloop.web.routing import web

log = logging.getLogger("visionloop.web")

router = console_router()
NAV = (Link("Try it", "/console/try", 40),)
PROJECT_TABS = (Link("Try it", "/console/projects/{project}/try", 50),)

ANALYSERS = (
    ("labels", "Labels", "objects and scenes, with boxes around objects"),
    ("text", "Text", "words and lines in the image"),
    ("moderation", "Moderation", "nudity and swimwear"),
)
PREVIEW_SIDE = 960  # the copy the boxes are drawn on
MAX_UPLOAD = serving.DETECT_LIMITS.max_bytes


@dataclass(frozen=True)
class Target:
    project: str
    version: str

    @property
    def key(self) -> str:
        return f"{self.project}/{self.version}"


@dataclass
class Found:
    """One section of the results: its rows, or why there are none."""

    title: str
    error: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


@dataclass
class Results:
    preview: str  # data: URI of the reduced image
    width: int
    height: int
    sections: list[Found]
    shapes: list[dict[str, Any]]  # what the SVG draws: boxes and word polygons in preview pixels


def _targets(svc: Services, project: Project | None) -> list[Target]:
    chosen = [project] if project is not None else sorted(list_projects(svc), key=lambda p: p.name)
    return [
        Target(p.name, v.name)
        for p in chosen
        for v in list_versions(svc, p)
        if v.status is VersionStatus.RUNNING
    ]


def _page(
    request: Request,
    session: ReviewerSession,
    project: Project | None,
    *,
    chosen: str = "",
    analysers: tuple[str, ...] = ("labels",),
    results: Results | None = None,
    status: int = 200,
    message: str = "",
    asked_version: str = "",
) -> Response:
    svc = web(request).services
    targets = _targets(svc, project)
    if not chosen and targets and project is not None:
        wanted = [t for t in targets if t.version == asked_version]
        chosen = (wanted or targets)[0].key
    not_running = ""
    if asked_version and project is not None and not any(t.version == asked_version for t in targets):
        not_running = asked_version
    return render(
        request,
        "console/tryit.html",
        status=status,
        session=session,
        title="Try it" + (f" · {project.name}" if project else ""),
        project=project,
        targets=targets,
        chosen=chosen,
        analysers=ANALYSERS,
        picked=analysers,
        results=results,
        message=message,
        not_running=not_running,
        action=f"/console/projects/{project.name}/try" if project else "/console/try",
        max_mb=MAX_UPLOAD // (1024 * 1024),
    )


@router.get("/try")
def try_page(request: Request, session: Operator) -> Response:
    return _page(request, session, None)


@router.get("/projects/{name}/try")
def project_try_page(request: Request, name: str, session: Operator, version: str = "") -> Response:
    project = get_project(web(request).services, name)
    return _page(request, session, project, asked_version=version)


@router.post("/try")
async def try_image(
    request: Request,
    session: OperatorForm,
    file: UploadFile | None = File(None),
    target: str = Form(""),
    analyser: list[str] = Form([]),
) -> Response:
    return await _try(request, session, None, file, target, analyser)


@router.post("/projects/{name}/try")
async def project_try_image(
    request: Request,
    name: str,
    session: OperatorForm,
    file: UploadFile | None = File(None),
    target: str = Form(""),
    analyser: list[str] = Form([]),
) -> Response:
    project = await run_in_threadpool(get_project, web(request).services, name)
    return await _try(request, session, project, file, target, analyser)


async def _try(
    request: Request,
    session: ReviewerSession,
    project: Project | None,
    file: UploadFile | None,
    target: str,
    analyser: list[str],
) -> Response:
    svc = web(request).services
    kinds = tuple(k for k, _, _ in ANALYSERS if k in analyser)
    try:
        if not isinstance(file, ReceivedFile):  # FastAPI hands Starlette's UploadFile over
            raise InvalidInput("choose an image first (JPEG or PNG)")
        data = await file.read(MAX_UPLOAD + 1)
        if not target and not kinds:
            raise InvalidInput("choose a model version or at least one analyser")
        await run_in_threadpool(check_image, data, svc.inspector, serving.DETECT_LIMITS)
        preview, width, height = await run_in_threadpool(preview_image, data)
    except VisionloopError as e:
        page = partial(_page, chosen=target, analysers=kinds, status=status_for(e), message=e.message)
        return await run_in_threadpool(page, request, session, project)
    results = Results(preview, width, height, [], [])
    jobs = []
    if target:
        jobs.append(_custom_labels(request, results, target, data))
    for kind in kinds:
        jobs.append(_analyse(request, results, kind, data))
    await asyncio.gather(*jobs)
    order = {"Custom labels": 0, "Labels": 1, "Text": 2, "Moderation": 3}
    results.sections.sort(key=lambda s: order.get(s.title, 9))
    page = partial(_page, chosen=target, analysers=kinds, results=results)
    return await run_in_threadpool(page, request, session, project)


def preview_image(data: bytes) -> tuple[str, int, int]:
    small = make_thumbnail(data, PREVIEW_SIDE)
    from PIL import Image

    with Image.open(io.BytesIO(small)) as img:
        width, height = img.size
    return "data:image/jpeg;base64," + base64.b64encode(small).decode(), width, height


def picture_box(results: Results, box: Any, label: str, index: int, kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "label": label,
        "colour": colour(index),
        "x": box.left * results.width,
        "y": box.top * results.height,
        "w": box.width * results.width,
        "h": box.height * results.height,
    }


async def _custom_labels(request: Request, results: Results, target: str, data: bytes) -> None:
    found = Found("Custom labels")
    results.sections.append(found)
    project_name, _, version_name = target.partition("/")
    svc = web(request).services
    srv: serving.Serving = request.app.state.serving
    try:
        future = await run_in_threadpool(
            serving.submit_detect,
            svc,
            srv,
            project_name,
            version_name,
            data,
            0.0,
            None,
            source=DetectionSource.CONSOLE,
        )
        labels: list[Prediction] = await asyncio.wrap_future(future)
        version: ModelVersion = await run_in_threadpool(get_version, svc, project_name, version_name)
    except VisionloopError as e:
        found.error = e.message
        return
    except Exception:
        log.exception("Try it: detection with %s failed", target)
        found.error = "The detection failed unexpectedly."
        return
    found.note = f"{project_name} / {version_name}"
    for i, p in enumerate(labels):
        threshold = cut_off(p.label, version.thresholds)
        found.rows.append(
            {
                "name": p.label,
                "confidence": p.confidence,
                "returned": p.confidence / 100 >= threshold,
                "threshold": threshold,
                "colour": colour(i) if p.box else "",
            }
        )
        if p.box is not None:  # an object detector's: the box, captioned with how sure the model is
            caption = f"{p.label} {percent(p.confidence, scale=100)}"
            results.shapes.append(picture_box(results, p.box, caption, i, "custom"))


async def _analyse(request: Request, results: Results, kind: str, data: bytes) -> None:
    from visionloop.bootstrap import server_analysis

    title = {"labels": "Labels", "text": "Text", "moderation": "Moderation"}[kind]
    found = Found(title)
    results.sections.append(found)
    svc = web(request).services
    try:
        analysis = server_analysis(request.app.state)
        if kind == "labels":
            fn: Any = analyzing.detect_labels
        elif kind == "text":
            fn = analyzing.detect_text
        else:
            fn = analyzing.detect_moderation_labels
        result = await asyncio.wrap_future(analysis.submit(fn, svc, analysis.source, data))
    except VisionloopError as e:
        found.error = e.message
        return
    except Exception:
        log.exception("Try it: the %s analyser failed", kind)
        found.error = f"The {kind} analyser failed unexpectedly."
        return
    found.note = result.version
    if kind == "labels":
        _labels(results, found, result.labels)
    elif kind == "text":
        _text(results, found, result.detections)
    else:
        _moderation(found, result.labels)


def _labels(results: Results, found: Found, labels: tuple[ImageLabel, ...]) -> None:
    for i, label in enumerate(labels):
        boxed = bool(label.instances)
        found.rows.append(
            {
                "name": label.name,
                "confidence": label.confidence,
                "parents": ", ".join(label.parents),
                "instances": len(label.instances),
                "colour": colour(i) if boxed else "",
            }
        )
        for inst in label.instances:
            results.shapes.append(picture_box(results, inst.box, label.name, i, "labels"))


def _text(results: Results, found: Found, detections: tuple[TextDetection, ...]) -> None:
    for d in detections:
        if d.kind == "LINE":
            found.rows.append({"name": d.text, "confidence": d.confidence})
        elif d.polygon:
            points = " ".join(f"{p.x * results.width:.1f},{p.y * results.height:.1f}" for p in d.polygon)
            results.shapes.append({"kind": "word", "label": d.text, "points": points})


def _moderation(found: Found, labels: tuple[ModerationLabel, ...]) -> None:
    for m in labels:
        found.rows.append({"name": m.name, "confidence": m.confidence, "parents": m.parent_name})
