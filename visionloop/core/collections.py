"""Use cases of face collections, as Rekognition has them: create, describe, list and delete collections
(with tags), index faces from images, list and delete them, search a collection by face or by image, and
the users faces are associated with (CreateUser, AssociateFaces, SearchUsers, ...).

A collection records the face model that indexed it (``face_model_version``): vectors of two models do
not compare, so a collection refuses faces and searches from another. Faces are searched exactly (the
repository's ``nearest_faces``, brute force over the collection's vectors held in memory); distances
read as similarity, and thresholds as distances, by core.faces (the same mapping as CompareFaces).
No image is kept: a face is its box, ids and vector."""

from __future__ import annotations

import math
import re
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from visionloop.core.analyzing import AnalyserSource, FaceAnalyserPort, ImageSource, read_image
from visionloop.core.faces import (
    check_attributes,
    check_quality_filter,
    distance,
    quality_reasons,
    similarity,
)
from visionloop.core.records.collections import Collection, FaceUser, NewFace, StoredFace, UserStatus
from visionloop.core.records.faces import FaceDetail
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, NotFound

COLLECTION_ID = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
USER_ID = re.compile(r"^[a-zA-Z0-9_.\-:]{1,128}$")
EXTERNAL_IMAGE_ID = re.compile(r"^[a-zA-Z0-9_.\-:]{1,255}$")
FACE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_INDEX_FACES = 100  # IndexFaces indexes at most the 100 largest faces of an image
MAX_FACES_PER_USER = 100
MAX_SEARCH_FACES = 4096
MAX_USERS = 500
MAX_TAGS = 200
DEFAULT_FACE_MATCH_THRESHOLD = 80.0
DEFAULT_USER_MATCH_THRESHOLD = 80.0
DEFAULT_ASSOCIATE_THRESHOLD = 75.0  # AssociateFaces' UserMatchThreshold


def collection_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:rekognition:{region}:{account}:collection/{name}"


def check_name(pattern: re.Pattern[str], what: str, value: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidInput(f"{what} must match {pattern.pattern}, not {value!r}")
    return value


def _check_threshold(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a number from 0 to 100, not {value!r}")
    if not 0 <= value <= 100:
        raise InvalidInput(f"{name} must be a number from 0 to 100, not {value!r}")
    return float(value)


def _check_count(name: str, value: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise InvalidInput(f"{name} must be an integer from 1 to {hi}, not {value!r}")
    return value


def _face_ids(face_ids: Sequence[str]) -> list[str]:
    for f in face_ids:
        check_name(FACE_ID, "a face id", f)
    return list(dict.fromkeys(face_ids))


def _vector(embedding: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(embedding)}f", *embedding)


# --- collections ---------------------------------------------------------------------------------------


def _analyser(analysers: AnalyserSource) -> FaceAnalyserPort:
    analyser: FaceAnalyserPort = analysers("faces")
    return analyser


def create_collection(
    svc: Services, analysers: AnalyserSource, name: str, tags: Mapping[str, str] | None = None
) -> Collection:
    """A new, empty collection of the current face model; AlreadyExists when the name is taken."""
    check_name(COLLECTION_ID, "a collection id", name)
    tags = dict(tags or {})
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"a collection takes at most {MAX_TAGS} tags, not {len(tags)}")
    analyser = _analyser(analysers)
    return svc.repo.create_collection(name, analyser.version, analyser.embedding_dim, tags, svc.clock.now())


def describe_collection(svc: Services, name: str) -> Collection:
    """The collection with its face and user counts; NotFound when there is none of that name."""
    return svc.repo.get_collection(check_name(COLLECTION_ID, "a collection id", name))


def list_collections(svc: Services) -> list[Collection]:
    return svc.repo.list_collections()


def delete_collection(svc: Services, name: str) -> None:
    """The collection with its faces, their vectors and its users."""
    svc.repo.delete_collection(describe_collection(svc, name).id)


def tag_collection(svc: Services, name: str, tags: Mapping[str, str]) -> None:
    c = describe_collection(svc, name)
    merged = {**c.tags, **tags}
    if len(merged) > MAX_TAGS:
        raise InvalidInput(f"a collection takes at most {MAX_TAGS} tags, not {len(merged)}")
    svc.repo.set_collection_tags(c.id, merged)


def untag_collection(svc: Services, name: str, keys: Sequence[str]) -> None:
    c = describe_collection(svc, name)
    svc.repo.set_collection_tags(c.id, {k: v for k, v in c.tags.items() if k not in set(keys)})


def _searchable(svc: Services, analysers: AnalyserSource, name: str) -> tuple[Collection, FaceAnalyserPort]:
    """The collection (not counted) and the analyser, which must be the model that indexed it."""
    c = svc.repo.get_collection(check_name(COLLECTION_ID, "a collection id", name), counts=False)
    analyser = _analyser(analysers)
    if analyser.version != c.face_model_version:
        raise InvalidInput(
            f"the collection {name!r} holds faces of the face model {c.face_model_version!r}; this server "
            f"runs {analyser.version!r}, whose vectors do not compare with them"
        )
    return c, analyser


# --- faces ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexOptions:
    external_image_id: str | None = None
    attributes: tuple[str, ...] = ("DEFAULT",)
    max_faces: int | None = None
    quality_filter: str = "AUTO"


@dataclass(frozen=True)
class IndexedFace:
    face: StoredFace
    detail: FaceDetail


@dataclass(frozen=True)
class UnindexedFace:
    detail: FaceDetail
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class IndexResult:
    indexed: tuple[IndexedFace, ...]
    unindexed: tuple[UnindexedFace, ...]
    version: str


def check_index_options(o: IndexOptions) -> IndexOptions:
    if o.external_image_id is not None:
        check_name(EXTERNAL_IMAGE_ID, "external_image_id", o.external_image_id)
    check_attributes(o.attributes)
    if o.max_faces is not None:
        _check_count("max_faces", o.max_faces, MAX_INDEX_FACES)
    check_quality_filter(o.quality_filter)
    return o


def _sorted_out(
    svc: Services, data: bytes, faces: list[FaceDetail], quality_filter: str, max_faces: int
) -> tuple[list[FaceDetail], list[UnindexedFace]]:
    """The faces (largest first) that pass the quality filter, at most ``max_faces`` of them, and the
    others with Rekognition's reasons."""
    size = (0, 0)
    if quality_filter != "NONE":
        info = svc.inspector.inspect(data)
        size = (info.width, info.height)
    kept: list[FaceDetail] = []
    left: list[UnindexedFace] = []
    for face in faces:
        reasons = quality_reasons(face, quality_filter, size) if quality_filter != "NONE" else ()
        if not reasons and len(kept) >= max_faces:
            reasons = ("EXCEEDS_MAX_FACES",)
        if reasons:
            left.append(UnindexedFace(face, reasons))
        else:
            kept.append(face)
    return kept, left


def _public(face: FaceDetail, wanted: tuple[str, ...]) -> FaceDetail:
    """The face as answered: no vector, only the estimated attributes asked for."""
    return replace(face, embedding=None, attributes=tuple(a for a in face.attributes if a.name in wanted))


def index_faces(
    svc: Services,
    analysers: AnalyserSource,
    name: str,
    image: ImageSource,
    options: IndexOptions | None = None,
) -> IndexResult:
    """IndexFaces: detect the image's faces, keep those that pass the quality filter (the ``max_faces``
    largest, at most 100) with their vectors, and say why the others were left out."""
    o = check_index_options(options or IndexOptions())
    c, analyser = _searchable(svc, analysers, name)
    wanted = check_attributes(o.attributes)
    data = read_image(svc, image)
    found = analyser.detect(data, attributes=bool(wanted), embeddings=True)
    kept, left = _sorted_out(svc, data, found, o.quality_filter, o.max_faces or MAX_INDEX_FACES)
    image_id = str(uuid.uuid4())
    new = []
    for face in kept:
        assert face.embedding is not None, "the face analyser gave no identity vector"
        if len(face.embedding) != c.embedding_dim:
            raise InvalidInput(
                f"the analyser's vectors have {len(face.embedding)} values, not {c.embedding_dim}"
            )
        vector = _vector(face.embedding)
        new.append(
            NewFace(str(uuid.uuid4()), image_id, o.external_image_id, face.box, face.confidence, vector)
        )
    stored = svc.repo.add_faces(c.id, new, svc.clock.now())
    return IndexResult(
        tuple(IndexedFace(s, _public(f, wanted)) for s, f in zip(stored, kept, strict=True)),
        tuple(UnindexedFace(_public(u.detail, wanted), u.reasons) for u in left),
        c.face_model_version,
    )


def list_faces(
    svc: Services,
    name: str,
    *,
    user_id: str | None = None,
    face_ids: Sequence[str] | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[Collection, list[StoredFace]]:
    """The collection and its faces (oldest first), of one user or by id when asked."""
    c = describe_collection(svc, name)
    if user_id is not None:
        check_name(USER_ID, "a user id", user_id)
    ids = None if face_ids is None else _face_ids(face_ids)
    return c, svc.repo.list_faces(c.id, user_id=user_id, face_ids=ids, offset=offset, limit=limit)


@dataclass(frozen=True)
class UnsuccessfulFace:
    """A face an operation left as it was: Rekognition's reasons, the user that holds it, and for
    AssociateFaces' LOW_MATCH_CONFIDENCE the similarity to the user's faces."""

    face_id: str
    reasons: tuple[str, ...]
    user_id: str | None = None
    confidence: float | None = None


def delete_faces(
    svc: Services, name: str, face_ids: Sequence[str]
) -> tuple[list[str], list[UnsuccessfulFace]]:
    """DeleteFaces: the faces deleted, and those not: FACE_NOT_FOUND, or ASSOCIATED_TO_AN_EXISTING_USER
    (a user's face is deleted only once it is disassociated)."""
    c = describe_collection(svc, name)
    ids = _face_ids(face_ids)
    faces = {f.face_id: f for f in svc.repo.list_faces(c.id, face_ids=ids)}
    failed = []
    free = []
    for f in ids:
        if f not in faces:
            failed.append(UnsuccessfulFace(f, ("FACE_NOT_FOUND",)))
        elif faces[f].user_id is not None:
            failed.append(UnsuccessfulFace(f, ("ASSOCIATED_TO_AN_EXISTING_USER",), faces[f].user_id))
        else:
            free.append(f)
    deleted = svc.repo.delete_faces(c.id, free) if free else []
    failed += [
        UnsuccessfulFace(f, ("FACE_NOT_FOUND",)) for f in free if f not in deleted
    ]  # deleted meanwhile
    return deleted, failed


# --- searches --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceMatch:
    similarity: float
    face: StoredFace


@dataclass(frozen=True)
class SearchOptions:
    max_faces: int = MAX_SEARCH_FACES
    threshold: float = DEFAULT_FACE_MATCH_THRESHOLD
    quality_filter: str = "NONE"


@dataclass(frozen=True)
class SearchResult:
    """What a search found, most similar first; ``searched`` is the face of the image searched with
    (SearchFacesByImage), None when a stored face was (SearchFaces)."""

    matches: tuple[FaceMatch, ...]
    version: str
    searched: FaceDetail | None = None


def check_search_options(o: SearchOptions) -> SearchOptions:
    _check_count("max_faces", o.max_faces, MAX_SEARCH_FACES)
    _check_threshold("face_match_threshold", o.threshold)
    check_quality_filter(o.quality_filter)
    return o


def _matches(
    svc: Services, c: Collection, match_distance: float, vector: bytes, o: SearchOptions, exclude: str | None
) -> tuple[FaceMatch, ...]:
    found = svc.repo.nearest_faces(c.id, vector, o.max_faces, exclude)
    scored = [FaceMatch(round(similarity(d, match_distance), 5), f) for f, d in found]
    return tuple(m for m in scored if m.similarity >= o.threshold)


def search_faces(
    svc: Services, analysers: AnalyserSource, name: str, face_id: str, options: SearchOptions | None = None
) -> SearchResult:
    """SearchFaces: the collection's faces like the stored face ``face_id`` (itself left out)."""
    o = check_search_options(options or SearchOptions())
    c, analyser = _searchable(svc, analysers, name)
    check_name(FACE_ID, "a face id", face_id)
    vector = svc.repo.face_vectors(c.id, [face_id]).get(face_id)
    if vector is None:
        raise NotFound(f"the face {face_id} is not in the collection {name!r}")
    return SearchResult(_matches(svc, c, analyser.match_distance, vector, o, face_id), c.face_model_version)


def _largest_face(
    svc: Services, analyser: FaceAnalyserPort, image: ImageSource, quality_filter: str
) -> tuple[FaceDetail, tuple[UnindexedFace, ...]]:
    """The largest face of the image that passes the quality filter, and the other faces with the
    reasons they were not searched (FACE_NOT_LARGEST, or the filter's); InvalidInput when the image has
    no face, as Rekognition answers, or none that passes."""
    data = read_image(svc, image)
    faces = analyser.detect(data, embeddings=True)
    if not faces:
        raise InvalidInput("There are no faces in the image. Should be at least 1.")
    kept, left = _sorted_out(svc, data, faces, quality_filter, 1)
    if not kept:
        raise InvalidInput(f"no face in the image passes the {quality_filter} quality filter")
    others = tuple(
        UnindexedFace(
            _public(u.detail, ()), ("FACE_NOT_LARGEST",) if u.reasons == ("EXCEEDS_MAX_FACES",) else u.reasons
        )
        for u in left
    )
    return kept[0], others


def search_faces_by_image(
    svc: Services,
    analysers: AnalyserSource,
    name: str,
    image: ImageSource,
    options: SearchOptions | None = None,
) -> SearchResult:
    """SearchFacesByImage: the collection's faces like the largest face of the image."""
    o = check_search_options(options or SearchOptions())
    c, analyser = _searchable(svc, analysers, name)
    face, _ = _largest_face(svc, analyser, image, o.quality_filter)
    assert face.embedding is not None
    matches = _matches(svc, c, analyser.match_distance, _vector(face.embedding), o, None)
    return SearchResult(matches, c.face_model_version, _public(face, ()))


# --- users -----------------------------------------------------------------------------------------------


def create_user(svc: Services, name: str, user_id: str, token: str | None = None) -> FaceUser:
    """A user with no face yet (CREATED); AlreadyExists when the collection has it, unless the request
    that created it had the same idempotency ``token`` (CreateUser's ClientRequestToken)."""
    c = describe_collection(svc, name)
    return svc.repo.create_user(c.id, check_name(USER_ID, "a user id", user_id), svc.clock.now(), token)


def delete_user(svc: Services, name: str, user_id: str) -> None:
    """The user; its faces stay in the collection, associated with nobody."""
    c = describe_collection(svc, name)
    svc.repo.delete_user(c.id, check_name(USER_ID, "a user id", user_id))


def list_users(svc: Services, name: str, *, offset: int = 0, limit: int | None = None) -> list[FaceUser]:
    c = describe_collection(svc, name)
    return svc.repo.list_users(c.id, offset=offset, limit=limit)


@dataclass(frozen=True)
class Association:
    """What AssociateFaces or DisassociateFaces did: the faces done, the faces left, the user's status."""

    done: tuple[str, ...]
    failed: tuple[UnsuccessfulFace, ...]
    status: UserStatus


def associate_faces(
    svc: Services,
    analysers: AnalyserSource,
    name: str,
    user_id: str,
    face_ids: Sequence[str],
    threshold: float = DEFAULT_ASSOCIATE_THRESHOLD,
) -> Association:
    """AssociateFaces: give faces to a user. A face another user holds stays theirs; once the user has
    faces, a face less similar than ``threshold`` to all of them is refused (LOW_MATCH_CONFIDENCE).
    QuotaExceeded past 100 faces per user."""
    c, analyser = _searchable(svc, analysers, name)
    check_name(USER_ID, "a user id", user_id)
    _check_threshold("user_match_threshold", threshold)
    ids = _face_ids(face_ids)
    if not 1 <= len(ids) <= MAX_FACES_PER_USER:
        raise InvalidInput(f"give 1 to {MAX_FACES_PER_USER} face ids, not {len(ids)}")
    svc.repo.get_user(c.id, user_id)
    faces = {f.face_id: f for f in svc.repo.list_faces(c.id, face_ids=ids)}
    held = svc.repo.user_vectors(c.id, user_id)
    vectors = svc.repo.face_vectors(c.id, [f for f in ids if f in faces]) if held else {}
    done, wanted, failed = [], [], []
    for f in ids:
        face = faces.get(f)
        if face is None:
            failed.append(UnsuccessfulFace(f, ("FACE_NOT_FOUND",)))
        elif face.user_id == user_id:
            done.append(f)
        elif face.user_id is not None:
            failed.append(UnsuccessfulFace(f, ("ASSOCIATED_TO_A_DIFFERENT_USER",), face.user_id))
        elif held and (s := _best_similarity(vectors[f], held, analyser.match_distance)) < threshold:
            failed.append(UnsuccessfulFace(f, ("LOW_MATCH_CONFIDENCE",), user_id, round(s, 5)))
        else:
            wanted.append(f)
    if wanted:
        taken = svc.repo.associate_faces(c.id, user_id, wanted, MAX_FACES_PER_USER)
        done += taken
        failed += [  # taken by another request meanwhile
            UnsuccessfulFace(f, ("ASSOCIATED_TO_A_DIFFERENT_USER",)) for f in wanted if f not in taken
        ]
    status = svc.repo.get_user(c.id, user_id).status
    return Association(tuple(f for f in ids if f in done), tuple(failed), status)


def _best_similarity(vector: bytes, others: Sequence[bytes], match_distance: float) -> float:
    a = _floats(vector)
    return similarity(min(distance(a, _floats(b)) for b in others), match_distance)


def _floats(vector: bytes) -> tuple[float, ...]:
    return struct.unpack(f"<{len(vector) // 4}f", vector)


def disassociate_faces(svc: Services, name: str, user_id: str, face_ids: Sequence[str]) -> Association:
    """DisassociateFaces: take faces from a user (a face nobody holds counts as done)."""
    c = describe_collection(svc, name)
    check_name(USER_ID, "a user id", user_id)
    ids = _face_ids(face_ids)
    if not 1 <= len(ids) <= MAX_FACES_PER_USER:
        raise InvalidInput(f"give 1 to {MAX_FACES_PER_USER} face ids, not {len(ids)}")
    svc.repo.get_user(c.id, user_id)
    faces = {f.face_id: f for f in svc.repo.list_faces(c.id, face_ids=ids)}
    failed = []
    for f in ids:
        face = faces.get(f)
        if face is None:
            failed.append(UnsuccessfulFace(f, ("FACE_NOT_FOUND",)))
        elif face.user_id not in (None, user_id):
            failed.append(UnsuccessfulFace(f, ("ASSOCIATED_TO_A_DIFFERENT_USER",), face.user_id))
    svc.repo.disassociate_faces(c.id, user_id, [f for f in ids if f in faces])
    done = {f for f in ids if f in faces} - {u.face_id for u in failed}
    status = svc.repo.get_user(c.id, user_id).status
    return Association(tuple(f for f in ids if f in done), tuple(failed), status)


@dataclass(frozen=True)
class UserMatch:
    similarity: float
    user: FaceUser


@dataclass(frozen=True)
class UserSearchOptions:
    max_users: int = MAX_USERS
    threshold: float = DEFAULT_USER_MATCH_THRESHOLD
    quality_filter: str = "NONE"


@dataclass(frozen=True)
class UserSearchResult:
    """Users found, most similar first; by image, the face searched with and the image's other faces
    with the reasons they were not (UnsearchedFaces)."""

    matches: tuple[UserMatch, ...]
    version: str
    searched: FaceDetail | None = None
    unsearched: tuple[UnindexedFace, ...] = ()


def check_user_search_options(o: UserSearchOptions) -> UserSearchOptions:
    _check_count("max_users", o.max_users, MAX_USERS)
    _check_threshold("user_match_threshold", o.threshold)
    check_quality_filter(o.quality_filter)
    return o


def _user_matches(
    svc: Services,
    c: Collection,
    match_distance: float,
    vectors: Sequence[bytes],
    o: UserSearchOptions,
    exclude: str | None,
) -> tuple[UserMatch, ...]:
    """Users by the similarity of their face nearest to any of ``vectors``, most similar first."""
    best: dict[str, float] = {}
    for vector in vectors:
        for user, d in svc.repo.nearest_users(c.id, vector, o.max_users, exclude):
            best[user] = min(d, best.get(user, math.inf))
    ranked = sorted(best.items(), key=lambda ud: (ud[1], ud[0]))[: o.max_users]
    users = {u.user_id: u for u in svc.repo.list_users(c.id)} if ranked else {}
    out = []
    for user, d in ranked:
        s = round(similarity(d, match_distance), 5)
        if s >= o.threshold and user in users:
            out.append(UserMatch(s, users[user]))
    return tuple(out)


def search_users(
    svc: Services,
    analysers: AnalyserSource,
    name: str,
    *,
    user_id: str | None = None,
    face_id: str | None = None,
    options: UserSearchOptions | None = None,
) -> UserSearchResult:
    """SearchUsers: the users like a user (by its faces; the user itself left out) or like a face."""
    o = check_user_search_options(options or UserSearchOptions())
    if (user_id is None) == (face_id is None):
        raise InvalidInput("give exactly one of user_id and face_id")
    c, analyser = _searchable(svc, analysers, name)
    if user_id is not None:
        svc.repo.get_user(c.id, check_name(USER_ID, "a user id", user_id))
        vectors = svc.repo.user_vectors(c.id, user_id)
    else:
        assert face_id is not None
        check_name(FACE_ID, "a face id", face_id)
        vectors = list(svc.repo.face_vectors(c.id, [face_id]).values())
        if not vectors:
            raise NotFound(f"the face {face_id} is not in the collection {name!r}")
    matches = _user_matches(svc, c, analyser.match_distance, vectors, o, user_id)
    return UserSearchResult(matches, c.face_model_version)


def search_users_by_image(
    svc: Services,
    analysers: AnalyserSource,
    name: str,
    image: ImageSource,
    options: UserSearchOptions | None = None,
) -> UserSearchResult:
    """SearchUsersByImage: the users like the largest face of the image."""
    o = check_user_search_options(options or UserSearchOptions())
    c, analyser = _searchable(svc, analysers, name)
    face, others = _largest_face(svc, analyser, image, o.quality_filter)
    assert face.embedding is not None
    matches = _user_matches(svc, c, analyser.match_distance, [_vector(face.embedding)], o, None)
    return UserSearchResult(matches, c.face_model_version, _public(face, ()), others)


__all__ = [
    "DEFAULT_FACE_MATCH_THRESHOLD",
    "MAX_FACES_PER_USER",
    "Association",
    "FaceMatch",
    "IndexOptions",
    "IndexResult",
    "IndexedFace",
    "SearchOptions",
    "SearchResult",
    "UnindexedFace",
    "UnsuccessfulFace",
    "UserMatch",
    "UserSearchOptions",
    "UserSearchResult",
    "associate_faces",
    "collection_arn",
    "create_collection",
    "create_user",
    "delete_collection",
    "delete_faces",
    "delete_user",
    "describe_collection",
    "disassociate_faces",
    "index_faces",
    "list_collections",
    "list_faces",
    "list_users",
    "search_faces",
    "search_faces_by_image",
    "search_users",
    "search_users_by_image",
    "tag_collection",
    "untag_collection",
]
