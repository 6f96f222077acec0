"""Native REST: face collections, their faces and users, under ``/api/v1/collections``.

    GET/POST /collections                      list; create {name, tags}
    GET/DELETE /collections/{name}             describe; delete (faces, vectors and users with it)
    GET/POST /collections/{name}/faces         list (?user_id, offset, limit); index an image
    DELETE /collections/{name}/faces/{face_id}
    GET /collections/{name}/faces/{face_id}/matches        SearchFaces
    POST /collections/{name}/search                        SearchFacesByImage
    GET/POST /collections/{name}/users         list; create {user_id}
    DELETE /collections/{name}/users/{user_id}
    POST /collections/{name}/users/{user_id}/faces         associate {face_ids, threshold}
    POST /collections/{name}/users/{user_id}/faces/remove  disassociate {face_ids}
    GET /collections/{name}/users/{user_id}/matches        SearchUsers
    POST /collections/{name}/users/search                  SearchUsersByImage

An image comes as the analysers take it (a multipart ``file``, the raw body with the options in the query
string, or JSON with ``image_base64`` or ``s3_object``) and is analysed on the server's analysis threads."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from visionloop.api import images
from visionloop.api.analyze import AnalysisDep, ImageIn, read_request, record_json
from visionloop.api.deps import Offset, ServicesDep
from visionloop.core import collections as col
from visionloop.core.records.collections import Collection, FaceUser, StoredFace
from visionloop.errors import Conflict, NotFound

router = APIRouter(prefix="/collections", tags=["face collections"])
Limit = Annotated[int, Query(ge=1, le=4096, description="At most this many")]
Threshold = Annotated[float | None, Query(description="Similarity 0-100 (default 80)")]
MaxFaces = Annotated[int | None, Query(description="At most this many matches (default 4096)")]
QualityFilter = Annotated[str | None, Query(description="NONE, AUTO, LOW, MEDIUM, HIGH")]


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    tags: dict[str, str] = Field(default_factory=dict)


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str


class FacesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    face_ids: list[str] = Field(min_length=1, max_length=col.MAX_FACES_PER_USER)
    threshold: float = Field(default=col.DEFAULT_ASSOCIATE_THRESHOLD, description="AssociateFaces only")


# --- records to JSON (the CLI's --json prints the same) -------------------------------------------------


def collection_json(c: Collection) -> dict[str, Any]:
    return {
        "name": c.name,
        "created_at": c.created_at.isoformat(),
        "face_model_version": c.face_model_version,
        "face_count": c.face_count,
        "user_count": c.user_count,
        "tags": c.tags,
    }


def face_json(f: StoredFace) -> dict[str, Any]:
    return {
        "face_id": f.face_id,
        "image_id": f.image_id,
        "external_image_id": f.external_image_id,
        "box": record_json(f.box),
        "confidence": f.confidence,
        "user_id": f.user_id,
        "created_at": f.created_at.isoformat(),
    }


def user_json(u: FaceUser) -> dict[str, Any]:
    return {"user_id": u.user_id, "status": u.status.value, "face_count": u.face_count}


def index_json(r: col.IndexResult) -> dict[str, Any]:
    return {
        "faces": [{"face": face_json(x.face), "detail": record_json(x.detail)} for x in r.indexed],
        "unindexed_faces": [
            {"reasons": list(u.reasons), "detail": record_json(u.detail)} for u in r.unindexed
        ],
        "model_version": r.version,
    }


def search_json(r: col.SearchResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "matches": [{"similarity": m.similarity, "face": face_json(m.face)} for m in r.matches],
        "model_version": r.version,
    }
    if r.searched is not None:
        out["searched_face"] = record_json(r.searched)
    return out


def user_search_json(r: col.UserSearchResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "matches": [{"similarity": m.similarity, "user": user_json(m.user)} for m in r.matches],
        "model_version": r.version,
    }
    if r.searched is not None:
        out["searched_face"] = record_json(r.searched)
        out["unsearched_faces"] = [
            {"reasons": list(u.reasons), "detail": record_json(u.detail)} for u in r.unsearched
        ]
    return out


def association_json(r: col.Association) -> dict[str, Any]:
    failed = [
        {"face_id": u.face_id, "reasons": list(u.reasons), "user_id": u.user_id, "confidence": u.confidence}
        for u in r.failed
    ]
    return {"face_ids": list(r.done), "unsuccessful": failed, "user_status": r.status.value}


# --- collections -----------------------------------------------------------------------------------------


@router.get("")
def list_collections(svc: ServicesDep) -> dict[str, Any]:
    return {"collections": [collection_json(c) for c in col.list_collections(svc)]}


@router.post("", status_code=201)
def create_collection(body: CollectionIn, svc: ServicesDep, analysis: AnalysisDep) -> dict[str, Any]:
    """A new collection of the server's face model (409 when the name is taken)."""
    return collection_json(col.create_collection(svc, analysis.source, body.name, body.tags))


@router.get("/{name}")
def describe_collection(name: str, svc: ServicesDep) -> dict[str, Any]:
    return collection_json(col.describe_collection(svc, name))


@router.delete("/{name}", status_code=204)
def delete_collection(name: str, svc: ServicesDep) -> Response:
    """The collection with its faces, their vectors and its users."""
    col.delete_collection(svc, name)
    return Response(status_code=204)


# --- faces -----------------------------------------------------------------------------------------------


@router.get("/{name}/faces")
def list_faces(
    name: str, svc: ServicesDep, user_id: str | None = None, offset: Offset = 0, limit: Limit = 1000
) -> dict[str, Any]:
    c, found = col.list_faces(svc, name, user_id=user_id, offset=offset, limit=limit)
    return {"faces": [face_json(f) for f in found], "model_version": c.face_model_version}


@router.post("/{name}/faces", status_code=201, openapi_extra=images.image_request_body(ImageIn))
async def index_faces(
    name: str,
    request: Request,
    svc: ServicesDep,
    analysis: AnalysisDep,
    external_image_id: str | None = None,
    max_faces: Annotated[int | None, Query(description="Index at most the largest N (1-100)")] = None,
    quality_filter: QualityFilter = None,
    attributes: Annotated[list[str] | None, Query(description="DEFAULT, ALL, EYES_OPEN, ...")] = None,
) -> dict[str, Any]:
    """IndexFaces: store the image's faces that pass the quality filter (AUTO by default)."""
    image, _ = await read_request(request, ImageIn)
    options = col.IndexOptions(
        external_image_id, tuple(attributes or ("DEFAULT",)), max_faces, quality_filter or "AUTO"
    )
    future = analysis.submit(col.index_faces, svc, analysis.source, name, image, options)
    return index_json(await asyncio.wrap_future(future))


@router.delete("/{name}/faces/{face_id}", status_code=204)
def delete_face(name: str, face_id: str, svc: ServicesDep) -> Response:
    """404 when the face is not there, 409 while a user holds it."""
    _, failed = col.delete_faces(svc, name, [face_id])
    if failed and failed[0].reasons == ("FACE_NOT_FOUND",):
        raise NotFound(f"the face {face_id} is not in the collection {name!r}")
    if failed:
        raise Conflict(f"the face {face_id} belongs to the user {failed[0].user_id!r}; disassociate it first")
    return Response(status_code=204)


@router.get("/{name}/faces/{face_id}/matches")
def search_faces(
    name: str,
    face_id: str,
    svc: ServicesDep,
    analysis: AnalysisDep,
    threshold: Threshold = None,
    max_faces: MaxFaces = None,
) -> dict[str, Any]:
    """SearchFaces: the faces like a stored face (itself left out)."""
    options = col.SearchOptions(
        max_faces or col.MAX_SEARCH_FACES,
        col.DEFAULT_FACE_MATCH_THRESHOLD if threshold is None else threshold,
    )
    return search_json(col.search_faces(svc, analysis.source, name, face_id, options))


@router.post("/{name}/search", openapi_extra=images.image_request_body(ImageIn))
async def search_faces_by_image(
    name: str,
    request: Request,
    svc: ServicesDep,
    analysis: AnalysisDep,
    threshold: Threshold = None,
    max_faces: MaxFaces = None,
    quality_filter: QualityFilter = None,
) -> dict[str, Any]:
    """SearchFacesByImage: the faces like the image's largest face."""
    image, _ = await read_request(request, ImageIn)
    options = col.SearchOptions(
        max_faces or col.MAX_SEARCH_FACES,
        col.DEFAULT_FACE_MATCH_THRESHOLD if threshold is None else threshold,
        quality_filter or "NONE",
    )
    future = analysis.submit(col.search_faces_by_image, svc, analysis.source, name, image, options)
    return search_json(await asyncio.wrap_future(future))


# --- users -----------------------------------------------------------------------------------------------


@router.get("/{name}/users")
def list_users(name: str, svc: ServicesDep, offset: Offset = 0, limit: Limit = 500) -> dict[str, Any]:
    return {"users": [user_json(u) for u in col.list_users(svc, name, offset=offset, limit=limit)]}


@router.post("/{name}/users", status_code=201)
def create_user(name: str, body: UserIn, svc: ServicesDep) -> dict[str, Any]:
    return user_json(col.create_user(svc, name, body.user_id))


@router.delete("/{name}/users/{user_id}", status_code=204)
def delete_user(name: str, user_id: str, svc: ServicesDep) -> Response:
    """The user; its faces stay, associated with nobody."""
    col.delete_user(svc, name, user_id)
    return Response(status_code=204)


@router.post("/{name}/users/{user_id}/faces")
def associate_faces(
    name: str, user_id: str, body: FacesIn, svc: ServicesDep, analysis: AnalysisDep
) -> dict[str, Any]:
    """AssociateFaces: faces less similar than ``threshold`` to the user's faces are refused."""
    r = col.associate_faces(svc, analysis.source, name, user_id, body.face_ids, body.threshold)
    return association_json(r)


@router.post("/{name}/users/{user_id}/faces/remove")
def disassociate_faces(name: str, user_id: str, body: FacesIn, svc: ServicesDep) -> dict[str, Any]:
    return association_json(col.disassociate_faces(svc, name, user_id, body.face_ids))


@router.get("/{name}/users/{user_id}/matches")
def search_users(
    name: str,
    user_id: str,
    svc: ServicesDep,
    analysis: AnalysisDep,
    threshold: Threshold = None,
    max_users: Annotated[int | None, Query(description="At most this many (default 500)")] = None,
) -> dict[str, Any]:
    """SearchUsers: the users like this one (by its faces)."""
    options = col.UserSearchOptions(
        max_users or col.MAX_USERS, col.DEFAULT_USER_MATCH_THRESHOLD if threshold is None else threshold
    )
    return user_search_json(col.search_users(svc, analysis.source, name, user_id=user_id, options=options))


@router.post("/{name}/users/search", openapi_extra=images.image_request_body(ImageIn))
async def search_users_by_image(
    name: str,
    request: Request,
    svc: ServicesDep,
    analysis: AnalysisDep,
    threshold: Threshold = None,
    max_users: Annotated[int | None, Query(description="At most this many (default 500)")] = None,
    quality_filter: QualityFilter = None,
) -> dict[str, Any]:
    """SearchUsersByImage: the users like the image's largest face."""
    image, _ = await read_request(request, ImageIn)
    options = col.UserSearchOptions(
        max_users or col.MAX_USERS,
        col.DEFAULT_USER_MATCH_THRESHOLD if threshold is None else threshold,
        quality_filter or "NONE",
    )
    future = analysis.submit(col.search_users_by_image, svc, analysis.source, name, image, options)
    return user_search_json(await asyncio.wrap_future(future))
