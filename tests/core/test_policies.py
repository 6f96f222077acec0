"""core.policies: what a policy document must be, and the rule that decides copies between projects,
over the real SQL policy store on a SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from visionloop.core.entities import TaskType
from visionloop.core.policies import (
    CopyDenied,
    MalformedPolicy,
    check_copy,
    delete_policy,
    parse_document,
    put_policy,
)
from visionloop.core.records.policies import RevisionMismatch
from visionloop.errors import InvalidInput
from visionloop.storage.policies import SqlPolicyStore
from visionloop.storage.sql import SqlRepository

NOW = datetime(2024, 5, 1, tzinfo=UTC)
SOURCE = "arn:aws:rekognition:us-east-1:123456789012:project/src/version/v1/1714521600000"


def doc(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(resource: object = SOURCE, action: object = "rekognition:CopyProjectVersion") -> dict[str, object]:
    return {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": action, "Resource": resource}


def deny(resource: object = SOURCE, **extra: object) -> dict[str, object]:
    return {**allow(resource), "Effect": "Deny", **extra}


def _not_action() -> dict[str, object]:
    s = allow()
    del s["Action"]
    return {**s, "NotAction": "s3:*"}


def _not_resource(pattern: str) -> dict[str, object]:
    s = allow()
    del s["Resource"]
    return {**s, "NotResource": pattern}


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ("not json", "not JSON"),
        ("[]", "JSON object"),
        ('{"Statement": []}', "needs a Statement"),
        (json.dumps({"Version": "2020-01-01", "Statement": allow()}), "Version"),
        (json.dumps({"Statement": allow(), "Extra": 1}), "unknown policy element"),
        (doc({**allow(), "Effect": "Maybe"}), "Effect"),
        (doc({k: v for k, v in allow().items() if k != "Principal"}), "Principal"),
        (doc({**allow(), "NotAction": "x"}), "exactly one of Action"),
        (doc(allow(resource=[])), "non-empty list"),
        (doc(allow(action=5)), "a string or"),
        (doc({**allow(), "Condition": "x"}), "Condition"),
        (doc({**allow(), "Whatever": 1}), "unknown element"),
        ("\u4e2d", "characters"),
        ("x" * 2001, "characters"),
    ],
)
def test_malformed_documents_are_refused_with_the_reason(document: str, says: str) -> None:
    with pytest.raises(MalformedPolicy, match=says):
        parse_document(document)


def test_a_statement_object_or_list_is_read() -> None:
    assert parse_document(json.dumps({"Statement": allow()})) == [allow()]
    assert len(parse_document(doc(allow(), deny()))) == 2


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[SqlRepository, SqlPolicyStore]]:
    repo = SqlRepository(f"sqlite:///{tmp_path / 'meta.db'}")
    yield repo, SqlPolicyStore(repo.engine)
    repo.close()


def _rule(stores: tuple[SqlRepository, SqlPolicyStore], *documents: str) -> bool:
    """Whether a copy of SOURCE from one project into another is allowed under ``documents``."""
    repo, store = stores
    src = repo.create_project("src", TaskType.CLASSIFICATION, NOW)
    dst = repo.create_project("dst", TaskType.CLASSIFICATION, NOW)
    for i, d in enumerate(documents):
        put_policy(store, src.id, f"p{i}", d, None, NOW)
    check_copy(store, src.id, src.id, SOURCE)  # within the project: always
    try:
        check_copy(store, src.id, dst.id, SOURCE)
    except CopyDenied:
        return False
    return True


@pytest.mark.parametrize(
    ("documents", "allowed"),
    [
        ((), True),  # no policy: same-account copies are allowed
        ((doc(allow()),), True),
        ((doc(allow(resource="arn:aws:rekognition:*:*:project/src/version/*")),), True),
        ((doc(allow(resource="arn:aws:rekognition:*:*:project/src/version/v?/*")),), True),
        ((doc(allow(resource="arn:aws:rekognition:*:*:project/other/*")),), False),
        ((doc(allow(action="rekognition:*")),), True),
        ((doc(allow(action=["s3:GetObject", "REKOGNITION:copyprojectversion"])),), True),  # case-blind
        ((doc(allow(action="rekognition:PutProjectPolicy")),), False),
        ((doc(_not_action()),), True),
        ((doc(allow(resource="*")), doc(deny())), False),  # a Deny anywhere wins
        ((doc(allow(resource="*"), deny(resource="*:version/v2/*")),), True),  # a Deny elsewhere
        ((doc({**allow(), "Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}),), False),
        ((doc(allow(resource="*"), deny(Condition={"Bool": {"aws:SecureTransport": "false"}})),), False),
        ((doc(_not_resource("*:project/other/*")),), True),
    ],
)
def test_copies_into_another_project_follow_the_source_projects_policies(
    stores: tuple[SqlRepository, SqlPolicyStore], documents: tuple[str, ...], allowed: bool
) -> None:
    assert _rule(stores, *documents) is allowed


def test_put_and_delete_check_names_revisions_and_documents(
    stores: tuple[SqlRepository, SqlPolicyStore],
) -> None:
    repo, store = stores
    p = repo.create_project("src", TaskType.CLASSIFICATION, NOW)
    with pytest.raises(InvalidInput, match="policy name"):
        put_policy(store, p.id, "bad name", doc(allow()), None, NOW)
    with pytest.raises(InvalidInput, match="revision id"):
        put_policy(store, p.id, "ok", doc(allow()), "xyz", NOW)
    with pytest.raises(MalformedPolicy):
        put_policy(store, p.id, "ok", "{", None, NOW)
    first = put_policy(store, p.id, "ok", doc(allow()), None, NOW)
    second = put_policy(store, p.id, "ok", doc(deny()), first.revision_id, NOW)
    assert second.revision_id != first.revision_id and len(second.revision_id) == 32
    with pytest.raises(RevisionMismatch):
        delete_policy(store, p.id, "ok", first.revision_id)
    delete_policy(store, p.id, "ok", second.revision_id)
    assert store.list_policies(p.id) == []
