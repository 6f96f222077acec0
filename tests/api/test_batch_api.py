"""POST /api/v1/batches starts batch inference in the server (colour engine, the units' engine), GET
/api/v1/batches?out=… follows it to its summary; bad requests answer 400/404."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import image_bytes
from tests.workflows.helpers import colour_project, run_jobs
from visionloop.api.app import create_app
from visionloop.bootstrap import fake_engine
from visionloop.core.services import Services
from visionloop.core.serving import Serving
from visionloop.core.training import TrainingOptions, request_training
from visionloop.settings import Settings
from visionloop.workflows.inference import ProcessInferenceHost

OUT = "s3://photos/out/"


def test_start_and_follow_a_batch(services: Services, settings: Settings, tmp_path: Any) -> None:
    colour_project(services, tmp_path)
    request_training(services, "colours", TrainingOptions(version_name="v1"))
    run_jobs(services)
    services.buckets.create_bucket("photos")
    for i in range(7):
        services.buckets.put("photos", f"in/{i}.png", image_bytes(color=(20, 20, 200 + i), fmt="PNG"))
    serving = Serving(ProcessInferenceHost(fake_engine, threads=1))
    client = TestClient(create_app(services, settings, serving), raise_server_exceptions=False)

    assert client.get("/api/v1/batches", params={"out": OUT}).status_code == 404
    body = {"model": "colours/v1", "source": "s3://photos/in/", "out": OUT, "workers": 1, "part_size": 3}
    r = client.post("/api/v1/batches", json=body)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 60
    while (doc := client.get("/api/v1/batches", params={"out": OUT}).json())["state"] != "succeeded":
        assert doc["state"] in ("starting", "running") and time.monotonic() < deadline, doc
        time.sleep(0.05)
    assert (doc["done"], doc["total"], doc["failed"], doc["parts"]) == (7, 7, 0, 3)

    assert client.post("/api/v1/batches", json={**body, "model": "colours/v7"}).status_code == 404
    assert client.post("/api/v1/batches", json={**body, "out": "s3://photos/"}).status_code == 400
    assert client.post("/api/v1/batches", json={**body, "source": "photos/in"}).status_code == 400
    assert client.post("/api/v1/batches", json={**body, "part_size": 0}).status_code in (400, 422)
