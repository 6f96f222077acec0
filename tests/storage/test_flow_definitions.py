"""The flow-definition store (storage/flow_definitions.py) on SQLite and PostgreSQL: every project's flow
listed, the CreateFlowDefinition request kept beside a flow and replaced, and a flow deleted only while it
has no human loops (its kept request goes with it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.storage.test_concurrent_stores import new_loop
from visionloop.core.entities import TaskType
from visionloop.core.records.review import FlowSettings
from visionloop.storage.sql import SqlRepository

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_flows_listed_kept_and_deleted(repo: SqlRepository) -> None:
    a = repo.create_project("a", TaskType.CLASSIFICATION, NOW)
    b = repo.create_project("b", TaskType.DETECTION, NOW)
    fb = repo.create_flow(b.id, "flow-b", "arn:b", FlowSettings(), NOW)
    fa = repo.create_flow(a.id, "flow-a", "arn:a", FlowSettings(), NOW + timedelta(seconds=1))
    assert [(f.name, f.project, f.boxes) for f in repo.list_flows()] == [
        ("flow-b", "b", True),
        ("flow-a", "a", False),
    ]

    assert repo.get_flow_definition(fa.id) is None
    repo.put_flow_definition(fa.id, {"RoleArn": "arn:role", "Tags": [{"Key": "k", "Value": "ü"}]})
    repo.put_flow_definition(fa.id, {"RoleArn": "arn:role2"})
    assert repo.get_flow_definition(fa.id) == {"RoleArn": "arn:role2"}

    repo.create_loop(new_loop(fa.id, 1), NOW)
    assert repo.delete_flow(fa.id) is False  # it has a loop: nothing is deleted
    assert repo.get_flow_definition(fa.id) == {"RoleArn": "arn:role2"}
    assert repo.find_loop("loop-1") is not None

    repo.put_flow_definition(fb.id, {"RoleArn": "arn:b"})
    assert repo.delete_flow(fb.id) is True
    assert repo.get_flow_by_name("flow-b") is None and repo.get_flow_definition(fb.id) is None
    assert repo.delete_flow(fb.id) is False  # gone already
    assert [f.name for f in repo.list_flows()] == ["flow-a"]
    assert repo.get_project("b").name == "b"  # the project stays


def test_a_projects_deletion_takes_its_flow_and_kept_request(repo: SqlRepository) -> None:
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    flow = repo.create_flow(p.id, "flow-p", "arn:p", FlowSettings(), NOW)
    repo.put_flow_definition(flow.id, {"RoleArn": "arn:role"})
    repo.delete_project(p.id)
    assert repo.list_flows() == [] and repo.get_flow_definition(flow.id) is None
