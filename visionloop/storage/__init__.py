"""Storage adapters: metadata repositories and object stores, opened by URL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from visionloop.core.ports import ObjectStore, Repository
from visionloop.errors import InvalidInput

if TYPE_CHECKING:
    from visionloop.storage.s3 import S3Options


def open_repository(url: str) -> Repository:
    """``sqlite:///path/to/file.db`` (default) or ``postgresql+psycopg://…`` (needs the postgres extra)."""
    from visionloop.storage.sql import SqlRepository

    if url.startswith(("sqlite:", "postgresql")):
        return SqlRepository(url)
    raise InvalidInput(f"unsupported database URL {url!r}: use sqlite:///… or postgresql+psycopg://…")


def open_object_store(url: str, s3: S3Options | None = None) -> ObjectStore:
    """``file:///path`` or a plain path: buckets are folders below it. ``s3://`` (one S3 bucket per
    bucket) or ``s3://bucket/prefix`` (buckets are prefixes in one S3 bucket): S3 or an S3-compatible
    server reached with ``s3`` (needs the s3 extra; see visionloop/storage/s3.py)."""
    from visionloop.storage.files import LocalObjectStore

    if url.startswith("file://"):
        return LocalObjectStore(Path(url[len("file://") :]))
    if url.startswith("s3://"):
        from visionloop.storage.s3 import S3ObjectStore

        return S3ObjectStore(url, s3)
    if "://" in url:
        raise InvalidInput(f"unsupported object store URL {url!r}")
    return LocalObjectStore(Path(url))
