"""The detection log, the drift signal and the inboxes through the native API, in-process, with the colour
engine in real inference units: detections by the native and the AWS API are logged with their source,
queried with filters and pages; an inbox scan detects on the server's units; bad queries get the error
envelope with the right status."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.factories import image_bytes, make_project
from visionloop.api.app import create_app
from visionloop.bootstrap import build_services, fake_engine
from visionloop.core import datasets, ids, review
from visionloop.core.records.review import Detection, FlowSettings, LoopPurpose
from visionloop.core.services import Services
from visionloop.core.serving import Serving, ServingPolicy
from visionloop.core.training import TrainingOptions, request_training, run_training_job
from visionloop.engines.fake import ColourEngine
from visionloop.settings import Settings, load_settings
from visionloop.workflows.detection_log import DetectionLog
from visionloop.workflows.inference import ProcessInferenceHost

RED = image_bytes(color=(230, 10, 10))
BLUE = image_bytes(color=(10, 10, 230))
P = "/api/v1/projects/colours"
REGION, ACCOUNT = "us-east-1", "123456789012"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # the watcher only looks when asked (POST …/inbox/scan): the tests decide when
    return load_settings({"data_dir": str(tmp_path / "var"), "inbox_poll_seconds": 0}, environ={})


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = build_services(settings)
    yield svc
    svc.repo.close()


@pytest.fixture
def client(services: Services, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    root = tmp_path / "d"
    for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        (root / label).mkdir(parents=True)
        for i in range(5):
            (root / label / f"{i}.jpg").write_bytes(image_bytes(color=(colour[0] - i, colour[1], colour[2])))
    make_project(services, "colours")
    datasets.import_folder(services, "colours", str(root))
    request_training(services, "colours", TrainingOptions(version_name="v1"))
    job = services.repo.claim_job(services.clock.now())
    assert job is not None
    run_training_job(services, ColourEngine(), job, REGION, ACCOUNT)
    serving = Serving(ProcessInferenceHost(fake_engine, threads=1), ServingPolicy())
    with TestClient(create_app(services, settings, serving), raise_server_exceptions=False) as c:
        assert c.post(f"{P}/versions/v1/start").status_code == 202
        deadline = time.monotonic() + 30
        while c.get(f"{P}/versions/v1/serving").json()["status"] != "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield c


def flush(client: TestClient) -> None:
    log = client.app.state.serving.detection_log  # type: ignore[attr-defined]
    assert isinstance(log, DetectionLog) and log.flush(30)


def aws_detect(client: TestClient, services: Services, image: bytes) -> dict[str, Any]:
    v = services.repo.get_version(services.repo.get_project("colours").id, "v1")
    arn = ids.version_arn(REGION, ACCOUNT, "colours", "v1", v.created_at)
    r = client.post(
        "/",
        json={"ProjectVersionArn": arn, "Image": {"Bytes": base64.b64encode(image).decode()}},
        headers={
            "X-Amz-Target": "RekognitionService.DetectCustomLabels",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_detections_are_logged_and_queried(client: TestClient, services: Services) -> None:
    for image in (RED, RED, BLUE):
        assert (
            client.post(
                f"{P}/versions/v1/detect", content=image, headers={"content-type": "image/jpeg"}
            ).status_code
            == 200
        )
    aws_detect(client, services, RED)
    r = client.post(
        f"{P}/versions/v1/detect?min_confidence=0", content=BLUE, headers={"content-type": "image/jpeg"}
    )
    assert [lab["name"] for lab in r.json()["labels"]] == ["blue", "red"]
    flush(client)
    r = client.get(f"{P}/detections")
    assert r.status_code == 200, r.text
    body = r.json()
    found = body["detections"]
    assert body["next_cursor"] is None and len(found) == 5
    assert [d["source"] for d in found] == ["api", "aws", "api", "api", "api"]
    assert [d["top_label"] for d in found] == ["blue", "red", "blue", "red", "red"]
    newest = found[0]
    assert [lab["name"] for lab in newest["labels"]] == ["blue", "red"]  # what that request returned
    assert newest["version"] == "v1" and newest["project"] == "colours"
    # its image, and the detection with its probabilities
    image = client.get(newest["image_url"])
    assert (
        image.status_code == 200 and image.content == BLUE and image.headers["content-type"] == "image/jpeg"
    )
    one = client.get(f"{P}/detections/{newest['id']}").json()
    assert {p["name"] for p in one["probabilities"]} == {"blue", "red"} and one["loops"] == []

    # filters
    def ids_of(query: str) -> list[int]:
        r = client.get(f"{P}/detections?{query}")
        assert r.status_code == 200, r.text
        return [d["id"] for d in r.json()["detections"]]

    assert len(ids_of("label=red")) == 4 and len(ids_of("label=blue")) == 2  # min_confidence=0 returned red
    assert ids_of("source=aws") == [found[1]["id"]]
    assert ids_of("label=red&max_confidence=50") == [newest["id"]]  # red's confidence on the blue image
    assert ids_of("max_confidence=50") == []  # the top confidence was never that low
    assert len(ids_of("min_confidence=50")) == 5 and ids_of("version=v2") == []
    first = quote(found[-1]["detected_at"])  # "+00:00" in a URL
    assert len(ids_of(f"since={first}")) == 5 and ids_of(f"until={first}") == []
    # pages of two
    seen, cursor = [], None
    while True:
        r = client.get(f"{P}/detections?limit=2" + (f"&cursor={cursor}" if cursor else "")).json()
        seen += [d["id"] for d in r["detections"]]
        cursor = r["next_cursor"]
        if cursor is None:
            break
    assert seen == [d["id"] for d in found]


def test_bad_queries(client: TestClient) -> None:
    cases = [
        ("detections?min_confidence=101", 400, "InvalidInput"),
        ("detections?min_confidence=60&max_confidence=50", 400, "InvalidInput"),
        ("detections?limit=0", 400, "InvalidInput"),
        ("detections?cursor=nonsense", 400, "InvalidInput"),
        ("detections?since=yesterday", 422, "ValidationError"),
        ("detections?source=mail", 422, "ValidationError"),
        ("detections?limit=many", 422, "ValidationError"),
        ("detections/12345", 404, "NotFound"),
        ("detections/12345/image", 404, "NotFound"),
        ("agreement?bucket=month", 400, "InvalidInput"),
        ("agreement?purpose=whim", 422, "ValidationError"),
    ]
    for query, status, code in cases:
        r = client.get(f"{P}/{query}")
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (query, r.text)
    for path in ("/api/v1/projects/ghost/detections", "/api/v1/projects/ghost/agreement"):
        assert client.get(path).status_code == 404
    assert client.post("/api/v1/projects/ghost/inbox/scan").status_code == 404


def test_an_inbox_scan_detects_on_the_servers_units(client: TestClient, services: Services) -> None:
    services.buckets.put("visionloop", "colours/images_for_detection/red.jpg", RED)
    services.buckets.put("visionloop", "colours/images_for_detection/broken.jpg", b"not an image")
    time.sleep(2.1)  # inbox_settle_seconds
    r = client.post(f"{P}/inbox/scan")
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["detected"], report["failed"]) == (1, 1), report
    flush(client)
    [d] = client.get(f"{P}/detections?source=inbox").json()["detections"]
    assert (
        d["top_label"] == "red" and d["source_ref"] == "s3://visionloop/colours/images_for_detection/red.jpg"
    )
    items = client.get(f"{P}/inbox").json()["items"]
    assert sorted(i["status"] for i in items) == ["done", "failed"]
    assert services.buckets.exists("visionloop", "colours/detection_results/red.jpg.json")


def test_agreement_endpoint(client: TestClient, services: Services) -> None:
    flow = review.put_flow(services, "colours", FlowSettings(), region=REGION, account=ACCOUNT)
    loop = review.maybe_start_loop(
        services,
        Detection("colours", "v1", RED, {"red": 0.9, "blue": 0.1}),
        flow=flow,
        purpose=LoopPurpose.AUDIT,
    )
    assert loop is not None
    item = review.next_item(services, "alice")
    assert item is not None
    review.submit_answer(services, item.loop, "alice", "red")
    r = client.get(f"{P}/agreement?bucket=week&purpose=audit")
    assert r.status_code == 200, r.text
    [bucket] = r.json()["buckets"]
    assert (bucket["loops"], bucket["agreed"], bucket["rate"]) == (1, 1, 1.0)
    assert bucket["labels"] == [{"label": "red", "model_said": 1, "agreed": 1, "human_said": 1, "rate": 1.0}]
    assert client.get(f"{P}/agreement?purpose=low_confidence").json()["buckets"] == []
