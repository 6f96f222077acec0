"""Model versions in the console: what training measured, serving them, and comparing two.

GET  /console/projects/{p}/versions                     every version: status, F1, units; the compare form
GET  /console/projects/{p}/versions/{v}                 the version: serving (start with min/max units,
                                                        stop), overall metrics, per-label table with F1
                                                        intervals and thresholds, confusion matrix,
                                                        precision-recall curves, reliability diagram,
                                                        per-image test results (?outcome=&label=&page=);
                                                        for an object detector: mAP@0.5, the per-label
                                                        AP/F1 table and the test images with their true
                                                        and predicted boxes drawn over them
GET  /console/projects/{p}/versions/{v}/serving         the serving panel alone (polled while the version
                                                        is STARTING or STOPPING)
POST /console/projects/{p}/versions/{v}/start           min_units, max_units → STARTING
POST /console/projects/{p}/versions/{v}/stop            → STOPPING
GET  /console/projects/{p}/versions/{v}/images/{hash}   a test image of the version's evaluation, small
                                                        (?size=large: the detection gallery's size)
GET  /console/projects/{p}/compare?a=&b=                two versions side by side, per label, with deltas

The figures come from the evaluation the engine stored with the version (web.console.evaluation reads
it; web.console.detection_evaluation reads a detector's); the charts are SVG drawn here
(web.console.charts). Serving goes through core.serving, like the
API's start and stop."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from visionloop.api.errors import status_for
from visionloop.core import projects, serving
from visionloop.core.accounts import ReviewerSession
from visionloop.core.entities import ModelVersion, Project, VersionStatus
from visionloop.core.entries import names_of_test_images
from visionloop.core.images import load_image
from visionloop.core.projects import get_project
from visionloop.core.services import Services
from visionloop.core.training import get_version
from visionloop.errors import InvalidInput, NotFound, VisionloopError
from visionloop.web.auth import Operator, OperatorForm
from visionloop.web.console import Link, charts, console_router
from visionloop.web.console.detection_evaluation import (
    DETECTION_OUTCOME_NAMES,
    DETECTION_OUTCOMES,
    DetectionEvaluation,
    compare_detections,
    detection_outcome_counts,
    filter_detection_images,
    is_detection,
    read_detection_evaluation,
)
from visionloop.web.console.evaluation import (
    OUTCOMES,
    Evaluation,
    compare,
    confused_pairs,
    filter_images,
    outcome_counts,
    pr_curves,
    read_evaluation,
)
from visionloop.web.console.snippets import model_snippets
from visionloop.web.pages import render
from visionloop.web.routing import web

router = console_router()
PROJECT_TABS = (
    Link(
        "Models",
        "/console/projects/{project}/versions",
        40,
        ("/console/projects/{project}/versions", "/console/projects/{project}/compare"),
    ),
)

IMAGES_PER_PAGE = 48
THUMB_SIDE = 240
LARGE_SIDE = 480  # the detection gallery's images: boxes are drawn over them
TRANSITIONAL = (VersionStatus.STARTING, VersionStatus.STOPPING, VersionStatus.TRAINING_IN_PROGRESS)
OUTCOME_NAMES = {
    "all": "All test images",
    "correct": "Right",
    "wrong": "Wrong",
    "false_positives": "False positives",
    "false_negatives": "False negatives",
}
IMAGE_HEADERS = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}


def versions_url(project: str, rest: str = "") -> str:
    return f"/console/projects/{quote(project, safe='')}/versions{rest}"


def version_url(project: str, version: str, rest: str = "") -> str:
    return versions_url(project, f"/{quote(version, safe='')}{rest}")


@dataclass(frozen=True)
class ServingView:
    """The serving panel: status, units, what can be done now."""

    version: ModelVersion
    units_now: int
    queued: int | None
    can_start: bool
    can_stop: bool
    polling: bool
    min_units: int
    max_units: int


def _serving_view(request: Request, version: ModelVersion) -> ServingView:
    srv: serving.Serving = request.app.state.serving
    stats = srv.host.stats(version.id)
    trained = version.artifact_key is not None
    return ServingView(
        version=version,
        units_now=stats.units if stats is not None else version.inference_units,
        queued=stats.queued if stats is not None else None,
        can_start=trained and version.status in serving.STARTABLE,
        can_stop=version.status in serving.STOPPABLE,
        polling=version.status in TRANSITIONAL,
        min_units=version.min_inference_units or 1,
        max_units=version.max_inference_units or version.min_inference_units or 1,
    )


def _versions(svc: Services, project: Project) -> list[ModelVersion]:
    return sorted(projects.list_versions(svc, project), key=lambda v: (v.created_at, v.id), reverse=True)


# --- the list -------------------------------------------------------------------------------------------


@router.get("/projects/{name}/versions")
def list_versions(request: Request, name: str, session: Operator) -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    versions = _versions(svc, project)
    rows = [
        (v, read_evaluation(v.evaluation), _serving_view(request, v), read_detection_evaluation(v.evaluation))
        for v in versions
    ]
    trained = [v for v in versions if v.evaluation]
    return render(
        request,
        "console/versions.html",
        session=session,
        title=f"Models · {project.name}",
        project=project,
        rows=rows,
        compare_a=trained[1].name if len(trained) > 1 else "",
        compare_b=trained[0].name if trained else "",
        trained=trained,
    )


# --- one version ----------------------------------------------------------------------------------------


def _page_number(page: int, total: int) -> tuple[int, int]:
    pages = max(1, math.ceil(total / IMAGES_PER_PAGE))
    return min(max(1, page), pages), pages


def _source_names(svc: Services, project: Project, ev: Evaluation) -> dict[str, str]:
    """The file names the test images had when imported, by content hash (from the TEST dataset now)."""
    return names_of_test_images(svc, project, ev.image_ids)


def _version_page(
    request: Request,
    session: ReviewerSession,
    project: Project,
    version: ModelVersion,
    *,
    outcome: str = "all",
    label: str = "",
    page: int = 1,
    status: int = 200,
    message: str = "",
    form: dict[str, str] | None = None,
) -> Response:
    svc = web(request).services
    det = read_detection_evaluation(version.evaluation)
    ev = None if det is not None else read_evaluation(version.evaluation)
    context: dict[str, Any] = {"ev": ev, "det": det, "outcome_names": OUTCOME_NAMES}
    if det is not None:
        context.update(_detection_context(svc, project, det, outcome, label, page))
    if ev is not None:
        outcome = outcome if outcome in OUTCOMES else "all"
        label = label if label in ev.labels else ""
        chosen = filter_images(ev.images, outcome, label)
        page, pages = _page_number(page, len(chosen))
        curves = pr_curves(ev)
        context.update(
            curves=[(c, charts.pr_chart(c, i)) for i, c in enumerate(curves)],
            curve_basis=curves[0].basis if curves else "",
            reliability=charts.reliability_chart(ev.reliability, ev.calibration_error)
            if ev.reliability
            else None,
            heat=charts.heat,
            confused=confused_pairs(ev.images),
            outcome=outcome,
            label=label,
            counts=outcome_counts(ev.images, label),
            images=chosen[(page - 1) * IMAGES_PER_PAGE : page * IMAGES_PER_PAGE],
            shown=len(chosen),
            page=page,
            pages=pages,
            names=_source_names(svc, project, ev),
            page_url=lambda n: "?" + urlencode({"outcome": outcome, "label": label, "page": n}) + "#images",
        )
    others = [v for v in _versions(svc, project) if v.id != version.id and v.evaluation]
    settings = request.app.state.settings
    context["snippets"] = model_snippets(
        str(request.base_url),
        settings.region,
        settings.account_id,
        project,
        version,
        bool(settings.access_keys),
    )
    return render(
        request,
        "console/version.html",
        status=status,
        session=session,
        title=f"{project.name} / {version.name}",
        project=project,
        version=version,
        serving=_serving_view(request, version),
        others=others,
        message=message,
        form=form or {},
        **context,
    )


def _detection_context(
    svc: Services, project: Project, det: DetectionEvaluation, outcome: str, label: str, page: int
) -> dict[str, Any]:
    """The detector's gallery: the chosen test images, one page of them, and the filter's counts."""
    outcome = outcome if outcome in DETECTION_OUTCOMES else "all"
    label = label if label in det.labels else ""
    chosen = filter_detection_images(det.images, outcome, label)
    page, pages = _page_number(page, len(chosen))
    return {
        "outcome": outcome,
        "label": label,
        "outcome_names": DETECTION_OUTCOME_NAMES,
        "counts": detection_outcome_counts(det.images, label),
        "images": chosen[(page - 1) * IMAGES_PER_PAGE : page * IMAGES_PER_PAGE],
        "shown": len(chosen),
        "page": page,
        "pages": pages,
        "names": names_of_test_images(svc, project, det.image_ids),
        "page_url": lambda n: "?" + urlencode({"outcome": outcome, "label": label, "page": n}) + "#images",
    }


@router.get("/projects/{name}/versions/{version}")
def version_page(
    request: Request,
    name: str,
    version: str,
    session: Operator,
    outcome: str = "all",
    label: str = "",
    page: int = 1,
) -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    v = get_version(svc, project.name, version)
    return _version_page(request, session, project, v, outcome=outcome, label=label, page=page)


@router.get("/projects/{name}/versions/{version}/serving")
def serving_panel(request: Request, name: str, version: str, session: Operator) -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    v = get_version(svc, project.name, version)
    return render(
        request,
        "console/serving_panel.html",
        session=session,
        project=project,
        version=v,
        serving=_serving_view(request, v),
        form={},
        fragment=True,
    )


def whole_number(text: str, what: str, default: int | None) -> int | None:
    text = text.strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{what} must be a whole number, not {text!r}") from None


@router.post("/projects/{name}/versions/{version}/start")
def start(
    request: Request,
    name: str,
    version: str,
    session: OperatorForm,
    min_units: str = Form("1"),
    max_units: str = Form(""),
) -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    v = get_version(svc, project.name, version)
    try:
        low = whole_number(min_units, "the minimum number of inference units", 1)
        high = whole_number(max_units, "the maximum number of inference units", None)
        serving.start_version(svc, request.app.state.serving, project.name, v.name, low or 0, high)
    except VisionloopError as e:
        v = get_version(svc, project.name, version)
        form = {"min_units": min_units, "max_units": max_units}
        return _version_page(request, session, project, v, status=status_for(e), message=e.message, form=form)
    return RedirectResponse(version_url(project.name, v.name), status_code=303)


@router.post("/projects/{name}/versions/{version}/stop")
def stop(request: Request, name: str, version: str, session: OperatorForm) -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    v = get_version(svc, project.name, version)
    try:
        serving.stop_version(svc, request.app.state.serving, project.name, v.name)
    except VisionloopError as e:
        v = get_version(svc, project.name, version)
        return _version_page(request, session, project, v, status=status_for(e), message=e.message)
    return RedirectResponse(version_url(project.name, v.name), status_code=303)


@router.get("/projects/{name}/versions/{version}/images/{digest}")
def test_image(
    request: Request, name: str, version: str, digest: str, session: Operator, size: str = ""
) -> Response:
    """A test image of this version's evaluation (only those: the hash must be one the version was
    tested on), as a small JPEG (``size=large``: twice the side, for the detection gallery)."""
    from visionloop.web.console.datasets import make_thumbnail

    svc = web(request).services
    v = get_version(svc, get_project(svc, name).name, version)
    if digest not in _tested_on(v):
        raise NotFound(f"model version {v.name} was not tested on that image")
    small = make_thumbnail(load_image(svc.store, digest), LARGE_SIDE if size == "large" else THUMB_SIDE)
    return Response(small, media_type="image/jpeg", headers=IMAGE_HEADERS)


def _tested_on(version: ModelVersion) -> frozenset[str]:
    """The content hashes of the test images the version's evaluation holds."""
    det = read_detection_evaluation(version.evaluation)
    if det is not None:
        return det.image_ids
    ev = read_evaluation(version.evaluation)
    return ev.image_ids if ev is not None else frozenset()


# --- two versions ---------------------------------------------------------------------------------------


@router.get("/projects/{name}/compare")
def compare_page(request: Request, name: str, session: Operator, a: str = "", b: str = "") -> Response:
    svc = web(request).services
    project = get_project(svc, name)
    trained = [v for v in _versions(svc, project) if v.evaluation]
    if not a and not b and len(trained) >= 2:
        a, b = trained[1].name, trained[0].name
    context: dict[str, Any] = {}
    if a and b:
        va, vb = get_version(svc, project.name, a), get_version(svc, project.name, b)
        context = {"va": va, "vb": vb, **_comparison(va, vb)}
    return render(
        request,
        "console/compare.html",
        session=session,
        title=f"Compare · {project.name}",
        project=project,
        trained=trained,
        a=a,
        b=b,
        **context,
    )


def _comparison(va: ModelVersion, vb: ModelVersion) -> dict[str, Any]:
    """The comparison of two versions' evaluations: of two classifiers or of two detectors; a
    classifier and a detector measure different things, so for them only a note (``mixed``)."""
    missing = [v.name for v in (va, vb) if not v.evaluation]
    if missing:
        raise InvalidInput(f"model version {missing[0]} has no evaluation yet: it has not finished training")
    if is_detection(va.evaluation) != is_detection(vb.evaluation):
        return {"mixed": True}
    da, db = read_detection_evaluation(va.evaluation), read_detection_evaluation(vb.evaluation)
    if da is not None and db is not None:
        return {"comparison": compare_detections(da, db), "detection": True}
    ea, eb = read_evaluation(va.evaluation), read_evaluation(vb.evaluation)
    assert ea is not None and eb is not None
    return {"comparison": compare(ea, eb)}
