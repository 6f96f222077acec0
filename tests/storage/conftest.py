"""Fixtures for the storage contract tests: every test that takes ``repo_url`` (or ``repo``) runs once on
SQLite and once on a real PostgreSQL (a throw-away cluster, see tests/storage/postgres.py; skipped with
the reason when PostgreSQL or psycopg is absent)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.storage.postgres import Cluster, start_cluster, why_unavailable
from visionloop.storage.sql import SqlRepository


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(f"PostgreSQL contract tests skipped: {reason}")
    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def repo_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database: a SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    return cluster.fresh_database()


@pytest.fixture
def repo(repo_url: str) -> Iterator[SqlRepository]:
    repository = SqlRepository(repo_url)
    yield repository
    repository.close()
