"""Flow definitions with boto3's ``sagemaker`` client against the session's real server: create (the
fields a review flow takes, the rest kept as given), describe, list (filters, order, pages), delete, the
errors; a flow created this way is the one the A2I runtime starts loops on and the reviewers answer."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.aws.conftest import ACCOUNT, REGION, Server
from tests.factories import image_bytes, unique_colour
from visionloop.core import review
from visionloop.sagemaker.responses import OPERATIONS, operations_table

WORKTEAM = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:workteam/private-crowd/reviewers"
TASK_UI = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:human-task-ui/moderation-ui"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/service-role/AmazonSageMaker-ExecutionRole"
CONDITIONS = {
    "Conditions": [
        {
            "ConditionType": "ModerationLabelConfidenceCheck",
            "ConditionParameters": {"ModerationLabelName": "Suggestive", "ConfidenceLessThan": 98},
        },
        {
            "And": [
                {
                    "ConditionType": "ModerationLabelConfidenceCheck",
                    "ConditionParameters": {
                        "ModerationLabelName": "Swimwear or Underwear",
                        "ConfidenceEquals": 1,
                    },
                },
                {"ConditionType": "Sampling", "ConditionParameters": {"RandomSamplingPercentage": 5}},
            ]
        },
    ]
}


def aws_client(server: Server, service: str = "sagemaker", validate: bool = True) -> Any:
    """A boto3 client of ``service`` on the server; no retries, so every error is seen as sent."""
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "max_attempts": 1}, parameter_validation=validate),
    )


@pytest.fixture(scope="module")
def sm(server: Server) -> Any:
    return aws_client(server)


@pytest.fixture(scope="module")
def sm_raw(server: Server) -> Any:
    """Skips botocore's checks (required, types, minimums) to show what the server answers."""
    return aws_client(server, validate=False)


def human_loop_config(**changes: Any) -> dict[str, Any]:
    return {
        "WorkteamArn": WORKTEAM,
        "HumanTaskUiArn": TASK_UI,
        "TaskTitle": "Is this image fit for the shop?",
        "TaskDescription": "Pick the moderation label that applies, or none of the above.",
        "TaskCount": 2,
        "TaskAvailabilityLifetimeInSeconds": 3 * 24 * 3600,
        "TaskTimeLimitInSeconds": 900,
        "TaskKeywords": ["moderation", "images"],
        **changes,
    }


def create_moderation_flow(sm: Any, name: str, **changes: Any) -> str:
    """A flow for DetectModerationLabels, as the AWS samples create one (``changes``: members replaced; a
    None leaves the member out)."""
    request = {
        "FlowDefinitionName": name,
        "HumanLoopRequestSource": {
            "AwsManagedHumanLoopRequestSource": "AWS/Rekognition/DetectModerationLabels/Image/V3"
        },
        "HumanLoopActivationConfig": {
            "HumanLoopActivationConditionsConfig": {"HumanLoopActivationConditions": json.dumps(CONDITIONS)}
        },
        "HumanLoopConfig": human_loop_config(),
        "OutputConfig": {"S3OutputPath": "s3://flow-output/a2i-results"},
        "RoleArn": ROLE,
        "Tags": [{"Key": "team", "Value": "trust-and-safety"}],
        **changes,
    }
    arn: str = sm.create_flow_definition(**{k: v for k, v in request.items() if v is not None})[
        "FlowDefinitionArn"
    ]
    return arn


def _error(call: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as e:
        call()
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def test_create_and_describe_a_moderation_flow(sm: Any, server: Server) -> None:
    name = server.name("moderation-flow")
    arn = create_moderation_flow(sm, name)
    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:flow-definition/{name}"

    d = sm.describe_flow_definition(FlowDefinitionName=name)
    assert d["FlowDefinitionArn"] == arn and d["FlowDefinitionName"] == name
    assert d["FlowDefinitionStatus"] == "Active"
    assert abs(d["CreationTime"].timestamp() - time.time()) < 60
    assert d["HumanLoopRequestSource"] == {
        "AwsManagedHumanLoopRequestSource": "AWS/Rekognition/DetectModerationLabels/Image/V3"
    }
    conditions = d["HumanLoopActivationConfig"]["HumanLoopActivationConditionsConfig"]
    assert json.loads(conditions["HumanLoopActivationConditions"]) == CONDITIONS
    assert d["HumanLoopConfig"] == human_loop_config()
    assert d["OutputConfig"] == {"S3OutputPath": "s3://flow-output/a2i-results"}
    assert d["RoleArn"] == ROLE

    # the same flow the review loops use: its settings took the task's fields
    flow = review.get_flow(server.svc, name)
    assert flow.arn == arn
    s = flow.settings
    assert (s.reviewers_per_item, s.lease_seconds, s.time_limit_seconds) == (2, 900, 3 * 24 * 3600)
    assert s.instructions == "Pick the moderation label that applies, or none of the above."
    assert s.output_bucket == "flow-output"
    assert s.labels == ("Suggestive", "Swimwear or Underwear")  # what the conditions check


def test_settings_changed_elsewhere_show_in_describe(sm: Any, server: Server) -> None:
    name = server.name("changed-flow")
    create_moderation_flow(sm, name)
    flow = review.get_flow(server.svc, name)
    changed = type(flow.settings)(
        **{**flow.settings.__dict__, "reviewers_per_item": 3, "instructions": "New"}
    )
    review.put_flow(server.svc, name, changed, region=REGION, account=ACCOUNT)
    config = sm.describe_flow_definition(FlowDefinitionName=name)["HumanLoopConfig"]
    assert (config["TaskCount"], config["TaskDescription"]) == (3, "New")
    assert config["TaskTitle"] == "Is this image fit for the shop?"  # kept as given


def test_a_custom_flow_is_a_projects_review_flow(sm: Any, rek: Any, server: Server) -> None:
    """Without a request source the flow is for StartHumanLoop; the tag names the project it reviews,
    an A2I loop started on it waits in the review queue, and only then deleting the flow is refused."""
    project = server.name("tagged")
    rek.create_project(ProjectName=project)
    name = server.name("custom-flow")
    arn = sm.create_flow_definition(
        FlowDefinitionName=name,
        HumanLoopConfig=human_loop_config(TaskCount=1),
        OutputConfig={"S3OutputPath": "s3://custom-output/"},
        RoleArn=ROLE,
        Tags=[{"Key": "visionloop:project", "Value": project}],
    )["FlowDefinitionArn"]
    flow = review.get_flow(server.svc, project)
    assert (flow.name, flow.arn, flow.settings.labels) == (name, arn, ())
    d = sm.describe_flow_definition(FlowDefinitionName=name)
    assert "HumanLoopRequestSource" not in d and "HumanLoopActivationConfig" not in d

    a2i = aws_client(server, "sagemaker-a2i-runtime")
    server.svc.buckets.put("custom-input", "a.jpg", image_bytes(color=unique_colour(7101)))
    a2i.start_human_loop(
        HumanLoopName="custom-flow-loop",
        FlowDefinitionArn=arn,
        HumanLoopInput={"InputContent": json.dumps({"taskObject": "s3://custom-input/a.jpg"})},
    )
    listed = a2i.list_human_loops(FlowDefinitionArn=arn)["HumanLoopSummaries"]
    assert [x["HumanLoopName"] for x in listed] == ["custom-flow-loop"]
    item = review.next_item(server.svc, "flow-reviewer", project=project)
    assert item is not None and item.loop.name == "custom-flow-loop" and item.flow.arn == arn
    review.release_item(server.svc, item.loop, "flow-reviewer")

    code, status, message = _error(lambda: sm.delete_flow_definition(FlowDefinitionName=name))
    assert (code, status) == ("ResourceInUse", 400) and "human loops" in message
    a2i.stop_human_loop(HumanLoopName="custom-flow-loop")
    a2i.delete_human_loop(HumanLoopName="custom-flow-loop")
    sm.delete_flow_definition(FlowDefinitionName=name)
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_flow_definition(FlowDefinitionName=name)
    assert server.svc.repo.get_project(project).name == project  # the project stays


def test_a_projects_own_flow_is_listed_and_described(sm: Any, rek: Any, server: Server) -> None:
    project = server.name("Own_Flow")
    rek.create_project(ProjectName=project)
    flow = review.ensure_flow(server.svc, project, region=REGION, account=ACCOUNT)
    d = sm.describe_flow_definition(FlowDefinitionName=project)
    assert d["FlowDefinitionArn"] == flow.arn
    assert d["HumanLoopConfig"]["TaskCount"] == flow.settings.reviewers_per_item
    assert d["HumanLoopConfig"]["TaskAvailabilityLifetimeInSeconds"] == flow.settings.time_limit_seconds
    assert d["OutputConfig"] == {"S3OutputPath": f"s3://{flow.settings.output_bucket}/"}
    assert d["RoleArn"].startswith(f"arn:aws:iam::{ACCOUNT}:role/")
    names = [f["FlowDefinitionName"] for f in sm.list_flow_definitions()["FlowDefinitionSummaries"]]
    assert project in names


def test_list_filters_orders_and_pages(sm: Any, server: Server) -> None:
    names = [server.name("listed") for _ in range(3)]
    for name in names:
        create_moderation_flow(sm, name)
    start = sm.describe_flow_definition(FlowDefinitionName=names[0])["CreationTime"]  # as reported
    found = sm.list_flow_definitions(CreationTimeAfter=start, SortOrder="Ascending")[
        "FlowDefinitionSummaries"
    ]
    assert [f["FlowDefinitionName"] for f in found] == names
    assert {f["FlowDefinitionStatus"] for f in found} == {"Active"}
    newest = sm.list_flow_definitions(CreationTimeAfter=start)["FlowDefinitionSummaries"]
    assert [f["FlowDefinitionName"] for f in newest] == names[::-1]
    # a flow's own reported CreationTime is inside both bounds
    first = found[0]["CreationTime"]
    both = sm.list_flow_definitions(CreationTimeAfter=first, CreationTimeBefore=first)
    assert [f["FlowDefinitionName"] for f in both["FlowDefinitionSummaries"]] == names[:1]

    pages = sm.get_paginator("list_flow_definitions").paginate(
        CreationTimeAfter=start, SortOrder="Ascending", PaginationConfig={"PageSize": 2}
    )
    chunks = [[f["FlowDefinitionName"] for f in p["FlowDefinitionSummaries"]] for p in pages]
    assert chunks == [names[:2], names[2:]]
    code, status, _ = _error(lambda: sm.list_flow_definitions(NextToken="bad-token"))
    assert (code, status) == ("ValidationException", 400)


def test_create_errors(sm: Any, sm_raw: Any, rek: Any, server: Server) -> None:
    name = server.name("taken")
    create_moderation_flow(sm, name)
    with pytest.raises(sm.exceptions.ResourceInUse):
        create_moderation_flow(sm, name)

    # a project has one flow
    project = server.name("one-flow")
    rek.create_project(ProjectName=project)
    review.ensure_flow(server.svc, project, region=REGION, account=ACCOUNT)
    code, _, message = _error(
        lambda: create_moderation_flow(
            sm, server.name("second"), Tags=[{"Key": "visionloop:project", "Value": project}]
        )
    )
    assert code == "ResourceInUse" and "one flow" in message
    # a flow for one project may not take the name of another project (that project's own flow's name)
    other = server.name("other")
    rek.create_project(ProjectName=other)
    tagged = server.name("tagged-for")
    rek.create_project(ProjectName=tagged)
    code, _, message = _error(
        lambda: create_moderation_flow(sm, other, Tags=[{"Key": "visionloop:project", "Value": tagged}])
    )
    assert code == "ResourceInUse" and "name of a project" in message

    def refused(**changes: Any) -> tuple[str, int, str]:
        return _error(lambda: create_moderation_flow(sm_raw, server.name("bad"), **changes))

    cases: list[tuple[dict[str, Any], str]] = [
        ({"FlowDefinitionName": "Upper_Case"}, "flowDefinitionName"),
        ({"RoleArn": "not-a-role-arn-at-all"}, "roleArn"),
        ({"OutputConfig": {"S3OutputPath": "https://example.com/x"}}, "s3OutputPath"),
        ({"HumanLoopConfig": human_loop_config(TaskCount=4)}, "taskCount"),
        ({"HumanLoopConfig": human_loop_config(TaskTimeLimitInSeconds=10)}, "taskTimeLimitInSeconds"),
        ({"HumanLoopConfig": human_loop_config(WorkteamArn="arn:aws:iam::1:role/x")}, "workteamArn"),
        ({"HumanLoopConfig": human_loop_config(TaskDescription=None)}, "taskDescription"),
        ({"HumanLoopRequestSource": {"AwsManagedHumanLoopRequestSource": "AWS/Other"}}, "enum"),
        ({"HumanLoopActivationConfig": None}, "HumanLoopActivationConfig is required"),
        (
            {
                "HumanLoopActivationConfig": {
                    "HumanLoopActivationConditionsConfig": {"HumanLoopActivationConditions": "{not json"}
                }
            },
            "not a JSON document",
        ),
        (
            {
                "HumanLoopActivationConfig": {
                    "HumanLoopActivationConditionsConfig": {
                        "HumanLoopActivationConditions": json.dumps(
                            {"Conditions": [{"ConditionType": "Other", "ConditionParameters": {}}]}
                        )
                    }
                }
            },
            "ConditionType",
        ),
        ({"Tags": [{"Key": "visionloop:project", "Value": "no-such-project-here"}]}, "does not exist"),
    ]
    for changes, expected in cases:
        code, status, message = refused(**changes)
        assert (code, status) == ("ValidationException", 400), (changes, message)
        assert expected in message, (changes, message)
    # nothing was created by a refused request
    assert not [n for n in (f.name for f in server.svc.repo.list_flows()) if n.startswith("bad-")]


def test_unknown_flow_and_operation(sm: Any, sm_raw: Any) -> None:
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_flow_definition(FlowDefinitionName="no-such-flow")
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.delete_flow_definition(FlowDefinitionName="no-such-flow")
    code, status, _ = _error(lambda: sm.list_workteams())
    assert (code, status) == ("UnknownOperationException", 400)
    code, status, _ = _error(lambda: sm_raw.describe_flow_definition(FlowDefinitionName="bad name!"))
    assert (code, status) == ("ValidationException", 400)


def test_the_docs_list_the_operations() -> None:
    """docs/aws.md's SageMaker table is the operations' first docstring lines; each is SageMaker's."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    assert set(OPERATIONS) <= set(model.operation_names)
    page = (Path(__file__).resolve().parents[2] / "docs" / "aws.md").read_text()
    block = page.split("<!-- sagemaker-operations:begin -->\n", 1)[1].split(
        "\n<!-- sagemaker-operations:end -->"
    )[0]
    assert block == operations_table()
