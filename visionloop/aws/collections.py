"""Face collections, faces and users over core.collections: the request members checked as Rekognition
checks them, and the answers in its shapes (Face, FaceRecord, FaceMatch, UserMatch ...). Operations that
read an image run the analyser on the server's analysis threads and return ``(future, finish)`` for
responses.Deferred; the others answer at once (they need the analyser's version and calibration only).

Collections are ``arn:aws:rekognition:{region}:{account}:collection/{id}``; their tags are kept with
them in the database (TagResource, UntagResource and ListTagsForResource come here for such an ARN)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from visionloop.aws import faces as face_shapes
from visionloop.aws.analysis import box
from visionloop.aws.backend import RekognitionBackend
from visionloop.aws.exceptions import (
    ConflictException,
    InvalidParameterException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from visionloop.aws.images import MAX_BYTES, image_member
from visionloop.aws.model_versions import FACE_MODEL_VERSION
from visionloop.aws.pagination import Page, page
from visionloop.aws.params import Params
from visionloop.core import analyzing, collections, faces
from visionloop.core.records.collections import FaceUser, StoredFace
from visionloop.errors import AlreadyExists, QuotaExceeded, Unavailable

Json = dict[str, Any]
Answer = tuple[Any, Callable[[Any], Json]]
COLLECTION_ARN = re.compile(
    r"^arn:[a-z\d-]+:rekognition:(?P<region>[a-z\d-]+):(?P<account>\d{12}):collection/(?P<id>[a-zA-Z0-9_.\-]{1,255})$"
)
ID = re.compile(r"^[a-zA-Z0-9_.\-]+$")
USER = re.compile(r"^[a-zA-Z0-9_.\-:]+$")
FACE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TOKEN = re.compile(r"^[a-zA-Z0-9-_]+$")
MAX_LIST = 4096  # ListCollections', ListFaces' MaxResults
DEFAULT_LIST = 1000


def _analysers(backend: RekognitionBackend) -> analyzing.AnalyserSource:
    if backend.analysis is None:
        raise Unavailable("the pretrained analysers are not set up on this server")
    return backend.analysis.source


def _collection_id(p: Params) -> str:
    return p.required_string("CollectionId", max_len=255, pattern=ID)


def _user_id(p: Params) -> str:
    return p.required_string("UserId", max_len=128, pattern=USER)


def _face_ids(p: Params, max_items: int) -> list[str]:
    return p.strings("FaceIds", min_items=1, max_items=max_items, pattern=FACE) or []


def _page(p: Params, operation: str, filters: dict[str, object], hi: int, default: int) -> Page:
    """NextToken as pagination.page reads it, with this operation's own MaxResults range (0 or absent:
    ``default``)."""
    limit = p.integer("MaxResults", lo=0, hi=hi) or default
    without = Params({k: v for k, v in p.data.items() if k != "MaxResults"}, p.path)
    return dataclasses.replace(page(without, operation, filters), limit=limit)


def _paged(items: dict[str, Any], pg: Page, count: int, more: bool) -> Json:
    token = pg.token_after(count, more)
    return {**items, "NextToken": token} if token else items


def _threshold(p: Params, name: str, default: float) -> float:
    value = p.number(name, lo=0, hi=100)
    return default if value is None else value


# --- collections -----------------------------------------------------------------------------------------


def create_collection(backend: RekognitionBackend, p: Params) -> Json:
    name, tags = _collection_id(p), p.tags()
    c = collections.create_collection(backend.svc, _analysers(backend), name, tags)
    arn = collections.collection_arn(backend.res.region, backend.res.account, c.name)
    return {"StatusCode": 200, "CollectionArn": arn, "FaceModelVersion": FACE_MODEL_VERSION}


def describe_collection(backend: RekognitionBackend, p: Params) -> Json:
    c = collections.describe_collection(backend.svc, _collection_id(p))
    return {
        "FaceCount": c.face_count,
        "FaceModelVersion": FACE_MODEL_VERSION,
        "CollectionARN": collections.collection_arn(backend.res.region, backend.res.account, c.name),
        "CreationTimestamp": round(c.created_at.timestamp(), 3),
        "UserCount": c.user_count,
    }


def list_collections(backend: RekognitionBackend, p: Params) -> Json:
    pg = _page(p, "ListCollections", {}, MAX_LIST, DEFAULT_LIST)
    chunk, token = pg.slice(collections.list_collections(backend.svc))
    out: Json = {
        "CollectionIds": [c.name for c in chunk],
        "FaceModelVersions": [FACE_MODEL_VERSION for _ in chunk],
    }
    return {**out, "NextToken": token} if token else out


def delete_collection(backend: RekognitionBackend, p: Params) -> Json:
    collections.delete_collection(backend.svc, _collection_id(p))
    return {"StatusCode": 200}


def collection_of(backend: RekognitionBackend, arn: str) -> str | None:
    """The collection id of a collection ARN (None for another kind of ARN); ResourceNotFoundException
    when it names another region or account or no collection."""
    m = COLLECTION_ARN.match(arn)
    if m is None:
        return None
    if (m["region"], m["account"]) != (backend.res.region, backend.res.account):
        raise ResourceNotFoundException(f"The collection {arn} does not exist.")
    return m["id"]


def tag(backend: RekognitionBackend, arn: str, tags: dict[str, str]) -> bool:
    """Add tags to the collection of ``arn``; False when ``arn`` is no collection ARN."""
    name = collection_of(backend, arn)
    if name is not None:
        collections.tag_collection(backend.svc, name, tags)
    return name is not None


def untag(backend: RekognitionBackend, arn: str, keys: list[str]) -> bool:
    name = collection_of(backend, arn)
    if name is not None:
        collections.untag_collection(backend.svc, name, keys)
    return name is not None


def tags_of(backend: RekognitionBackend, arn: str) -> dict[str, str] | None:
    """The tags of the collection of ``arn``; None when ``arn`` is no collection ARN."""
    name = collection_of(backend, arn)
    return None if name is None else collections.describe_collection(backend.svc, name).tags


# --- faces -----------------------------------------------------------------------------------------------


def face(f: StoredFace) -> Json:
    """Rekognition's Face, with the AWS-shaped version of the model that indexed it."""
    out: Json = {"FaceId": f.face_id, "BoundingBox": box(f.box), "ImageId": f.image_id}
    if f.external_image_id is not None:
        out["ExternalImageId"] = f.external_image_id
    out["Confidence"] = f.confidence
    if f.user_id is not None:
        out["UserId"] = f.user_id
    out["IndexFacesModelVersion"] = FACE_MODEL_VERSION
    return out


def index_faces(backend: RekognitionBackend, p: Params) -> Answer:
    name = _collection_id(p)
    attributes = p.strings("DetectionAttributes") or ["DEFAULT"]
    for a in attributes:
        if a not in faces.ATTRIBUTE_NAMES:
            raise InvalidParameterException(
                f"Unknown attribute {a!r}; use one of {', '.join(faces.ATTRIBUTE_NAMES)}."
            )
    max_faces = p.integer("MaxFaces", lo=1)
    options = collections.check_index_options(
        collections.IndexOptions(
            external_image_id=p.string("ExternalImageId", min_len=1, max_len=255, pattern=USER),
            attributes=tuple(attributes),
            max_faces=None if max_faces is None else min(max_faces, collections.MAX_INDEX_FACES),
            quality_filter=str(p.enum("QualityFilter", faces.QUALITY_FILTERS) or "AUTO"),
        )
    )
    image = image_member(p, max_bytes=MAX_BYTES)
    svc = backend.svc

    def run(analysers: analyzing.AnalyserSource) -> collections.IndexResult:
        return collections.index_faces(svc, analysers, name, face_shapes.read(svc, image), options)

    return face_shapes.submit(backend.analysis, run), index_answer


def index_answer(r: collections.IndexResult) -> Json:
    return {
        "FaceRecords": [
            {"Face": face(x.face), "FaceDetail": face_shapes.face_detail(x.detail)} for x in r.indexed
        ],
        "FaceModelVersion": FACE_MODEL_VERSION,
        "UnindexedFaces": [
            {"Reasons": list(u.reasons), "FaceDetail": face_shapes.face_detail(u.detail)} for u in r.unindexed
        ],
    }


def list_faces(backend: RekognitionBackend, p: Params) -> Json:
    name = _collection_id(p)
    user_id = p.string("UserId", min_len=1, max_len=128, pattern=USER)
    face_ids = p.strings("FaceIds", min_items=1, max_items=MAX_LIST, pattern=FACE)
    pg = _page(p, "ListFaces", {"c": name, "u": user_id, "f": face_ids}, MAX_LIST, DEFAULT_LIST)
    c, found = collections.list_faces(
        backend.svc, name, user_id=user_id, face_ids=face_ids, offset=pg.offset, limit=pg.limit + 1
    )
    chunk = found[: pg.limit]
    return _paged(
        {"Faces": [face(f) for f in chunk], "FaceModelVersion": FACE_MODEL_VERSION},
        pg,
        len(chunk),
        len(found) > pg.limit,
    )


def delete_faces(backend: RekognitionBackend, p: Params) -> Json:
    name = _collection_id(p)
    face_ids = p.strings("FaceIds", min_items=1, max_items=MAX_LIST, pattern=FACE)
    if face_ids is None:
        raise InvalidParameterException(
            "1 validation error detected: Value 'null' at 'faceIds' failed to satisfy constraint: "
            "Member must not be null"
        )
    deleted, failed = collections.delete_faces(backend.svc, name, face_ids)
    return {"DeletedFaces": deleted, "UnsuccessfulFaceDeletions": [_unsuccessful(u) for u in failed]}


def _unsuccessful(u: collections.UnsuccessfulFace) -> Json:
    out: Json = {"FaceId": u.face_id}
    if u.user_id is not None:
        out["UserId"] = u.user_id
    if u.confidence is not None:
        out["Confidence"] = u.confidence
    out["Reasons"] = list(u.reasons)
    return out


def _search_options(p: Params) -> collections.SearchOptions:
    return collections.check_search_options(
        collections.SearchOptions(
            max_faces=p.integer("MaxFaces", lo=1, hi=collections.MAX_SEARCH_FACES)
            or collections.MAX_SEARCH_FACES,
            threshold=_threshold(p, "FaceMatchThreshold", collections.DEFAULT_FACE_MATCH_THRESHOLD),
            quality_filter=str(p.enum("QualityFilter", faces.QUALITY_FILTERS) or "NONE"),
        )
    )


def _face_matches(r: collections.SearchResult) -> list[Json]:
    return [{"Similarity": m.similarity, "Face": face(m.face)} for m in r.matches]


def search_faces(backend: RekognitionBackend, p: Params) -> Json:
    name = _collection_id(p)
    face_id = p.required_string("FaceId", pattern=FACE)
    r = collections.search_faces(backend.svc, _analysers(backend), name, face_id, _search_options(p))
    return {
        "SearchedFaceId": face_id,
        "FaceMatches": _face_matches(r),
        "FaceModelVersion": FACE_MODEL_VERSION,
    }


def search_faces_by_image(backend: RekognitionBackend, p: Params) -> Answer:
    name, options = _collection_id(p), _search_options(p)
    image = image_member(p, max_bytes=MAX_BYTES)
    svc = backend.svc

    def run(analysers: analyzing.AnalyserSource) -> collections.SearchResult:
        return collections.search_faces_by_image(svc, analysers, name, face_shapes.read(svc, image), options)

    return face_shapes.submit(backend.analysis, run), search_by_image_answer


def search_by_image_answer(r: collections.SearchResult) -> Json:
    assert r.searched is not None
    return {
        "SearchedFaceBoundingBox": box(r.searched.box),
        "SearchedFaceConfidence": r.searched.confidence,
        "FaceMatches": _face_matches(r),
        "FaceModelVersion": FACE_MODEL_VERSION,
    }


# --- users -----------------------------------------------------------------------------------------------


def _token(p: Params) -> str | None:
    """ClientRequestToken (the SDKs fill it in): checked; CreateUser keeps it to know a retry."""
    return p.string("ClientRequestToken", min_len=1, max_len=64, pattern=TOKEN)


def create_user(backend: RekognitionBackend, p: Params) -> Json:
    """A retry of CreateUser (the ClientRequestToken that created the user) succeeds; another request for
    an existing user is a ConflictException."""
    name, user_id, token = _collection_id(p), _user_id(p), _token(p)
    try:
        collections.create_user(backend.svc, name, user_id, token)
    except AlreadyExists as e:
        raise ConflictException(e.message) from None
    return {}


def delete_user(backend: RekognitionBackend, p: Params) -> Json:
    name, user_id = _collection_id(p), _user_id(p)
    _token(p)
    collections.delete_user(backend.svc, name, user_id)
    return {}


def user(u: FaceUser) -> Json:
    return {"UserId": u.user_id, "UserStatus": u.status.value}


def list_users(backend: RekognitionBackend, p: Params) -> Json:
    name = _collection_id(p)
    pg = _page(p, "ListUsers", {"c": name}, collections.MAX_USERS, collections.MAX_USERS)
    found = collections.list_users(backend.svc, name, offset=pg.offset, limit=pg.limit + 1)
    chunk = found[: pg.limit]
    return _paged({"Users": [user(u) for u in chunk]}, pg, len(chunk), len(found) > pg.limit)


def associate_faces(backend: RekognitionBackend, p: Params) -> Json:
    name, user_id = _collection_id(p), _user_id(p)
    face_ids = _face_ids(p, collections.MAX_FACES_PER_USER)
    threshold = _threshold(p, "UserMatchThreshold", collections.DEFAULT_ASSOCIATE_THRESHOLD)
    _token(p)
    try:
        r = collections.associate_faces(backend.svc, _analysers(backend), name, user_id, face_ids, threshold)
    except QuotaExceeded as e:
        raise ServiceQuotaExceededException(e.message) from None
    return {
        "AssociatedFaces": [{"FaceId": f} for f in r.done],
        "UnsuccessfulFaceAssociations": [_unsuccessful(u) for u in r.failed],
        "UserStatus": r.status.value,
    }


def disassociate_faces(backend: RekognitionBackend, p: Params) -> Json:
    name, user_id = _collection_id(p), _user_id(p)
    face_ids = _face_ids(p, collections.MAX_FACES_PER_USER)
    _token(p)
    r = collections.disassociate_faces(backend.svc, name, user_id, face_ids)
    return {
        "DisassociatedFaces": [{"FaceId": f} for f in r.done],
        "UnsuccessfulFaceDisassociations": [_unsuccessful(u) for u in r.failed],
        "UserStatus": r.status.value,
    }


def _user_options(p: Params) -> collections.UserSearchOptions:
    return collections.check_user_search_options(
        collections.UserSearchOptions(
            max_users=p.integer("MaxUsers", lo=1, hi=collections.MAX_USERS) or collections.MAX_USERS,
            threshold=_threshold(p, "UserMatchThreshold", collections.DEFAULT_USER_MATCH_THRESHOLD),
            quality_filter=str(p.enum("QualityFilter", faces.QUALITY_FILTERS) or "NONE"),
        )
    )


def _user_matches(r: collections.UserSearchResult) -> list[Json]:
    return [{"Similarity": m.similarity, "User": user(m.user)} for m in r.matches]


def search_users(backend: RekognitionBackend, p: Params) -> Json:
    name = _collection_id(p)
    user_id = p.string("UserId", min_len=1, max_len=128, pattern=USER)
    face_id = p.string("FaceId", pattern=FACE)
    if (user_id is None) == (face_id is None):
        raise InvalidParameterException("SearchUsers needs exactly one of UserId and FaceId.")
    r = collections.search_users(
        backend.svc, _analysers(backend), name, user_id=user_id, face_id=face_id, options=_user_options(p)
    )
    out: Json = {"UserMatches": _user_matches(r), "FaceModelVersion": FACE_MODEL_VERSION}
    if face_id is not None:
        out["SearchedFace"] = {"FaceId": face_id}
    else:
        out["SearchedUser"] = {"UserId": user_id}
    return out


def search_users_by_image(backend: RekognitionBackend, p: Params) -> Answer:
    name, options = _collection_id(p), _user_options(p)
    image = image_member(p, max_bytes=MAX_BYTES)
    svc = backend.svc

    def run(analysers: analyzing.AnalyserSource) -> collections.UserSearchResult:
        return collections.search_users_by_image(svc, analysers, name, face_shapes.read(svc, image), options)

    return face_shapes.submit(backend.analysis, run), search_users_by_image_answer


def search_users_by_image_answer(r: collections.UserSearchResult) -> Json:
    assert r.searched is not None
    return {
        "UserMatches": _user_matches(r),
        "FaceModelVersion": FACE_MODEL_VERSION,
        "SearchedFace": {"FaceDetail": face_shapes.face_detail(r.searched)},
        "UnsearchedFaces": [
            {"FaceDetails": face_shapes.face_detail(u.detail), "Reasons": list(u.reasons)}
            for u in r.unsearched
        ],
    }
