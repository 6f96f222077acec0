"""Project policies and copy records in the SQL database (core.records.policies.PolicyRepository): the tables
project_policies and version_copies of migration 0015. A store of its own on the repository's engine, as
the accounts are (bootstrap builds it), so the aggregate's rules stay in one place: each write checks the
revision and the count of a project's policies in the transaction that changes them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from visionloop.core.records.policies import MAX_POLICIES, ProjectPolicy, RevisionMismatch
from visionloop.errors import AlreadyExists, NotFound, QuotaExceeded
from visionloop.storage.base import SqlStore, naive, one_at_a_time, utc
from visionloop.storage.schema import project_policies, version_copies

_P, _V = project_policies.c, version_copies.c


class SqlPolicyStore(SqlStore):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list_policies(self, project_id: int) -> list[ProjectPolicy]:
        q = select(project_policies).where(_P.project_id == project_id).order_by(_P.name)
        with self._read() as conn:
            return [_policy(r) for r in conn.execute(q).all()]

    def put_policy(
        self, project_id: int, name: str, document: str, expected: str | None, revision: str, now: datetime
    ) -> ProjectPolicy:
        where = (_P.project_id == project_id, _P.name == name)
        try:
            with self._write() as conn:
                one_at_a_time(conn, f"policies:{project_id}")
                current = conn.execute(select(_P.revision_id).where(*where)).scalar()
                if expected is None:
                    if current is not None:
                        raise AlreadyExists(
                            f"the project already has a policy named {name!r}; "
                            "give its PolicyRevisionId to replace it"
                        )
                    _check_room(conn, project_id)
                    values = {"project_id": project_id, "name": name, "created_at": naive(now)}
                    conn.execute(
                        insert(project_policies).values(
                            **values, document=document, revision_id=revision, updated_at=naive(now)
                        )
                    )
                else:
                    if current is None or current.lower() != expected.lower():
                        raise RevisionMismatch(_mismatch(name, expected, current))
                    conn.execute(
                        update(project_policies)
                        .where(*where)
                        .values(document=document, revision_id=revision, updated_at=naive(now))
                    )
                row = conn.execute(select(project_policies).where(*where)).one()
        except IntegrityError:  # a concurrent writer took the name first
            raise AlreadyExists(f"the project already has a policy named {name!r}") from None
        return _policy(row)

    def delete_policy(self, project_id: int, name: str, expected: str | None) -> None:
        where = (_P.project_id == project_id, _P.name == name)
        with self._write() as conn:
            one_at_a_time(conn, f"policies:{project_id}")
            current = conn.execute(select(_P.revision_id).where(*where)).scalar()
            if current is None:
                raise NotFound(f"the project has no policy named {name!r}")
            if expected is not None and current.lower() != expected.lower():
                raise RevisionMismatch(_mismatch(name, expected, current))
            conn.execute(delete(project_policies).where(*where))

    def record_copy(self, version_id: int, source_arn: str, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                insert(version_copies).values(
                    version_id=version_id, source_arn=source_arn, copied_at=naive(now)
                )
            )

    def copy_sources(self, version_ids: Sequence[int]) -> dict[int, str]:
        if not version_ids:
            return {}
        q = select(_V.version_id, _V.source_arn).where(_V.version_id.in_(list(version_ids)))
        with self._read() as conn:
            return {int(r.version_id): str(r.source_arn) for r in conn.execute(q).all()}


def _check_room(conn: Connection, project_id: int) -> None:
    count = conn.execute(select(func.count()).where(_P.project_id == project_id)).scalar() or 0
    if count >= MAX_POLICIES:
        raise QuotaExceeded(f"the project already has {count} policies, the most a project may have")


def _mismatch(name: str, expected: str, current: str | None) -> str:
    if current is None:
        return f"the project has no policy named {name!r} to update (PolicyRevisionId {expected!r})"
    return f"PolicyRevisionId {expected!r} is not the current revision of policy {name!r}"


def _policy(r: Row[tuple[object, ...]]) -> ProjectPolicy:
    m = r._mapping
    return ProjectPolicy(
        int(m["project_id"]),
        str(m["name"]),
        str(m["document"]),
        str(m["revision_id"]),
        utc(m["created_at"]),
        utc(m["updated_at"]),
    )


def policy_store(repo: object) -> SqlPolicyStore:
    """The policy store on the database of ``repo`` (a SqlRepository: policies live beside projects)."""
    from visionloop.storage.sql import SqlRepository

    if not isinstance(repo, SqlRepository):
        raise TypeError("project policies are kept in the SQL repository's database")
    return SqlPolicyStore(repo.engine)
