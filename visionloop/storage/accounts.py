"""Reviewer accounts and sessions on SQLAlchemy Core (implements core.accounts.AccountStore), in the same
database as the repository. The tables are created by migration 0004, the accounts' role by 0006."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Engine,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from visionloop.core.records.accounts import Reviewer, ReviewerSession, Role
from visionloop.errors import AlreadyExists, NotFound
from visionloop.storage.base import SqlStore, naive, utc
from visionloop.storage.schema import reviewer_sessions, reviewers


class SqlAccountStore(SqlStore):
    """Implements core.accounts.AccountStore on an engine whose schema is migrated
    (storage.sql.SqlRepository migrates it on start)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- reviewers -----------------------------------------------------------------------------------

    def add_reviewer(
        self, name: str, password_hash: str, now: datetime, role: Role = Role.REVIEWER
    ) -> Reviewer:
        try:
            with self._write() as conn:
                key = conn.execute(
                    insert(reviewers).values(
                        name=name,
                        password_hash=password_hash,
                        created_at=naive(now),
                        password_changed_at=naive(now),
                        role=role.value,
                    )
                ).inserted_primary_key
        except IntegrityError:
            raise AlreadyExists(f"an account named {name!r} already exists") from None
        assert key is not None
        return Reviewer(int(key[0]), name, utc(now), utc(now), role)

    def has_accounts(self) -> bool:
        with self._read() as conn:
            return conn.execute(select(reviewers.c.id).limit(1)).first() is not None

    def set_role(self, reviewer_id: int, role: Role) -> None:
        with self._write() as conn:
            done = conn.execute(
                update(reviewers).where(reviewers.c.id == reviewer_id).values(role=role.value)
            )
        if done.rowcount == 0:
            raise NotFound(f"account {reviewer_id} does not exist")

    def get_reviewer(self, name: str) -> Reviewer:
        found = self.find_credentials(name)
        if found is None:
            raise NotFound(f"reviewer {name!r} does not exist")
        return found[0]

    def find_credentials(self, name: str) -> tuple[Reviewer, str] | None:
        with self._read() as conn:
            row = conn.execute(select(reviewers).where(reviewers.c.name == name)).first()
        return None if row is None else (_reviewer(row._mapping), str(row._mapping["password_hash"]))

    def list_reviewers(self) -> list[Reviewer]:
        with self._read() as conn:
            rows = conn.execute(select(reviewers).order_by(reviewers.c.name)).all()
        return [_reviewer(r._mapping) for r in rows]

    def set_password_hash(self, reviewer_id: int, password_hash: str, now: datetime) -> None:
        with self._write() as conn:
            done = conn.execute(
                update(reviewers)
                .where(reviewers.c.id == reviewer_id)
                .values(password_hash=password_hash, password_changed_at=naive(now))
            )
        if done.rowcount == 0:
            raise NotFound(f"reviewer {reviewer_id} does not exist")

    def remove_reviewer(self, reviewer_id: int) -> None:
        with self._write() as conn:
            conn.execute(delete(reviewer_sessions).where(reviewer_sessions.c.reviewer_id == reviewer_id))
            conn.execute(delete(reviewers).where(reviewers.c.id == reviewer_id))

    # --- sessions ------------------------------------------------------------------------------------

    def add_session(self, session: ReviewerSession) -> None:
        with self._write() as conn:
            conn.execute(
                insert(reviewer_sessions).values(
                    key=session.key,
                    reviewer_id=session.reviewer_id,
                    csrf_token=session.csrf_token,
                    created_at=naive(session.created_at),
                    last_seen_at=naive(session.last_seen_at),
                    expires_at=naive(session.expires_at),
                )
            )

    def get_session(self, key: str) -> ReviewerSession | None:
        q = (
            select(reviewer_sessions, reviewers.c.name, reviewers.c.role)
            .join(reviewers, reviewers.c.id == reviewer_sessions.c.reviewer_id)
            .where(reviewer_sessions.c.key == key)
        )
        with self._read() as conn:
            row = conn.execute(q).first()
        return None if row is None else _session(row._mapping)

    def touch_session(self, key: str, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                update(reviewer_sessions)
                .where(reviewer_sessions.c.key == key)
                .values(last_seen_at=naive(now))
            )

    def delete_session(self, key: str) -> None:
        with self._write() as conn:
            conn.execute(delete(reviewer_sessions).where(reviewer_sessions.c.key == key))

    def delete_sessions(self, reviewer_id: int) -> int:
        with self._write() as conn:
            done = conn.execute(
                delete(reviewer_sessions).where(reviewer_sessions.c.reviewer_id == reviewer_id)
            )
        return int(done.rowcount)

    def delete_expired_sessions(self, now: datetime, idle_since: datetime) -> int:
        with self._write() as conn:
            done = conn.execute(
                delete(reviewer_sessions).where(
                    or_(
                        reviewer_sessions.c.expires_at <= naive(now),
                        reviewer_sessions.c.last_seen_at <= naive(idle_since),
                    )
                )
            )
        return int(done.rowcount)


def _reviewer(m: Any) -> Reviewer:
    return Reviewer(
        id=int(m["id"]),
        name=str(m["name"]),
        created_at=utc(m["created_at"]),
        password_changed_at=utc(m["password_changed_at"]),
        role=_role(m["role"]),
    )


def _session(m: Any) -> ReviewerSession:
    return ReviewerSession(
        key=str(m["key"]),
        reviewer_id=int(m["reviewer_id"]),
        reviewer=str(m["name"]),
        csrf_token=str(m["csrf_token"]),
        created_at=utc(m["created_at"]),
        last_seen_at=utc(m["last_seen_at"]),
        expires_at=utc(m["expires_at"]),
        role=_role(m["role"]),
    )


def _role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:  # written by something newer: the least access
        return Role.REVIEWER
