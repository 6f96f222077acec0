"""The workflow endpoints in-process: a parameter change makes the server's runner queue and run a
training check (a worker thread trains with the colour engine), the run with its steps, the deployment
log, detection addressed to the project, rollback, schedules, and every error's status."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import image_bytes
from tests.workflows.helpers import BLUE, RED, add_train_images, colour_project
from visionloop.api.app import create_app
from visionloop.bootstrap import fake_engine
from visionloop.core.services import Services
from visionloop.core.serving import Serving
from visionloop.engines.fake import ColourEngine
from visionloop.settings import Settings
from visionloop.workflows.inference import ProcessInferenceHost
from visionloop.workflows.worker import run_worker

P = "/api/v1/projects/colours"


def make_client(services: Services, settings: Settings, **changes: Any) -> TestClient:
    settings = settings.replace(workflow_poll_seconds=0.05, **changes)
    serving = Serving(ProcessInferenceHost(fake_engine, threads=1))
    return TestClient(create_app(services, settings, serving), raise_server_exceptions=False)


@pytest.fixture
def worker(services: Services) -> Iterator[None]:
    """A job worker, as `visionloop serve` starts one (here a thread with the colour engine)."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker,
        args=(services, ColourEngine(), "us-east-1", "123456789012", stop),
        kwargs={"poll_seconds": 0.05},
    )
    thread.start()
    yield
    stop.set()
    thread.join()


def wait_run(client: TestClient, run_id: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = client.get(f"{P}/runs/{run_id}").json()
        if run["status"] in ("SUCCEEDED", "FAILED"):
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.05)


def test_a_parameter_change_trains_and_deploys_through_the_server(
    services: Services, settings: Settings, tmp_path: Path, worker: None
) -> None:
    colour_project(services, tmp_path)
    with make_client(services, settings) as client:
        r = client.patch(f"{P}/parameters", json={"auto_training_enabled": True, "min_untrained_images": 4})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 10
        while not (runs := client.get(f"{P}/runs").json()["runs"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        [queued] = runs
        assert queued["kind"] == "training_check" and queued["trigger"] == "parameter_change"
        run = wait_run(client, queued["id"])
        assert (run["status"], run["outcome"]) == ("SUCCEEDED", "deployed"), run
        steps = run["steps"]
        assert [s["name"] for s in steps] == [
            "check",
            "train",
            "evaluate",
            "compare",
            "start",
            "switch",
            "stop_previous",
        ]
        assert all(s["status"] == "SUCCEEDED" and s["seconds"] is not None for s in steps)
        assert steps[1]["output"]["version"] == "v1" and steps[0]["output"]["new_images"] == 12
        r = client.get(f"{P}/deployments")
        assert r.json()["serving"] == "v1"
        assert [(d["version"], d["reason"], d["run_id"]) for d in r.json()["deployments"]] == [
            ("v1", "training_check", run["id"])
        ]
        r = client.post(f"{P}/detect", content=image_bytes(color=RED), headers={"content-type": "image/jpeg"})
        assert r.status_code == 200, r.text
        assert r.json()["version"] == "v1" and r.json()["labels"][0]["name"] == "red"
        r = client.post(f"{P}/detect?min_confidence=0", files={"file": ("b.jpg", image_bytes(color=BLUE))})
        assert [lab["name"] for lab in r.json()["labels"]] == ["blue", "red"]
        schedules = {s["kind"]: s for s in client.get(f"{P}/schedules").json()["schedules"]}
        assert schedules["training"]["enabled"] and schedules["training"]["interval_minutes"] == 60
        assert schedules["training"]["last_result"] == f"run {run['id']} queued"
        assert not schedules["sampling"]["enabled"] and schedules["sampling"]["next_run_at"] is None

        # a second version, then a rollback through the API
        add_train_images(services, "colours", tmp_path, "blue", BLUE, 4, start=80)
        r = client.post(f"{P}/runs", json={"kind": "training_check"})
        assert r.status_code == 202 and r.json()["trigger"] == "api"
        assert wait_run(client, r.json()["id"])["outcome"] == "deployed"
        r = client.post(f"{P}/runs", json={"kind": "rollback"})
        assert r.status_code == 202, r.text
        back = wait_run(client, r.json()["id"])
        assert (back["outcome"], back["output"]["version"]) == ("rolled_back", "v1"), back
        assert client.get(f"{P}/deployments").json()["serving"] == "v1"
        r = client.get(f"{P}/runs", params={"kind": "rollback"})
        assert [x["id"] for x in r.json()["runs"]] == [back["id"]]
        events = [e["type"] for e in client.get(f"{P}/events").json()["events"]]
        assert events.count("version_deployed") == 2 and events[-1] == "version_rolled_back"


def test_errors(services: Services, settings: Settings, tmp_path: Path) -> None:
    colour_project(services, tmp_path)
    with make_client(services, settings, workflow_enabled=False) as client:  # runs stay QUEUED
        assert client.get("/api/v1/projects/ghost/runs").status_code == 404
        r = client.get(f"{P}/runs/99")
        assert r.status_code == 404 and r.json()["error"]["message"] == "run 99 does not exist"
        assert client.get(f"{P}/runs", params={"status": "done"}).json()["error"]["code"] == "InvalidInput"
        assert client.get(f"{P}/runs", params={"limit": 0}).status_code == 422
        assert client.post(f"{P}/runs", json={"kind": "deploy"}).status_code == 422
        r = client.post(f"{P}/runs", json={"kind": "rollback"})
        assert r.status_code == 409 and "no earlier deployed version" in r.json()["error"]["message"]
        first = client.post(f"{P}/runs", json={"kind": "training_check"})
        assert first.status_code == 202 and first.json()["status"] == "QUEUED"
        r = client.post(f"{P}/runs", json={"kind": "training_check"})
        assert r.status_code == 409 and r.json()["error"]["details"] == {"run_id": first.json()["id"]}
        r = client.post(f"{P}/detect", content=image_bytes(color=RED), headers={"content-type": "image/jpeg"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "NotReady"
        assert "has no serving version" in r.json()["error"]["message"]
        r = client.post(
            "/api/v1/projects/ghost/detect", content=image_bytes(), headers={"content-type": "image/jpeg"}
        )
        assert r.status_code == 404
        r = client.post(f"{P}/detect", content=b"not an image", headers={"content-type": "image/jpeg"})
        assert r.status_code == 409  # no serving version is the first thing it finds
        assert client.get("/api/v1/projects/ghost/deployments").status_code == 404
        assert client.get("/api/v1/projects/ghost/schedules").status_code == 404
        assert client.get(f"{P}/deployments").json() == {"serving": None, "deployments": []}
