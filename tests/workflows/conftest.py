"""Fixtures of the workflow tests that run several servers on one database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.storage.postgres import Cluster, start_cluster, why_unavailable


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A throw-away PostgreSQL (tests/storage/postgres.py); a skip with the reason where Debian's
    PostgreSQL binaries or psycopg are missing."""
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(f"several servers on one PostgreSQL: {reason}")
    started = start_cluster()
    yield started
    started.stop()
