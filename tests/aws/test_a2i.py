"""The A2I runtime API with boto3's ``sagemaker-a2i-runtime`` client against the session's real server:
start, describe, list (filters, sort, pagination), stop, delete and every error; a loop answered through
the reviewer queue (core.review) shows its output; DetectCustomLabels starts loops through the hook."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.aws.conftest import ACCOUNT, REGION, Server
from tests.aws.test_serving import _start, _trained, _wait_for
from tests.factories import image_bytes, unique_colour
from visionloop.core import review
from visionloop.core.entities import DatasetType, EntrySource
from visionloop.core.records.review import FlowSettings, LoopPurpose
from visionloop.workflows.review_hook import ReviewHook


def _client(server: Server, validate: bool = True) -> Any:
    return boto3.client(
        "sagemaker-a2i-runtime",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "max_attempts": 1}, parameter_validation=validate),
    )


@pytest.fixture(scope="module")
def a2i(server: Server) -> Any:
    return _client(server)


@pytest.fixture(scope="module")
def a2i_raw(server: Server) -> Any:
    """Skips botocore's checks (required, types, minimums) to show what the server answers."""
    return _client(server, validate=False)


def _flow(rek: Any, server: Server) -> tuple[str, str]:
    """A new project (with labels red and blue) and its default flow's ARN."""
    name = server.name("a2i")
    rek.create_project(ProjectName=name)
    project = server.svc.repo.get_project(name)
    server.svc.repo.add_labels(project.id, ["red", "blue"])
    return name, f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:flow-definition/{name}"


_images = iter(range(10_000))


def _input(server: Server, bucket: str = "a2i-in") -> str:
    """An InputContent naming a new image in a bucket."""
    key = f"img-{next(_images)}.jpg"
    server.svc.buckets.put(bucket, key, image_bytes(color=unique_colour(5000 + int(key[4:-4]))))
    return json.dumps({"taskObject": f"s3://{bucket}/{key}"})


def _error(call: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as e:
        call()
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def test_start_describe_stop_delete(a2i: Any, rek: Any, server: Server) -> None:
    project, flow = _flow(rek, server)
    content = _input(server)
    arn = a2i.start_human_loop(
        HumanLoopName="loop-1", FlowDefinitionArn=flow, HumanLoopInput={"InputContent": content}
    )["HumanLoopArn"]
    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:human-loop/loop-1"
    found = a2i.describe_human_loop(HumanLoopName="loop-1")
    assert found["HumanLoopStatus"] == "InProgress" and found["HumanLoopArn"] == arn
    assert found["FlowDefinitionArn"] == flow and "HumanLoopOutput" not in found
    assert abs(found["CreationTime"] - datetime.now(UTC)) < timedelta(minutes=1)
    assert found["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/json"
    assert review.get_flow(server.svc, project).name == project  # the default flow was created
    # the same call again is the same loop; another input under the name is a conflict
    again = a2i.start_human_loop(
        HumanLoopName="loop-1", FlowDefinitionArn=flow, HumanLoopInput={"InputContent": content}
    )
    assert again["HumanLoopArn"] == arn
    code, status, _ = _error(
        lambda: a2i.start_human_loop(
            HumanLoopName="loop-1", FlowDefinitionArn=flow, HumanLoopInput={"InputContent": _input(server)}
        )
    )
    assert (code, status) == ("ConflictException", 409)
    code, status, message = _error(  # the same image, another name: one image, one open loop
        lambda: a2i.start_human_loop(
            HumanLoopName="loop-1b", FlowDefinitionArn=flow, HumanLoopInput={"InputContent": content}
        )
    )
    assert (code, status) == ("ConflictException", 409) and "open human loop" in message
    code, status, message = _error(lambda: a2i.delete_human_loop(HumanLoopName="loop-1"))
    assert (code, status) == ("ValidationException", 400) and "stop it" in message
    assert a2i.stop_human_loop(HumanLoopName="loop-1")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert a2i.describe_human_loop(HumanLoopName="loop-1")["HumanLoopStatus"] == "Stopped"
    a2i.stop_human_loop(HumanLoopName="loop-1")  # again: nothing to do
    a2i.delete_human_loop(HumanLoopName="loop-1")
    for call in (a2i.describe_human_loop, a2i.delete_human_loop, a2i.stop_human_loop):
        code, status, _ = _error(lambda call=call: call(HumanLoopName="loop-1"))
        assert (code, status) == ("ResourceNotFoundException", 404)
    assert a2i.list_human_loops(FlowDefinitionArn=flow)["HumanLoopSummaries"] == []


def test_bad_requests(a2i: Any, a2i_raw: Any, rek: Any, server: Server) -> None:
    _, flow = _flow(rek, server)
    ok = {"InputContent": _input(server)}
    for name in ("Upper", "under_score", "-dash", "dash-", "a" * 64):
        code, status, message = _error(
            lambda name=name: a2i.start_human_loop(
                HumanLoopName=name, FlowDefinitionArn=flow, HumanLoopInput=ok
            )
        )
        assert (code, status) == ("ValidationException", 400), name
        assert "humanLoopName" in message
    for bad_arn in ("arn:aws:sagemaker:us-east-1:123:flow-definition/x", "flow", "x" * 1025):
        code, status, _ = _error(
            lambda a=bad_arn: a2i.start_human_loop(HumanLoopName="b1", FlowDefinitionArn=a, HumanLoopInput=ok)
        )
        assert (code, status) == ("ValidationException", 400)
    nowhere = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:flow-definition/no-such-project"
    code, status, _ = _error(
        lambda: a2i.start_human_loop(HumanLoopName="b1", FlowDefinitionArn=nowhere, HumanLoopInput=ok)
    )
    assert (code, status) == ("ResourceNotFoundException", 404)
    for content in (
        "not json",
        "[1]",
        json.dumps({"nothing": 1}),
        json.dumps({"taskObject": "s3://a2i-in/nope.jpg"}),
    ):
        code, status, _ = _error(
            lambda c=content: a2i.start_human_loop(
                HumanLoopName="b2", FlowDefinitionArn=flow, HumanLoopInput={"InputContent": c}
            )
        )
        assert (code, status) == ("ValidationException", 400), content
    server.svc.buckets.put("a2i-in", "text.jpg", b"not an image")
    code, status, _ = _error(
        lambda: a2i.start_human_loop(
            HumanLoopName="b3",
            FlowDefinitionArn=flow,
            HumanLoopInput={"InputContent": json.dumps({"taskObject": "s3://a2i-in/text.jpg"})},
        )
    )
    assert (code, status) == ("ValidationException", 400)
    code, status, _ = _error(
        lambda: a2i.start_human_loop(
            HumanLoopName="b4",
            FlowDefinitionArn=flow,
            HumanLoopInput=ok,
            DataAttributes={"ContentClassifiers": ["FreeOfMalware"]},
        )
    )
    assert (code, status) == ("ValidationException", 400)
    # what botocore would refuse before sending, sent anyway
    for kwargs in (
        {"FlowDefinitionArn": flow, "HumanLoopInput": ok},
        {"HumanLoopName": "b5", "HumanLoopInput": ok},
        {"HumanLoopName": "b5", "FlowDefinitionArn": flow},
        {"HumanLoopName": "b5", "FlowDefinitionArn": flow, "HumanLoopInput": {}},
        {"HumanLoopName": "b5", "FlowDefinitionArn": flow, "HumanLoopInput": {"InputContent": 5}},
    ):
        code, status, _ = _error(lambda kw=kwargs: a2i_raw.start_human_loop(**kw))
        assert (code, status) == ("ValidationException", 400), kwargs
    code, status, _ = _error(lambda: a2i_raw.list_human_loops(FlowDefinitionArn=flow, MaxResults=101))
    assert (code, status) == ("ValidationException", 400)
    code, status, _ = _error(lambda: a2i_raw.list_human_loops(FlowDefinitionArn=flow, MaxResults=0))
    assert (code, status) == ("ValidationException", 400)
    code, status, _ = _error(lambda: a2i_raw.list_human_loops(FlowDefinitionArn=flow, SortOrder="Sideways"))
    assert (code, status) == ("ValidationException", 400)
    code, status, _ = _error(lambda: a2i.list_human_loops(FlowDefinitionArn=flow, NextToken="garbage"))
    assert (code, status) == ("ValidationException", 400)
    code, status, _ = _error(lambda: a2i_raw.list_human_loops())
    assert (code, status) == ("ValidationException", 400)
    code, status, _ = _error(lambda: a2i.list_human_loops(FlowDefinitionArn=nowhere))
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert not server.svc.repo.find_loop("b1") and not server.svc.repo.find_loop("b5")


def test_raw_http_errors(server: Server) -> None:
    """What no SDK sends: bodies that are not JSON objects, members of the wrong type, unknown routes."""
    cases = [
        ("POST", "/human-loops", b"not json"),
        ("POST", "/human-loops", b"[1, 2]"),
        ("POST", "/human-loops", b'{"HumanLoopName": "x", "FlowDefinitionArn": "a", "HumanLoopInput": "x"}'),
        ("POST", "/human-loops/stop", b'{"HumanLoopName": 5}'),
        ("GET", "/human-loops/Bad_Name", b""),
        ("PUT", "/human-loops/loop-x", b"{}"),
        ("POST", "/human-loops/loop-x/extra", b"{}"),
        ("GET", "/human-loops?FlowDefinitionArn=x&CreationTimeAfter=yesterday", b""),
    ]
    for method, path, body in cases:
        r = httpx.request(method, server.url + path, content=body)
        assert r.status_code == 400, (method, path, r.text)
        assert r.headers["x-amzn-errortype"] == "ValidationException" and r.json()["message"]
        assert r.headers["content-type"] == "application/json" and r.headers["x-amzn-requestid"]


def test_list_filters_sort_and_pagination(a2i: Any, rek: Any, server: Server) -> None:
    _, flow = _flow(rek, server)
    _, other_flow = _flow(rek, server)
    names = [f"page-{i}" for i in range(5)]
    before = datetime.now(UTC) - timedelta(seconds=1)
    for name in names:
        a2i.start_human_loop(
            HumanLoopName=name, FlowDefinitionArn=flow, HumanLoopInput={"InputContent": _input(server)}
        )
        time.sleep(0.01)
    a2i.start_human_loop(
        HumanLoopName="elsewhere",
        FlowDefinitionArn=other_flow,
        HumanLoopInput={"InputContent": _input(server)},
    )
    listed = a2i.list_human_loops(FlowDefinitionArn=flow)["HumanLoopSummaries"]
    assert [s["HumanLoopName"] for s in listed] == names[::-1]  # Descending by default
    assert {s["HumanLoopStatus"] for s in listed} == {"InProgress"}
    assert all(s["FlowDefinitionArn"] == flow for s in listed)
    up = a2i.list_human_loops(FlowDefinitionArn=flow, SortOrder="Ascending")["HumanLoopSummaries"]
    assert [s["HumanLoopName"] for s in up] == names
    pages = a2i.get_paginator("list_human_loops").paginate(
        FlowDefinitionArn=flow, SortOrder="Ascending", PaginationConfig={"PageSize": 2}
    )
    got = [[s["HumanLoopName"] for s in p["HumanLoopSummaries"]] for p in pages]
    assert got == [names[0:2], names[2:4], names[4:5]]
    first = a2i.list_human_loops(FlowDefinitionArn=flow, MaxResults=2)
    assert a2i.list_human_loops(FlowDefinitionArn=flow, MaxResults=2)["NextToken"] == first["NextToken"]
    code, _, _ = _error(  # a token of another query
        lambda: a2i.list_human_loops(
            FlowDefinitionArn=flow, SortOrder="Ascending", NextToken=first["NextToken"]
        )
    )
    assert code == "ValidationException"
    assert (
        a2i.list_human_loops(
            FlowDefinitionArn=flow, CreationTimeAfter=datetime.now(UTC) + timedelta(hours=1)
        )["HumanLoopSummaries"]
        == []
    )
    assert (
        len(a2i.list_human_loops(FlowDefinitionArn=flow, CreationTimeAfter=before)["HumanLoopSummaries"]) == 5
    )
    assert a2i.list_human_loops(FlowDefinitionArn=flow, CreationTimeBefore=before)["HumanLoopSummaries"] == []
    middle = a2i.describe_human_loop(HumanLoopName=names[2])["CreationTime"]
    window = a2i.list_human_loops(
        FlowDefinitionArn=flow, CreationTimeAfter=middle - timedelta(milliseconds=1), SortOrder="Ascending"
    )["HumanLoopSummaries"]
    assert [s["HumanLoopName"] for s in window] == names[2:]


def test_an_answered_loop_has_its_output_and_a_train_entry(a2i: Any, rek: Any, server: Server) -> None:
    project, flow = _flow(rek, server)
    content = json.loads(_input(server))
    content["customLabels"] = [{"Name": "blue", "Confidence": 61.5}]
    a2i.start_human_loop(
        HumanLoopName="answered", FlowDefinitionArn=flow, HumanLoopInput={"InputContent": json.dumps(content)}
    )
    item = review.next_item(server.svc, "alice", project=project)
    assert (
        item is not None
        and item.loop.name == "answered"
        and item.choices == ("blue", "red", "None of the above")
    )
    review.submit_answer(server.svc, "answered", "alice", "red")
    found = a2i.describe_human_loop(HumanLoopName="answered")
    assert found["HumanLoopStatus"] == "Completed"
    uri = found["HumanLoopOutput"]["OutputS3Uri"]
    assert uri.startswith(f"s3://human-review/{project}/") and uri.endswith("/answered/output.json")
    bucket, _, key = uri[5:].partition("/")
    out = json.loads(server.svc.buckets.get(bucket, key))
    assert out["flowDefinitionArn"] == flow and out["humanLoopName"] == "answered"
    assert out["inputContent"] == content
    assert out["humanAnswers"][0]["workerId"] == "alice"
    assert out["humanAnswers"][0]["answerContent"] == {"label": "red"}
    p = server.svc.repo.get_project(project)
    train = server.svc.repo.find_dataset(p.id, DatasetType.TRAIN)
    assert train is not None
    [entry] = [e for e in server.svc.repo.list_entries(train.id) if e.source is EntrySource.HUMAN_REVIEW]
    assert entry.labels == ("red",) and entry.review_ref == found["HumanLoopArn"]
    [red] = [a for a in review.agreement_by_label(server.svc, project) if a.label == "blue"]
    assert red.model_said == 1 and red.agreed == 0
    code, _, _ = _error(lambda: a2i.stop_human_loop(HumanLoopName="answered"))
    assert code == "ValidationException"
    a2i.delete_human_loop(HumanLoopName="answered")


def test_detect_custom_labels_starts_loops_through_the_hook(rek: Any, a2i: Any, server: Server) -> None:
    project, arns = _trained(rek, server, "v1")
    name = project.rsplit("/", 2)[-2]
    _start(rek, project, "v1", arns["v1"])
    try:
        review.put_flow(server.svc, name, FlowSettings(min_confidence=90.0), region=REGION, account=ACCOUNT)
        hook = server.serving.review_hook
        assert isinstance(hook, ReviewHook)
        hook.invalidate(name)
        purple = image_bytes(color=(120, 35, 120))  # half red, half blue: a doubtful answer
        red = image_bytes(color=(215, 28, 28))
        for image in (purple, red, purple):
            rek.detect_custom_labels(ProjectVersionArn=arns["v1"], Image={"Bytes": image}, MinConfidence=0)
        hook.flush()
        flow = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:flow-definition/{name}"
        loops = a2i.list_human_loops(FlowDefinitionArn=flow)["HumanLoopSummaries"]
        assert len(loops) == 1  # the red one was confident; the purple one has its open loop already
        loop = server.svc.repo.find_loop(loops[0]["HumanLoopName"])
        assert loop is not None and loop.purpose is LoopPurpose.LOW_CONFIDENCE
        assert loop.model_version == "v1" and loop.source_ref == f"detect://{name}/v1"
        assert {p.label for p in loop.predictions} == {"red", "blue"}
        assert review.item_image(server.svc, loop) == purple
    finally:
        rek.stop_project_version(ProjectVersionArn=arns["v1"])
        _wait_for(rek, project, "v1", "STOPPED")
