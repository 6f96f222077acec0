"""What the SQL stores share: connections that turn a database failure into StorageError, and stored
times (naive UTC in the database, aware UTC in core)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from visionloop.errors import StorageError


def utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


class SqlStore:
    """A store on ``engine`` (its schema migrated): SqlRepository and its mixins (review, parameters,
    events, detections, workflow), and SqlAccountStore."""

    engine: Engine

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as e:
            raise StorageError(f"database write failed: {e.orig}") from e

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as e:
            raise StorageError(f"database read failed: {e.orig}") from e
