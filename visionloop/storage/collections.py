"""Face collections in the SQL repository (core.ports.CollectionRepository: core.collections). SqlRepository
inherits it; the tables (face_collections, faces, face_users) are created by migration 0012. A face's
vector is a float32 blob; deleting a collection deletes its faces, vectors and users (ON DELETE CASCADE,
and explicitly, for a SQLite opened without foreign keys)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from visionloop.core.records.analysis import BoundingBox
from visionloop.core.records.collections import Collection, FaceUser, NewFace, StoredFace
from visionloop.errors import AlreadyExists, NotFound, QuotaExceeded
from visionloop.storage.base import SqlStore, naive, one_at_a_time, utc
from visionloop.storage.face_index import FaceIndex, FaceIndexCache
from visionloop.storage.schema import face_collections, face_users, faces

_C, _F, _U = face_collections.c, faces.c, face_users.c
_CACHE_LOCK = threading.Lock()
_FACE_COLUMNS = (
    _F.face_id,
    _F.image_id,
    _F.external_image_id,
    _F.box_left,
    _F.box_top,
    _F.box_width,
    _F.box_height,
    _F.confidence,
    _F.user_id,
    _F.created_at,
)


class CollectionStore(SqlStore):
    """Mixin of SqlRepository: face collections, their faces and users, and the search over their vectors
    (storage/face_index.py: a matrix per collection kept in memory while its revision holds)."""

    _face_indexes: FaceIndexCache | None = None

    # --- collections ---------------------------------------------------------------------------------

    def create_collection(
        self, name: str, face_model_version: str, embedding_dim: int, tags: Mapping[str, str], now: datetime
    ) -> Collection:
        values = {
            "name": name,
            "created_at": naive(now),
            "face_model_version": face_model_version,
            "embedding_dim": embedding_dim,
            "tags": json.dumps(dict(tags)),
            "revision": 0,
        }
        try:
            with self._write() as conn:
                key = conn.execute(insert(face_collections).values(**values)).inserted_primary_key
        except IntegrityError:
            raise AlreadyExists(f"a collection named {name!r} already exists") from None
        assert key is not None
        return Collection(int(key[0]), name, utc(now), face_model_version, embedding_dim, 0, 0, dict(tags), 0)

    def get_collection(self, name: str, counts: bool = True) -> Collection:
        q = _collections_query() if counts else _uncounted_query()
        with self._read() as conn:
            row = conn.execute(q.where(_C.name == name)).first()
        if row is None:
            raise NotFound(f"the collection {name!r} does not exist")
        return _collection(row)

    def list_collections(self) -> list[Collection]:
        with self._read() as conn:
            rows = conn.execute(_collections_query().order_by(_C.name)).all()
        return [_collection(r) for r in rows]

    def delete_collection(self, collection_id: int) -> None:
        with self._write() as conn:
            conn.execute(delete(faces).where(_F.collection_id == collection_id))
            conn.execute(delete(face_users).where(_U.collection_id == collection_id))
            gone = conn.execute(delete(face_collections).where(_C.id == collection_id)).rowcount
        self._index_cache.forget(collection_id)
        if not gone:
            raise NotFound(f"collection {collection_id} does not exist")

    def set_collection_tags(self, collection_id: int, tags: Mapping[str, str]) -> None:
        with self._write() as conn:
            conn.execute(update(face_collections).where(_C.id == collection_id).values(tags=json.dumps(tags)))

    # --- faces ---------------------------------------------------------------------------------------

    def add_faces(self, collection_id: int, new: Sequence[NewFace], now: datetime) -> list[StoredFace]:
        if not new:
            return []
        rows = [
            {
                "collection_id": collection_id,
                "face_id": f.face_id,
                "image_id": f.image_id,
                "external_image_id": f.external_image_id,
                "box_left": f.box.left,
                "box_top": f.box.top,
                "box_width": f.box.width,
                "box_height": f.box.height,
                "confidence": f.confidence,
                "vector": f.vector,
                "created_at": naive(now),
            }
            for f in new
        ]
        with self._write() as conn:
            revision = _bump(conn, collection_id)
            conn.execute(insert(faces), rows)
        stored = [
            StoredFace(f.face_id, f.image_id, f.external_image_id, f.box, f.confidence, None, utc(now))
            for f in new
        ]
        vectors = [f.vector for f in new]
        self._index_cache.changed(collection_id, revision, lambda index: index.added(stored, vectors))
        return stored

    def list_faces(
        self,
        collection_id: int,
        *,
        user_id: str | None = None,
        face_ids: Sequence[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[StoredFace]:
        q = select(*_FACE_COLUMNS).where(_F.collection_id == collection_id)
        if user_id is not None:
            q = q.where(_F.user_id == user_id)
        if face_ids is not None:
            q = q.where(_F.face_id.in_(list(face_ids)))
        q = q.order_by(_F.id).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return [_face(r) for r in conn.execute(q).all()]

    def delete_faces(self, collection_id: int, face_ids: Sequence[str]) -> list[str]:
        with self._write() as conn:
            where = (_F.collection_id == collection_id, _F.face_id.in_(list(face_ids)))
            found = set(conn.execute(select(_F.face_id).where(*where)).scalars())
            if found:
                conn.execute(delete(faces).where(*where))
                revision = _bump(conn, collection_id)
        gone = [f for f in dict.fromkeys(face_ids) if f in found]
        if gone:
            self._index_cache.changed(collection_id, revision, lambda index: index.removed(gone))
        return gone

    def collection_vectors(self, collection_id: int) -> tuple[int, list[StoredFace], list[bytes]]:
        """The collection's revision, its faces and their vectors (oldest first), as of one moment: the
        revision is read before and after the faces and must not have moved (else read again; after
        three tries the revision is given as -1, which no later check trusts)."""
        q = select(*_FACE_COLUMNS, _F.vector).where(_F.collection_id == collection_id).order_by(_F.id)
        for _ in range(3):
            with self._read() as conn:
                before = conn.execute(select(_C.revision).where(_C.id == collection_id)).scalar()
                if before is None:
                    raise NotFound(f"collection {collection_id} does not exist")
                rows = conn.execute(q).all()
                after = conn.execute(select(_C.revision).where(_C.id == collection_id)).scalar()
            if before == after:
                break
        revision = int(before) if before is not None and before == after else -1
        return revision, [_face(r) for r in rows], [bytes(r.vector) for r in rows]

    # --- search --------------------------------------------------------------------------------------

    def nearest_faces(
        self, collection_id: int, vector: bytes, limit: int, exclude: str | None = None
    ) -> list[tuple[StoredFace, float]]:
        return self._index(collection_id).nearest(vector, limit, exclude)

    def nearest_users(
        self, collection_id: int, vector: bytes, limit: int, exclude: str | None = None
    ) -> list[tuple[str, float]]:
        return self._index(collection_id).nearest_users(vector, limit, exclude)

    def face_vectors(self, collection_id: int, face_ids: Sequence[str]) -> dict[str, bytes]:
        index = self._index(collection_id)
        found = {f: index.vector(f) for f in face_ids}
        return {f: v for f, v in found.items() if v is not None}

    def user_vectors(self, collection_id: int, user_id: str) -> list[bytes]:
        index = self._index(collection_id)
        return [index.matrix[i].tobytes() for i, f in enumerate(index.faces) if f.user_id == user_id]

    @property
    def _index_cache(self) -> FaceIndexCache:
        with _CACHE_LOCK:
            if self._face_indexes is None:
                self._face_indexes = FaceIndexCache()
            return self._face_indexes

    def _index(self, collection_id: int) -> FaceIndex:
        with self._read() as conn:
            row = conn.execute(select(_C.revision, _C.embedding_dim).where(_C.id == collection_id)).first()
        if row is None:
            self._index_cache.forget(collection_id)
            raise NotFound(f"collection {collection_id} does not exist")
        return self._index_cache.get(
            collection_id, row.revision, row.embedding_dim, lambda: self.collection_vectors(collection_id)
        )

    # --- users ---------------------------------------------------------------------------------------

    def create_user(
        self, collection_id: int, user_id: str, now: datetime, token: str | None = None
    ) -> FaceUser:
        values = {
            "collection_id": collection_id,
            "user_id": user_id,
            "created_at": naive(now),
            "request_token": token,
        }
        try:
            with self._write() as conn:
                conn.execute(insert(face_users).values(**values))
        except IntegrityError:
            with self._read() as conn:
                first = conn.execute(
                    select(_U.request_token).where(_U.collection_id == collection_id, _U.user_id == user_id)
                ).first()
            if token is None or first is None or first.request_token != token:
                raise AlreadyExists(f"the user {user_id!r} already exists in the collection") from None
            return self.get_user(collection_id, user_id)
        return FaceUser(user_id, utc(now), 0)

    def get_user(self, collection_id: int, user_id: str) -> FaceUser:
        with self._read() as conn:
            row = conn.execute(_users_query(collection_id).where(_U.user_id == user_id)).first()
        if row is None:
            raise NotFound(f"the user {user_id!r} does not exist in the collection")
        return _user(row)

    def list_users(self, collection_id: int, *, offset: int = 0, limit: int | None = None) -> list[FaceUser]:
        q = _users_query(collection_id).order_by(_U.id).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return [_user(r) for r in conn.execute(q).all()]

    def delete_user(self, collection_id: int, user_id: str) -> None:
        with self._write() as conn:
            gone = conn.execute(
                delete(face_users).where(_U.collection_id == collection_id, _U.user_id == user_id)
            ).rowcount
            if not gone:
                raise NotFound(f"the user {user_id!r} does not exist in the collection")
            where = (_F.collection_id == collection_id, _F.user_id == user_id)
            held = list(conn.execute(select(_F.face_id).where(*where)).scalars())
            conn.execute(update(faces).where(*where).values(user_id=None))
            revision = _bump(conn, collection_id)
        self._index_cache.changed(collection_id, revision, lambda index: index.with_user(held, None))

    def associate_faces(
        self, collection_id: int, user_id: str, face_ids: Sequence[str], max_faces: int
    ) -> list[str]:
        with self._write() as conn:
            one_at_a_time(conn, f"face-user:{collection_id}:{user_id}")
            _existing_user(conn, collection_id, user_id)
            free = set(
                conn.execute(
                    select(_F.face_id).where(
                        _F.collection_id == collection_id,
                        _F.face_id.in_(list(face_ids)),
                        _F.user_id.is_(None),
                    )
                ).scalars()
            )
            if not free:
                return []
            held = conn.execute(
                select(func.count()).where(_F.collection_id == collection_id, _F.user_id == user_id)
            ).scalar_one()
            if held + len(free) > max_faces:
                raise QuotaExceeded(
                    f"the user {user_id!r} has {held} faces; {len(free)} more would pass the limit of "
                    f"{max_faces} faces per user"
                )
            conn.execute(
                update(faces)
                .where(_F.collection_id == collection_id, _F.face_id.in_(free), _F.user_id.is_(None))
                .values(user_id=user_id)
            )
            revision = _bump(conn, collection_id)
        done = [f for f in dict.fromkeys(face_ids) if f in free]
        self._index_cache.changed(collection_id, revision, lambda index: index.with_user(done, user_id))
        return done

    def disassociate_faces(self, collection_id: int, user_id: str, face_ids: Sequence[str]) -> list[str]:
        with self._write() as conn:
            _existing_user(conn, collection_id, user_id)
            where = (
                _F.collection_id == collection_id,
                _F.face_id.in_(list(face_ids)),
                _F.user_id == user_id,
            )
            held = set(conn.execute(select(_F.face_id).where(*where)).scalars())
            if held:
                conn.execute(update(faces).where(*where).values(user_id=None))
                revision = _bump(conn, collection_id)
        done = [f for f in dict.fromkeys(face_ids) if f in held]
        if done:
            self._index_cache.changed(collection_id, revision, lambda index: index.with_user(done, None))
        return done


def _bump(conn: Connection, collection_id: int) -> int:
    """Move the collection to its next revision (the row stays locked until commit); the new revision."""
    gone = not conn.execute(
        update(face_collections).where(_C.id == collection_id).values(revision=_C.revision + 1)
    ).rowcount
    if gone:
        raise NotFound(f"collection {collection_id} does not exist")
    return int(conn.execute(select(_C.revision).where(_C.id == collection_id)).scalar_one())


def _existing_user(conn: Connection, collection_id: int, user_id: str) -> None:
    found = conn.execute(
        select(_U.id).where(_U.collection_id == collection_id, _U.user_id == user_id)
    ).first()
    if found is None:
        raise NotFound(f"the user {user_id!r} does not exist in the collection")


def _collections_query() -> Any:
    face_count = select(func.count()).where(_F.collection_id == _C.id).scalar_subquery()
    user_count = select(func.count()).where(_U.collection_id == _C.id).scalar_subquery()
    return select(face_collections, face_count.label("face_count"), user_count.label("user_count"))


def _uncounted_query() -> Any:
    return select(face_collections, literal(0).label("face_count"), literal(0).label("user_count"))


def _users_query(collection_id: int) -> Any:
    count = (
        select(func.count())
        .where(_F.collection_id == collection_id, _F.user_id == _U.user_id)
        .scalar_subquery()
    )
    return select(_U.user_id, _U.created_at, count.label("face_count")).where(
        _U.collection_id == collection_id
    )


def _collection(r: Any) -> Collection:
    return Collection(
        r.id,
        r.name,
        utc(r.created_at),
        r.face_model_version,
        r.embedding_dim,
        int(r.face_count),
        int(r.user_count),
        json.loads(r.tags),
        r.revision,
    )


def _face(r: Any) -> StoredFace:
    box = BoundingBox(r.box_left, r.box_top, r.box_width, r.box_height)
    return StoredFace(
        r.face_id, r.image_id, r.external_image_id, box, r.confidence, r.user_id, utc(r.created_at)
    )


def _user(r: Any) -> FaceUser:
    return FaceUser(r.user_id, utc(r.created_at), int(r.face_count))
