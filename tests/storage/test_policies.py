"""The project policies' store on SQLite and PostgreSQL (tests/storage/conftest.py): names unique per
project, revisions checked in the writing transaction, at most five a project, deleted with the project;
and the copy records of copied model versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from visionloop.core.entities import TaskType
from visionloop.core.records.policies import MAX_POLICIES, RevisionMismatch
from visionloop.errors import AlreadyExists, NotFound, QuotaExceeded
from visionloop.storage.policies import SqlPolicyStore, policy_store
from visionloop.storage.sql import SqlRepository

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DOC = '{"Statement": []}'  # the store keeps any text; core.policies checks documents


def test_policies_are_created_updated_listed_and_deleted(repo: SqlRepository) -> None:
    store = policy_store(repo)
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    other = repo.create_project("q", TaskType.CLASSIFICATION, NOW)
    made = store.put_policy(p.id, "b", DOC, None, "aa01", NOW)
    assert (made.name, made.document, made.revision_id, made.created_at) == ("b", DOC, "aa01", NOW)
    store.put_policy(p.id, "a", "{}", None, "aa02", NOW)
    store.put_policy(other.id, "b", "{}", None, "aa03", NOW)  # names are per project
    with pytest.raises(AlreadyExists):
        store.put_policy(p.id, "b", "{}", None, "aa04", NOW)
    later = NOW + timedelta(minutes=5)
    with pytest.raises(RevisionMismatch):
        store.put_policy(p.id, "b", "{}", "aa02", "aa05", later)  # another policy's revision
    with pytest.raises(RevisionMismatch):
        store.put_policy(p.id, "c", "{}", "aa01", "aa05", later)  # no such policy to update
    updated = store.put_policy(p.id, "b", '{"x": 1}', "AA01", "aa06", later)  # hex: any case
    assert (updated.revision_id, updated.created_at, updated.updated_at) == ("aa06", NOW, later)
    assert [(x.name, x.revision_id) for x in store.list_policies(p.id)] == [("a", "aa02"), ("b", "aa06")]
    with pytest.raises(RevisionMismatch):
        store.delete_policy(p.id, "b", "aa01")  # the old revision
    store.delete_policy(p.id, "b", "aa06")
    store.delete_policy(p.id, "a", None)
    with pytest.raises(NotFound):
        store.delete_policy(p.id, "a", None)
    assert store.list_policies(p.id) == []
    repo.delete_project(other.id)
    assert store.list_policies(other.id) == []


def test_a_project_holds_at_most_five_policies(repo: SqlRepository) -> None:
    store = SqlPolicyStore(repo.engine)
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    for i in range(MAX_POLICIES):
        store.put_policy(p.id, f"p{i}", DOC, None, f"{i:02x}", NOW)
    with pytest.raises(QuotaExceeded):
        store.put_policy(p.id, "one-more", DOC, None, "ff", NOW)
    store.put_policy(p.id, "p0", DOC, "00", "ee", NOW)  # updating one is no new policy
    assert len(store.list_policies(p.id)) == MAX_POLICIES


def test_copies_record_their_source(repo: SqlRepository) -> None:
    store = policy_store(repo)
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    v1 = repo.create_version(p.id, "v1", "fake", "fast", "s" * 64, NOW)
    v2 = repo.create_version(p.id, "v2", "fake", "fast", "s" * 64, NOW)
    store.record_copy(v2.id, "arn:source", NOW)
    assert store.copy_sources([v1.id, v2.id]) == {v2.id: "arn:source"}
    assert store.copy_sources([]) == {}
    repo.delete_version(v2.id)
    assert store.copy_sources([v2.id]) == {}


def test_the_store_needs_the_sql_repository() -> None:
    with pytest.raises(TypeError):
        policy_store(object())
