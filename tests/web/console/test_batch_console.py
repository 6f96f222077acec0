"""The console's Batch page: start a batch of a model version over a bucket prefix (colour engine), follow
it to its end, and see every mistake answered on the page."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from tests.factories import image_bytes
from tests.web.conftest import sign_in
from tests.workflows.helpers import colour_project, run_jobs
from visionloop.core.services import Services
from visionloop.core.training import TrainingOptions, request_training


def test_start_and_follow_a_batch(client: TestClient, olga: str, services: Services, tmp_path: Path) -> None:
    colour_project(services, tmp_path)
    request_training(services, "colours", TrainingOptions(version_name="v1"))
    run_jobs(services)
    services.buckets.create_bucket("photos")
    for i in range(4):
        services.buckets.put("photos", f"in/{i}.png", image_bytes(color=(200 + i, 20, 20), fmt="PNG"))

    page = client.get("/console/batches")
    assert page.status_code == 200 and "Start a batch" in page.text and 'href="/console/batches"' in page.text
    form = {"csrf_token": olga, "model": "colours/v1", "source": "s3://photos/in/", "out": "s3://photos/o/"}
    r = client.post("/console/batches", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/batches?out=s3%3A%2F%2Fphotos%2Fo%2F"
    deadline = time.monotonic() + 60
    while "succeeded" not in (page := client.get(r.headers["location"])).text:
        assert time.monotonic() < deadline, page.text
        time.sleep(0.05)
    assert "4 of 4 answered, 0 with an error" in page.text and "colours/v1" in page.text

    for change, status, reason in (
        ({"model": "colours/v9"}, 404, "v9"),
        ({"out": "s3://photos/"}, 400, "must not contain"),
        ({"workers": "many"}, 400, "workers must be"),
    ):
        bad = client.post("/console/batches", data={**form, **change})
        assert bad.status_code == status and reason in bad.text, bad.text
    assert client.get("/console/batches", params={"out": "s3://photos/none/"}).status_code == 404


def test_the_page_is_for_operators(client: TestClient) -> None:
    r = client.get("/console/batches")
    assert r.status_code == 303 and "sign" in r.headers["location"]
    csrf = sign_in(client, "alice")  # a reviewer
    assert client.get("/console/batches").status_code == 403
    form = {"csrf_token": csrf, "model": "x", "source": "s3://a/b/", "out": "s3://a/c/"}
    assert client.post("/console/batches", data=form).status_code == 403
