"""The native human-review endpoints in-process: a project's flow (create, partial update, bad values),
loops (start from bytes, a bucket object or an A2I input; list; describe with answers and output; stop;
delete) and the agreement per label."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.factories import image_bytes, make_project, unique_colour
from visionloop.api.app import create_app
from visionloop.bootstrap import fake_engine
from visionloop.core import review
from visionloop.core.services import Services
from visionloop.core.serving import Serving, ServingPolicy
from visionloop.settings import Settings
from visionloop.workflows.inference import ProcessInferenceHost

FLOW = "/api/v1/projects/logos/flow"
LOOPS = "/api/v1/projects/logos/loops"


@pytest.fixture
def client(services: Services, settings: Settings) -> Iterator[TestClient]:
    make_project(services, "logos")
    services.repo.add_labels(services.repo.get_project("logos").id, ["amazon", "aws"])
    serving = Serving(ProcessInferenceHost(fake_engine, threads=1), ServingPolicy())
    with TestClient(create_app(services, settings, serving), raise_server_exceptions=False) as c:
        yield c


def _b64(i: int) -> str:
    return base64.b64encode(image_bytes(color=unique_colour(7000 + i))).decode()


def test_flow_create_update_and_errors(client: TestClient) -> None:
    assert client.get(FLOW).status_code == 404
    r = client.put(FLOW, json={"min_confidence": 70, "instructions": "Which logo?"})
    assert r.status_code == 200, r.text
    flow = r.json()
    assert flow["name"] == "logos" and flow["arn"].endswith(":flow-definition/logos")
    assert flow["choices"] == ["amazon", "aws", "None of the above"]
    assert flow["reviewers_per_item"] == 1 and flow["min_confidence"] == 70
    r = client.put(FLOW, json={"reviewers_per_item": 3, "queue_order": "lowest_margin"})
    assert r.json()["instructions"] == "Which logo?" and r.json()["min_confidence"] == 70  # kept
    assert r.json()["reviewers_per_item"] == 3 and r.json()["queue_order"] == "lowest_margin"
    assert client.put(FLOW, json={"min_confidence": None}).json()["min_confidence"] is None
    for bad, status in (
        ({"reviewers_per_item": 0}, 400),
        ({"min_confidence": 120}, 400),
        ({"audit_rate": -1}, 400),
        ({"instructions": None}, 400),
        ({"output_bucket": "../x"}, 400),
        ({"queue_order": "random"}, 422),
        ({"name": "other"}, 409),
        ({"lease_seconds": "soon"}, 422),
    ):
        r = client.put(FLOW, json=bad)
        assert r.status_code == status, (bad, r.text)
        assert r.json()["error"]["message"]
    assert client.put("/api/v1/projects/nope/flow", json={}).status_code == 404


def test_loops_start_list_describe_stop_delete(client: TestClient, services: Services) -> None:
    r = client.post(LOOPS, json={"name": "first", "image_base64": _b64(1)})
    assert r.status_code == 201, r.text
    again = client.post(LOOPS, json={"name": "first", "image_base64": _b64(1)})
    assert again.status_code == 201 and again.json()["created_at"] == r.json()["created_at"]  # the same loop
    assert r.json()["status"] == "InProgress" and r.json()["purpose"] == "explicit"
    services.buckets.put("inbox", "a.jpg", image_bytes(color=unique_colour(7002)))
    assert client.post(LOOPS, json={"s3_object": {"bucket": "inbox", "name": "a.jpg"}}).status_code == 201
    content = {"image": {"bytes": _b64(3)}, "customLabels": [{"Name": "aws", "Confidence": 55}]}
    r = client.post(LOOPS, json={"name": "third", "input_content": content, "purpose": "audit"})
    assert r.status_code == 201 and r.json()["model_answer"] == "aws" and r.json()["purpose"] == "audit"
    for bad, status in (
        ({}, 400),
        ({"image_base64": _b64(4), "s3_object": {"bucket": "inbox", "name": "a.jpg"}}, 400),
        ({"image_base64": "%%%"}, 400),
        ({"image_base64": base64.b64encode(b"text").decode()}, 400),
        ({"s3_object": {"bucket": "inbox", "name": "missing.jpg"}}, 404),
        ({"name": "Bad Name", "image_base64": _b64(5)}, 400),
        ({"name": "first", "image_base64": _b64(9)}, 409),  # the name is taken
        ({"image_base64": _b64(1)}, 409),  # the image has an open loop
        ({"image_base64": _b64(6), "purpose": "low_confidence"}, 422),
    ):
        r = client.post(LOOPS, json=bad)
        assert r.status_code == status, (bad, r.text)
    names = [lp["name"] for lp in client.get(LOOPS).json()["loops"]]
    assert len(names) == 3 and names[0] == "third" and names[-1] == "first"
    assert [
        lp["name"] for lp in client.get(LOOPS, params={"ascending": True, "limit": 1}).json()["loops"]
    ] == ["first"]
    assert client.get(LOOPS, params={"status": "Completed"}).json()["loops"] == []
    assert client.get(LOOPS, params={"status": "Done"}).status_code == 422

    item = review.next_item(services, "rita", project="logos")
    assert item is not None and item.loop.name == "first"
    review.submit_answer(services, "first", "rita", "amazon")
    detail = client.get("/api/v1/loops/first").json()
    assert detail["status"] == "Completed" and detail["result"] == "added" and detail["entry_id"]
    assert detail["answers"][0]["reviewer"] == "rita" and detail["answers"][0]["answer"] == "amazon"
    assert detail["output"]["humanLoopName"] == "first"
    agreement = client.get("/api/v1/projects/logos/review/agreement").json()["labels"]
    assert {a["label"]: a["human_said"] for a in agreement} == {"amazon": 1, "None of the above": 0}

    assert client.delete("/api/v1/loops/third").status_code == 409  # open
    assert client.post("/api/v1/loops/third/stop").json()["status"] == "Stopped"
    assert client.delete("/api/v1/loops/third").status_code == 204
    assert client.get("/api/v1/loops/third").status_code == 404
    assert client.post("/api/v1/loops/first/stop").status_code == 409  # Completed
    assert client.get("/api/v1/projects/nope/loops").status_code == 404
