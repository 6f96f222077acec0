"""What the SQL stores share: connections that turn a database failure into StorageError (writes through
the database's one writer in this process, see storage/connections.py), and stored times (naive UTC in
the database, aware UTC in core)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, Insert, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from visionloop.core.entities import Box
from visionloop.errors import StorageError
from visionloop.storage.connections import Writer, writer_for


def utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def insert_or_skip(conn: Connection, table: Table) -> Insert:
    """An INSERT whose rows that would break a unique key are skipped (``ON CONFLICT DO NOTHING``): what
    a concurrent writer added meanwhile (PostgreSQL runs writers side by side) is not an error."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def one_at_a_time(conn: Connection, topic: str) -> None:
    """Make the transaction wait for the other writers of ``topic``, so that what it reads stays true
    until it commits. SQLite's writer already runs one write transaction at a time; PostgreSQL runs them
    side by side, so there a transaction-scoped advisory lock on the topic does it (released at commit)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:topic))"), {"topic": f"visionloop:{topic}"})


class SqlStore:
    """A store on ``engine`` (its schema migrated): SqlRepository and its mixins (review, parameters,
    events, detections, workflow), and SqlAccountStore."""

    engine: Engine
    _writer: Writer | None = None

    @property
    def writer(self) -> Writer:
        """The writer of this database in this process (looked up again in a forked child)."""
        if self._writer is None or self._writer.pid != os.getpid():
            self._writer = writer_for(self.engine)
        return self._writer

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.writer.transaction() as conn:
                yield conn
        except OperationalError as e:
            raise StorageError(f"database write failed: {e.orig}") from e

    @contextmanager
    def _session_lock(self, topic: str) -> Iterator[bool]:
        """PostgreSQL: try to hold the session advisory lock on ``topic`` for the block, on a connection of
        its own (no transaction stays open meanwhile; the lock goes when the block ends or the process
        dies); yields whether it is held (False: another session holds it). SQLite: yields True, as one
        server, whose threads already share one writer, runs on one SQLite file."""
        if self.engine.dialect.name != "postgresql":
            yield True
            return
        key = {"topic": f"visionloop:{topic}"}
        with self._read() as conn:
            held = bool(conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:topic))"), key).scalar())
            conn.commit()
            try:
                yield held
            finally:
                if held:
                    conn.execute(text("SELECT pg_advisory_unlock(hashtext(:topic))"), key)
                    conn.commit()

    @contextmanager
    def present(self, topic: str, first: Callable[[], object] | None = None) -> Iterator[bool]:
        """Show this process present under ``topic`` (e.g. "workflow-runners") to every process on this
        database for the block; yields whether it was the first (no other process present when it began).
        Only then ``first`` runs, before the block, while the others that begin meanwhile wait: what a
        starting server does for the ones before it (resume what they left) is done once, and never
        while one of them is still at work. PostgreSQL: an exclusive and then a shared session advisory
        lock on a connection of its own (the database drops it when the process dies). SQLite: always
        the first, as one server runs on one SQLite file."""
        if self.engine.dialect.name != "postgresql":
            if first is not None:
                first()
            yield True
            return
        key = {"topic": f"visionloop:present:{topic}"}
        with self._read() as conn:
            alone = bool(conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:topic))"), key).scalar())
            conn.commit()
            try:
                if alone and first is not None:
                    first()
                # waits while another process that is beginning holds the lock alone (runs its ``first``)
                conn.execute(text("SELECT pg_advisory_lock_shared(hashtext(:topic))"), key)
            finally:
                if alone:
                    conn.execute(text("SELECT pg_advisory_unlock(hashtext(:topic))"), key)
                conn.commit()
            try:
                yield alone
            finally:
                conn.execute(text("SELECT pg_advisory_unlock_shared(hashtext(:topic))"), key)
                conn.commit()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as e:
            raise StorageError(f"database read failed: {e.orig}") from e


def boxes_json(boxes: Sequence[Box]) -> str:
    """Boxes as stored (a JSON list of {label, left, top, width, height} ratios)."""
    return json.dumps(
        [
            {"label": b.label, "left": b.left, "top": b.top, "width": b.width, "height": b.height}
            for b in boxes
        ]
    )
