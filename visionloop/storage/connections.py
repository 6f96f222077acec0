"""How the stores reach the database: the engine for reads (and migrations), and the writer every write
transaction goes through.

SQLite allows one writer per database at a time. A transaction that begins as a read and then writes
(pysqlite's default: ``BEGIN`` DEFERRED, issued only before the first INSERT/UPDATE/DELETE, so the reads
before it are not even in the transaction) either fails with SQLITE_BUSY or decides on rows another
writer has changed meanwhile. So on SQLite every write goes through one writer per process and database:
a lock around one write connection whose transactions begin with ``BEGIN IMMEDIATE`` (they hold the write
lock from their first statement; other processes wait for it in SQLite's busy timeout). Reads use the
engine's other connections and stay concurrent (WAL). PostgreSQL orders concurrent writers itself: its
writes are plain transactions on the engine."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

SQLITE_CONNECT_ARGS = {"timeout": 30, "check_same_thread": False}


def create_db_engine(url: str) -> Engine:
    """The engine of ``url``; SQLite files in WAL mode, with foreign keys and a 30 s busy timeout."""
    if url.startswith("sqlite:"):
        path = _sqlite_path(url)
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args=SQLITE_CONNECT_ARGS)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_path(url: str) -> str:
    """The file of a SQLite URL; empty for an in-memory database."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return "" if path == ":memory:" else path


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Writer:
    """Write transactions on ``engine``: each its own ``engine.begin()`` (PostgreSQL, in-memory SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pid = os.getpid()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        """Close the idle connections (a later transaction opens a new one)."""


class SqliteWriter(Writer):
    """The one writer of a SQLite file in this process: one connection, one transaction at a time, each
    begun with ``BEGIN IMMEDIATE``."""

    def __init__(self, url: str) -> None:
        engine = create_engine(url, connect_args=SQLITE_CONNECT_ARGS, pool_size=1, max_overflow=0)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "connect", _manual_transactions)
        event.listen(engine, "begin", _begin_immediate)
        super().__init__(engine)
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._lock, self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        with self._lock:  # never while a transaction holds the connection
            self.engine.dispose()


def _manual_transactions(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite must not begin transactions of its own: SQLAlchemy's "begin" event issues BEGIN IMMEDIATE
    dbapi_conn.isolation_level = None


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


_sqlite_writers: weakref.WeakValueDictionary[tuple[int, str], SqliteWriter] = weakref.WeakValueDictionary()
_sqlite_writers_lock = threading.Lock()


def writer_for(engine: Engine) -> Writer:
    """The writer of ``engine``'s database in this process: shared by every store on a SQLite file (kept
    while a store holds it), a plain one otherwise."""
    url = engine.url.render_as_string(hide_password=False)
    path = _sqlite_path(url) if engine.dialect.name == "sqlite" else ""
    if not path:
        return Writer(engine)
    key = (os.getpid(), str(Path(path).resolve()))
    with _sqlite_writers_lock:
        writer = _sqlite_writers.get(key)
        if writer is None:
            writer = _sqlite_writers[key] = SqliteWriter(url)
        return writer
