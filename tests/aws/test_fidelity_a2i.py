"""ListHumanLoops' CreationTimeAfter/CreationTimeBefore with a loop's own reported CreationTime, through
boto3's sagemaker-a2i-runtime client (which reads the epoch seconds into a datetime and sends it back
as ISO-8601): both bounds are inclusive at the millisecond the loop reports (issue 19)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.aws.conftest import ACCOUNT, REGION, Server
from tests.factories import image_bytes, unique_colour


@pytest.fixture(scope="module")
def a2i(server: Server) -> Any:
    return boto3.client(
        "sagemaker-a2i-runtime",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def _names(answer: dict[str, Any]) -> list[str]:
    return [s["HumanLoopName"] for s in answer["HumanLoopSummaries"]]


def test_a_loops_reported_creation_time_is_an_inclusive_bound(a2i: Any, rek: Any, server: Server) -> None:
    name = server.name("a2i-times")
    rek.create_project(ProjectName=name)
    server.svc.repo.add_labels(server.svc.repo.get_project(name).id, ["red", "blue"])
    flow = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:flow-definition/{name}"
    server.svc.buckets.create_bucket("a2i-times")
    loops = [f"t-{i}" for i in range(4)]
    for i, loop in enumerate(loops):
        key = f"{name}/{i}.jpg"
        server.svc.buckets.put("a2i-times", key, image_bytes(color=unique_colour(7100 + i)))
        content = json.dumps({"taskObject": f"s3://a2i-times/{key}"})
        a2i.start_human_loop(
            HumanLoopName=loop, FlowDefinitionArn=flow, HumanLoopInput={"InputContent": content}
        )

    for loop in loops:
        created = a2i.describe_human_loop(HumanLoopName=loop)["CreationTime"]
        (summary,) = [
            s
            for s in a2i.list_human_loops(FlowDefinitionArn=flow)["HumanLoopSummaries"]
            if s["HumanLoopName"] == loop
        ]
        assert summary["CreationTime"] == created  # the same millisecond in both answers
        at_or_before = _names(a2i.list_human_loops(FlowDefinitionArn=flow, CreationTimeBefore=created))
        at_or_after = _names(a2i.list_human_loops(FlowDefinitionArn=flow, CreationTimeAfter=created))
        assert loop in at_or_before and loop in at_or_after
        exactly = a2i.list_human_loops(
            FlowDefinitionArn=flow, CreationTimeAfter=created, CreationTimeBefore=created
        )
        assert loop in _names(exactly)
        one_ms = timedelta(milliseconds=1)
        assert loop not in _names(
            a2i.list_human_loops(FlowDefinitionArn=flow, CreationTimeBefore=created - one_ms)
        )
        assert loop not in _names(
            a2i.list_human_loops(FlowDefinitionArn=flow, CreationTimeAfter=created + one_ms)
        )

    # bounds at datetime's own limits are no server error
    last = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert len(_names(a2i.list_human_loops(FlowDefinitionArn=flow, CreationTimeBefore=last))) == len(loops)
    first = datetime(1, 1, 1, tzinfo=UTC)  # botocore sends it as "1-01-01T00:00:00Z"
    assert len(_names(a2i.list_human_loops(FlowDefinitionArn=flow, CreationTimeAfter=first))) == len(loops)
