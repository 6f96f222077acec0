"""Storage adapters: metadata repositories and object stores, opened by URL."""

from __future__ import annotations

from pathlib import Path

from visionloop.core.ports import ObjectStore, Repository
from visionloop.errors import InvalidInput, Unavailable


def open_repository(url: str) -> Repository:
    """``sqlite:///path/to/file.db`` (default) or ``postgresql+psycopg://…`` (needs the postgres extra)."""
    from visionloop.storage.sql import SqlRepository

    if url.startswith(("sqlite:", "postgresql")):
        return SqlRepository(url)
    raise InvalidInput(f"unsupported database URL {url!r}: use sqlite:///… or postgresql+psycopg://…")


def open_object_store(url: str) -> ObjectStore:
    """``file:///path`` or a plain path: buckets are folders below it."""
    from visionloop.storage.files import LocalObjectStore

    if url.startswith("file://"):
        return LocalObjectStore(Path(url[len("file://") :]))
    if url.startswith("s3://"):
        raise Unavailable("the S3 object store is not available yet; use a local directory")
    if "://" in url:
        raise InvalidInput(f"unsupported object store URL {url!r}")
    return LocalObjectStore(Path(url))
