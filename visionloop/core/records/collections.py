"""Face collections as stored (ports.CollectionRepository, storage/collections.py): a collection, the faces
indexed into it with their identity vectors, and the users faces are associated with (Rekognition's
CreateCollection, IndexFaces, CreateUser, AssociateFaces).

A face's vector is kept as the raw bytes of float32 values (``embedding_dim`` of them, unit length): the
search loads a collection's vectors into one matrix, so they never travel as Python floats."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from visionloop.core.records.analysis import BoundingBox


@dataclass(frozen=True)
class Collection:
    """A face collection. ``revision`` changes with every change of its faces (indexed, deleted,
    associated with a user), so a search index loaded at one revision knows when it is stale."""

    id: int
    name: str
    created_at: datetime
    face_model_version: str
    embedding_dim: int
    face_count: int = 0
    user_count: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    revision: int = 0


@dataclass(frozen=True)
class NewFace:
    """A face to store: ids minted by the use case, the box (ratios of its image) and its vector."""

    face_id: str
    image_id: str
    external_image_id: str | None
    box: BoundingBox
    confidence: float
    vector: bytes  # float32, embedding_dim values


@dataclass(frozen=True)
class StoredFace:
    """A face of a collection, as ListFaces and the searches return it."""

    face_id: str
    image_id: str
    external_image_id: str | None
    box: BoundingBox
    confidence: float
    user_id: str | None
    created_at: datetime


class UserStatus(StrEnum):
    """Rekognition's UserStatus: CREATED until a face is associated, then ACTIVE."""

    CREATED = "CREATED"
    ACTIVE = "ACTIVE"


@dataclass(frozen=True)
class FaceUser:
    user_id: str
    created_at: datetime
    face_count: int

    @property
    def status(self) -> UserStatus:
        return UserStatus.ACTIVE if self.face_count else UserStatus.CREATED


__all__ = ["Collection", "FaceUser", "NewFace", "StoredFace", "UserStatus"]
