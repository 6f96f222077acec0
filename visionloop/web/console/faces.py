"""Faces in the console (issue 14): manage face collections and try a search, through core.collections'
use cases (the same as the AWS operations, the native API and the CLI), so a rule lives in core once.

GET  /console/faces                          the collections (faces, users, face model, created); create
POST /console/faces                          create (``name``) → the new collection's page
GET  /console/faces/{c}/delete               the confirmation page (type the collection's id)
POST /console/faces/{c}/delete               delete it with its faces, their vectors and its users
GET  /console/faces/{c}[?offset=]            its faces (50 a page) and users; the forms below
POST /console/faces/{c}/index                IndexFaces: a photo (multipart ``file``), ExternalImageId,
                                             MaxFaces, QualityFilter → what was indexed, what was not and why
POST /console/faces/{c}/faces/delete         DeleteFaces, one ``face_id``
POST /console/faces/{c}/users                CreateUser (``user_id``)
POST /console/faces/{c}/users/delete         DeleteUser (its faces stay, associated with nobody)
POST /console/faces/{c}/users/associate      AssociateFaces: the ticked ``face_id``s to ``user_id``
POST /console/faces/{c}/users/disassociate   DisassociateFaces
POST /console/faces/{c}/search               SearchFacesByImage: a photo, threshold, max faces → the
                                             matches, the searched face's box drawn over the photo

Photos are analysed on the server's analysis threads (app.state.analysis), as the APIs do; the boxes are
drawn as Try it draws them (tryit's reduced preview and shapes). A user's mistake (a bad id, no photo, a
photo without a face, a face another user holds) comes back on the page with its reason and the error's
status, never as a 500."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as ReceivedFile
from starlette.responses import RedirectResponse, Response

from visionloop.api.errors import status_for
from visionloop.core import collections as col
from visionloop.core.accounts import ReviewerSession
from visionloop.core.analyzing import ANALYSIS_LIMITS
from visionloop.core.faces import QUALITY_FILTERS
from visionloop.errors import InvalidInput, VisionloopError
from visionloop.web.auth import Operator, OperatorForm
from visionloop.web.console import Link, console_router
from visionloop.web.console.tryit import Results, picture_box, preview_image
from visionloop.web.console.versions import whole_number
from visionloop.web.pages import render
from visionloop.web.routing import web

log = logging.getLogger("visionloop.web")

router = console_router()
NAV = (Link("Faces", "/console/faces", 45),)

PAGE = 50  # faces a page
MAX_UPLOAD = ANALYSIS_LIMITS.max_bytes
SEARCH_MAX_FACES = 10  # the search form's default: a page of matches, not Rekognition's 4096
UNINDEXED_COLOUR = "#9e9e9e"
NOTICES = {
    "created": "Collection {name} was created.",
    "deleted": "Collection {name} was deleted with its faces and users.",
    "face-deleted": "Face {name} was deleted.",
    "user-created": "User {name} was created.",
    "user-deleted": "User {name} was deleted; its faces stay in the collection.",
}


def faces_url(collection: str = "", rest: str = "", /, **query: str) -> str:
    path = "/console/faces" + (f"/{quote(collection, safe='')}" if collection else "") + rest
    return path + (f"?{urlencode(query)}" if query else "")


@dataclass
class Outcome:
    """What a form did, shown on the collection's page: an error message (with its status) or the
    operation's result, and what was typed (so a refused form keeps it)."""

    status: int = 200
    message: str = ""
    form: str = ""  # the form the message belongs to: index, search, faces, associate, disassociate, users
    picture: Results | None = None  # the photo sent, with the faces' boxes
    indexed: col.IndexResult | None = None
    search: col.SearchResult | None = None
    association: col.Association | None = None
    typed: dict[str, str] = field(default_factory=dict)


# --- the collections --------------------------------------------------------------------------------------


def _list_page(
    request: Request,
    session: ReviewerSession,
    *,
    status: int = 200,
    message: str = "",
    name: str = "",
    notice: str = "",
) -> Response:
    return render(
        request,
        "console/faces.html",
        status=status,
        session=session,
        title="Faces",
        collections=col.list_collections(web(request).services),
        message=message,
        name=name,
        notice=notice,
    )


@router.get("/faces")
def list_collections(request: Request, session: Operator, notice: str = "", name: str = "") -> Response:
    return _list_page(request, session, notice=NOTICES.get(notice, "").format(name=name))


@router.post("/faces")
def create_collection(request: Request, session: OperatorForm, name: str = Form("")) -> Response:
    from visionloop.bootstrap import server_analysis

    analysis = server_analysis(request.app.state)
    try:
        made = col.create_collection(web(request).services, analysis.source, name.strip())
    except VisionloopError as e:
        return _list_page(request, session, status=status_for(e), message=e.message, name=name)
    return RedirectResponse(faces_url(made.name, notice="created", name=made.name), status_code=303)


@router.get("/faces/{name}/delete")
def confirm_delete(request: Request, name: str, session: Operator) -> Response:
    c = col.describe_collection(web(request).services, name)
    return render(request, "console/faces_delete.html", session=session, title=f"Delete {c.name}", c=c)


@router.post("/faces/{name}/delete")
def delete_collection(
    request: Request, name: str, session: OperatorForm, confirm: str = Form("")
) -> Response:
    svc = web(request).services
    c = col.describe_collection(svc, name)
    if confirm.strip() != c.name:
        message = f"Type the collection's id, {c.name}, to confirm."
        return render(
            request,
            "console/faces_delete.html",
            400,
            session=session,
            title=f"Delete {c.name}",
            c=c,
            message=message,
        )
    col.delete_collection(svc, c.name)
    return RedirectResponse(faces_url(notice="deleted", name=c.name), status_code=303)


# --- one collection ---------------------------------------------------------------------------------------


def _collection_page(
    request: Request, session: ReviewerSession, name: str, outcome: Outcome, offset: int = 0, notice: str = ""
) -> Response:
    """The collection's page; NotFound (a 404 page) when there is no such collection."""
    svc = web(request).services
    c = col.describe_collection(svc, name)
    offset = min(max(offset, 0), c.face_count)
    _, faces = col.list_faces(svc, c.name, offset=offset, limit=PAGE + 1)
    return render(
        request,
        "console/faces_collection.html",
        status=outcome.status,
        session=session,
        title=f"Faces · {c.name}",
        c=c,
        faces=faces[:PAGE],
        offset=offset,
        page=PAGE,
        more=len(faces) > PAGE,
        users=col.list_users(svc, c.name),
        outcome=outcome,
        notice=notice,
        quality_filters=QUALITY_FILTERS,
        max_index_faces=col.MAX_INDEX_FACES,
        max_search_faces=col.MAX_SEARCH_FACES,
        defaults={
            "quality_filter": "AUTO",
            "threshold": f"{col.DEFAULT_FACE_MATCH_THRESHOLD:g}",
            "max_faces": str(SEARCH_MAX_FACES),
            "user_threshold": f"{col.DEFAULT_ASSOCIATE_THRESHOLD:g}",
        },
        max_mb=MAX_UPLOAD // (1024 * 1024),
        base=faces_url(c.name),
    )


@router.get("/faces/{name}")
def collection(request: Request, name: str, session: Operator, offset: int = 0, notice: str = "") -> Response:
    text = NOTICES.get(notice, "").format(name=request.query_params.get("name", ""))
    return _collection_page(request, session, name, Outcome(), offset, text)


async def _photo(file: UploadFile | None) -> bytes:
    """The uploaded photo's bytes (one more than the limit at most: the use case says it is too large)."""
    if not isinstance(file, ReceivedFile) or not file.filename:  # FastAPI hands Starlette's UploadFile over
        raise InvalidInput("choose a photo first (JPEG or PNG)")
    return await file.read(MAX_UPLOAD + 1)


def _number(label: str, text: str, default: float) -> float:
    text = text.strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"{label} must be a number from 0 to 100, not {text!r}") from None
    if not math.isfinite(value):
        raise InvalidInput(f"{label} must be a number from 0 to 100, not {text!r}")
    return value


async def _analysed(request: Request, fn: Any, *args: Any) -> Any:
    """``fn(svc, analysers, *args)`` on the server's analysis threads, as the APIs run it."""
    from visionloop.bootstrap import server_analysis

    analysis = server_analysis(request.app.state)
    future = analysis.submit(fn, web(request).services, analysis.source, *args)
    return await asyncio.wrap_future(future)


async def _answer(request: Request, session: ReviewerSession, name: str, outcome: Outcome) -> Response:
    return await run_in_threadpool(_collection_page, request, session, name, outcome)


def _failed(outcome: Outcome, e: Exception, what: str) -> Outcome:
    if isinstance(e, VisionloopError):
        outcome.status, outcome.message = status_for(e), e.message
    else:  # the analyser broke: say so on the page, the details go to the log
        log.exception("console: %s failed", what)
        outcome.status, outcome.message = 500, f"{what} failed unexpectedly; the server's log says why."
    return outcome


@router.post("/faces/{name}/index")
async def index_photo(
    request: Request,
    name: str,
    session: OperatorForm,
    file: UploadFile | None = File(None),
    external_image_id: str = Form(""),
    max_faces: str = Form(""),
    quality_filter: str = Form("AUTO"),
) -> Response:
    typed = {
        "external_image_id": external_image_id,
        "index_max_faces": max_faces,
        "quality_filter": quality_filter,
    }
    outcome = Outcome(form="index", typed=typed)
    try:
        data = await _photo(file)
        options = col.IndexOptions(
            external_image_id.strip() or None,
            max_faces=whole_number(max_faces, "MaxFaces", None),
            quality_filter=quality_filter.strip().upper() or "AUTO",
        )
        result: col.IndexResult = await _analysed(request, col.index_faces, name, data, options)
        outcome.indexed = result
        outcome.picture = await run_in_threadpool(_picture, data, result)
    except Exception as e:  # noqa: BLE001 - every failure is shown on the page (see _failed)
        _failed(outcome, e, "Indexing the photo")
    return await _answer(request, session, name, outcome)


def _picture(data: bytes, result: col.IndexResult) -> Results:
    """The photo with its indexed faces (coloured, numbered as listed) and those left out (grey)."""
    preview, width, height = preview_image(data)
    picture = Results(preview, width, height, [], [])
    for i, x in enumerate(result.indexed):
        picture.shapes.append(picture_box(picture, x.detail.box, f"face {i + 1}", i, "indexed"))
    for i, u in enumerate(result.unindexed):
        shape = picture_box(picture, u.detail.box, ", ".join(u.reasons).lower(), i, "unindexed")
        picture.shapes.append({**shape, "colour": UNINDEXED_COLOUR})
    return picture


@router.post("/faces/{name}/search")
async def search_photo(
    request: Request,
    name: str,
    session: OperatorForm,
    file: UploadFile | None = File(None),
    threshold: str = Form(""),
    max_faces: str = Form(""),
) -> Response:
    outcome = Outcome(form="search", typed={"threshold": threshold, "max_faces": max_faces})
    try:
        data = await _photo(file)
        options = col.SearchOptions(
            max_faces=whole_number(max_faces, "Max faces", SEARCH_MAX_FACES) or 0,
            threshold=_number("The similarity threshold", threshold, col.DEFAULT_FACE_MATCH_THRESHOLD),
        )
        result: col.SearchResult = await _analysed(request, col.search_faces_by_image, name, data, options)
        outcome.search = result
        preview, width, height = await run_in_threadpool(preview_image, data)
        outcome.picture = Results(preview, width, height, [], [])
        if result.searched is not None:
            outcome.picture.shapes.append(
                picture_box(outcome.picture, result.searched.box, "searched", 0, "searched")
            )
    except Exception as e:  # noqa: BLE001 - every failure is shown on the page (see _failed)
        _failed(outcome, e, "The search")
    return await _answer(request, session, name, outcome)


@router.post("/faces/{name}/faces/delete")
def delete_face(request: Request, name: str, session: OperatorForm, face_id: str = Form("")) -> Response:
    outcome = Outcome(form="faces")
    try:
        _, failed = col.delete_faces(web(request).services, name, [face_id.strip()])
    except VisionloopError as e:
        return _collection_page(request, session, name, _failed(outcome, e, "Deleting the face"))
    if failed:
        reason = failed[0].reasons[0]
        outcome.status = 404 if reason == "FACE_NOT_FOUND" else 409
        outcome.message = (
            f"The face {face_id} is not in the collection."
            if outcome.status == 404
            else f"The face {face_id} belongs to the user {failed[0].user_id}: disassociate it first."
        )
        return _collection_page(request, session, name, outcome)
    return RedirectResponse(faces_url(name, notice="face-deleted", name=face_id), status_code=303)


@router.post("/faces/{name}/users")
def create_user(request: Request, name: str, session: OperatorForm, user_id: str = Form("")) -> Response:
    try:
        user = col.create_user(web(request).services, name, user_id.strip())
    except VisionloopError as e:
        outcome = _failed(Outcome(form="users", typed={"user_id": user_id}), e, "Creating the user")
        return _collection_page(request, session, name, outcome)
    return RedirectResponse(faces_url(name, notice="user-created", name=user.user_id), status_code=303)


@router.post("/faces/{name}/users/delete")
def delete_user(request: Request, name: str, session: OperatorForm, user_id: str = Form("")) -> Response:
    try:
        col.delete_user(web(request).services, name, user_id)
    except VisionloopError as e:
        return _collection_page(
            request, session, name, _failed(Outcome(form="users"), e, "Deleting the user")
        )
    return RedirectResponse(faces_url(name, notice="user-deleted", name=user_id), status_code=303)


@router.post("/faces/{name}/users/associate")
async def associate(
    request: Request,
    name: str,
    session: OperatorForm,
    user_id: str = Form(""),
    face_id: list[str] = Form([]),
    threshold: str = Form(""),
) -> Response:
    outcome = Outcome(form="associate", typed={"user_id": user_id, "user_threshold": threshold})
    try:
        if not user_id:
            raise InvalidInput("choose a user first (create one under Users)")
        if not face_id:
            raise InvalidInput("tick the faces to associate in the list of faces")
        limit = _number("The user match threshold", threshold, col.DEFAULT_ASSOCIATE_THRESHOLD)
        outcome.association = await _analysed(request, col.associate_faces, name, user_id, face_id, limit)
    except Exception as e:  # noqa: BLE001 - every failure is shown on the page (see _failed)
        _failed(outcome, e, "Associating the faces")
    return await _answer(request, session, name, outcome)


@router.post("/faces/{name}/users/disassociate")
def disassociate(
    request: Request, name: str, session: OperatorForm, user_id: str = Form(""), face_id: list[str] = Form([])
) -> Response:
    outcome = Outcome(form="disassociate", typed={"user_id": user_id})
    try:
        if not user_id:
            raise InvalidInput("choose a user first")
        if not face_id:
            raise InvalidInput("tick the faces to disassociate in the list of faces")
        outcome.association = col.disassociate_faces(web(request).services, name, user_id, face_id)
    except VisionloopError as e:
        _failed(outcome, e, "Disassociating the faces")
    return _collection_page(request, session, name, outcome)
