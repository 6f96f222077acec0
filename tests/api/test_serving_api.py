"""The native serving endpoints in-process with the colour engine (start, stop, delete, detect in every
input form, the error envelope), and the real classification engine through a real server on a free
port, restarted once to show that a RUNNING version comes back."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tests.conftest import shared_dataset
from tests.factories import image_bytes, make_project
from tests.servers import free_port
from visionloop.api.app import create_app
from visionloop.bootstrap import fake_engine
from visionloop.cli import cli
from visionloop.core import datasets
from visionloop.core.services import Services
from visionloop.core.serving import DETECT_LIMITS, Serving, ServingPolicy
from visionloop.core.training import TrainingOptions, request_training, run_training_job
from visionloop.engines.fake import ColourEngine
from visionloop.settings import Settings
from visionloop.workflows.inference import ProcessInferenceHost

RED = image_bytes(color=(230, 10, 10))
BLUE = image_bytes(color=(10, 10, 230))
V1 = "/api/v1/projects/colours/versions/v1"


@pytest.fixture
def client(services: Services, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    root = tmp_path / "d"
    for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        (root / label).mkdir(parents=True)
        for i in range(5):
            (root / label / f"{i}.jpg").write_bytes(image_bytes(color=(colour[0] - i, colour[1], colour[2])))
    make_project(services, "colours")
    datasets.import_folder(services, "colours", str(root))
    for name in ("v1", "v2"):
        request_training(services, "colours", TrainingOptions(version_name=name))
        job = services.repo.claim_job(services.clock.now())
        assert job is not None
        run_training_job(services, ColourEngine(), job, "us-east-1", "123456789012")
    serving = Serving(ProcessInferenceHost(fake_engine, threads=2), ServingPolicy())
    with TestClient(create_app(services, settings, serving), raise_server_exceptions=False) as c:
        yield c


def wait_running(client: TestClient, path: str = V1) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        state: dict[str, Any] = client.get(f"{path}/serving").json()
        if state["status"] == "RUNNING":
            return state
        assert state["status"] == "STARTING" and time.monotonic() < deadline, state
        time.sleep(0.05)


def names(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [lab["name"] for lab in r.json()["labels"]]


def test_start_detect_stop_delete(client: TestClient) -> None:
    r = client.post(f"{V1}/start", json={"min_inference_units": 1, "max_inference_units": 2})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "STARTING" and (body["min_inference_units"], body["max_inference_units"]) == (
        1,
        2,
    )
    r = client.post(f"{V1}/start", json={"min_inference_units": 1})
    assert r.status_code == 409 and r.json()["error"]["code"] == "Conflict"
    state = wait_running(client)
    assert state["inference_units"] == 1 and state["load_seconds"] > 0 and state["queue"]["queued"] == 0
    # a version's description and the list carry the units too
    described = client.get(V1).json()
    assert described["status"] == "RUNNING" and described["inference_units"] == 1
    assert (described["min_inference_units"], described["max_inference_units"]) == (1, 2)
    listed = {v["name"]: v for v in client.get("/api/v1/projects/colours/versions").json()["versions"]}
    assert listed["v1"]["inference_units"] == 1 and listed["v1"]["max_inference_units"] == 2
    assert listed["v2"]["status"] == "TRAINING_COMPLETED" and listed["v2"]["min_inference_units"] is None
    assert listed["v2"]["inference_units"] == 0
    # the image as a multipart file, as raw bytes, as base64 JSON, and from a bucket
    r = client.post(f"{V1}/detect", files={"file": ("red.jpg", RED, "image/jpeg")})
    assert r.json() == {"project": "colours", "version": "v1", "labels": [r.json()["labels"][0]]}
    assert names(r) == ["red"] and 50 < r.json()["labels"][0]["confidence"] <= 100
    assert names(client.post(f"{V1}/detect", content=BLUE, headers={"content-type": "image/jpeg"})) == [
        "blue"
    ]
    b64 = base64.b64encode(BLUE).decode()
    assert names(client.post(f"{V1}/detect", json={"image_base64": b64, "min_confidence": 0})) == [
        "blue",
        "red",
    ]
    r = client.post(f"{V1}/detect?min_confidence=0&max_results=1", json={"image_base64": b64})
    assert names(r) == ["blue"]
    client.app.state.services.buckets.create_bucket("inbox")  # type: ignore[attr-defined]
    client.app.state.services.buckets.put("inbox", "a/red.png", RED)  # type: ignore[attr-defined]
    r = client.post(f"{V1}/detect", json={"s3_object": {"bucket": "inbox", "name": "a/red.png"}})
    assert names(r) == ["red"]
    # delete is refused while it runs; stop, then detection is refused (409) and delete works
    assert client.delete(V1).status_code == 409
    r = client.post(f"{V1}/stop")
    assert r.status_code == 202 and r.json()["status"] == "STOPPING"
    deadline = time.monotonic() + 10
    while client.get(f"{V1}/serving").json()["status"] != "STOPPED":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r = client.post(f"{V1}/detect", content=RED, headers={"content-type": "image/jpeg"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "NotReady"
    assert client.post(f"{V1}/stop").status_code == 409
    assert client.delete(V1).status_code == 204
    assert client.get(V1).status_code == 404
    assert client.post(f"{V1}/start", json={"min_inference_units": 1}).status_code == 404


def test_errors(client: TestClient) -> None:
    for body in ({"min_inference_units": 0}, {"min_inference_units": 2, "max_inference_units": 1}):
        r = client.post(f"{V1}/start", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidInput", r.text
    assert client.post(f"{V1}/start", json={"min_inference_units": "many"}).status_code == 422
    assert client.post("/api/v1/projects/ghost/versions/v1/start", json={}).status_code == 404
    r = client.post(f"{V1}/start")  # min_inference_units defaults to 1
    assert r.status_code == 202 and r.json()["min_inference_units"] == 1
    wait_running(client)
    raw = {"content-type": "image/jpeg"}
    cases = [
        (client.post(f"{V1}/detect", content=b"not an image", headers=raw), 400, "InvalidImage"),
        (client.post(f"{V1}/detect", content=image_bytes(40, 40), headers=raw), 400, "InvalidInput"),
        (client.post(f"{V1}/detect", content=RED + bytes(DETECT_LIMITS.max_bytes), headers=raw), 413, None),
        (client.post(f"{V1}/detect", json={"image_base64": "!!"}), 400, "InvalidInput"),
        (client.post(f"{V1}/detect", json={}), 400, "InvalidInput"),
        (
            client.post(f"{V1}/detect", json={"image_base64": "", "s3_object": {"bucket": "b", "name": "n"}}),
            400,
            None,
        ),
        (client.post(f"{V1}/detect", json={"s3_object": {"bucket": "nobucket", "name": "x.jpg"}}), 404, None),
        (client.post(f"{V1}/detect", json={"image_base64": 5}), 422, "ValidationError"),
        (client.post(f"{V1}/detect?min_confidence=101", content=RED, headers=raw), 400, "InvalidInput"),
        (client.post(f"{V1}/detect", data={"not_file": "x"}, files={"other": ("a", b"x")}), 400, None),
        (
            client.post("/api/v1/projects/colours/versions/v2/detect", content=RED, headers=raw),
            409,
            "NotReady",
        ),
        (
            client.post("/api/v1/projects/colours/versions/v9/detect", content=RED, headers=raw),
            404,
            "NotFound",
        ),
    ]
    for i, (r, status, code) in enumerate(cases):
        assert r.status_code == status, (i, r.text)
        assert code is None or r.json()["error"]["code"] == code, (i, r.text)
    assert (
        "/api/v1/projects/{project}/versions/{version}/detect" in client.get("/openapi.json").json()["paths"]
    )


# --- the real engine through a real server -------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_logos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logos = shared_dataset("aws-logos")
    data = tmp_path_factory.mktemp("serve") / "var"
    labelled = tmp_path_factory.mktemp("labelled")
    for label in ("amazon_logo", "aws_logo"):
        (labelled / label).mkdir()
        for f in (logos / label).iterdir():
            (labelled / label / f.name).write_bytes(f.read_bytes())
    for args in (
        ["project", "create", "logos"],
        ["dataset", "import", "logos", str(labelled)],
        ["train", "logos"],
    ):
        result = CliRunner().invoke(cli, ["--data-dir", str(data), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return data


class RealServer:
    def __init__(self, data: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "visionloop", "serve", "--port", str(self.port), "--data-dir", str(data)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("VISIONLOOP_")}
        env["VISIONLOOP_WORKERS"] = "0"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.log = log
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.1)

    def wait_running(self, path: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            state: dict[str, Any] = httpx.get(f"{self.url}{path}/serving").json()
            if state["status"] == "RUNNING":
                return state
            assert state["status"] == "STARTING" and time.monotonic() < deadline, (
                state,
                self.log.read_text(),
            )
            time.sleep(0.1)

    def close(self) -> None:
        self.proc.terminate()  # uvicorn shuts down (our lifespan stops the units), then re-raises SIGTERM
        self.proc.wait(timeout=30)
        log = self.log.read_text()
        assert (
            log.rstrip().endswith(f"Finished server process [{self.proc.pid}]") and "Traceback" not in log
        ), log


def test_real_engine_through_a_real_server_and_a_restart(trained_logos: Path, tmp_path: Path) -> None:
    images = sorted((shared_dataset("aws-logos") / "inference_images").iterdir())[:3]
    path = "/api/v1/projects/logos/versions/v1"
    server = RealServer(trained_logos, tmp_path / "server.log")
    try:
        r = httpx.post(f"{server.url}{path}/start", json={"min_inference_units": 2})
        assert r.status_code == 202, r.text
        state = server.wait_running(path)
        assert state["inference_units"] == 2 and state["load_seconds"] > 0
        first = []
        for image in images:
            r = httpx.post(
                f"{server.url}{path}/detect?min_confidence=0",
                files={"file": (image.name, image.read_bytes())},
            )
            assert r.status_code == 200, r.text
            labels = r.json()["labels"]
            assert {lab["name"] for lab in labels} == {"amazon_logo", "aws_logo"}
            assert abs(sum(lab["confidence"] for lab in labels) - 100) < 0.1
            first.append(labels)
    finally:
        server.close()
    # a new server finds the version RUNNING in its database and loads it again
    server = RealServer(trained_logos, tmp_path / "server.log")
    try:
        state = server.wait_running(path)
        assert state["inference_units"] == 2
        for image, expected in zip(images, first, strict=True):
            r = httpx.post(
                f"{server.url}{path}/detect",
                params={"min_confidence": 0},
                content=image.read_bytes(),
                headers={"content-type": "application/octet-stream"},
            )
            assert r.json()["labels"] == expected
        assert httpx.post(f"{server.url}{path}/stop").status_code == 202
        deadline = time.monotonic() + 20
        while httpx.get(f"{server.url}{path}/serving").json()["status"] != "STOPPED":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        server.close()
