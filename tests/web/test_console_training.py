"""The console's Train page in-process: the button queues a job with the defaults, the advanced options are
checked, and the job's progress fragment polls while it runs and stops when it ends (the fake colour
engine trains it)."""

from __future__ import annotations

import contextlib

import pytest
from fastapi.testclient import TestClient

from tests.factories import image_bytes, make_project
from tests.web.conftest import PASSWORD, sign_in
from visionloop.core.accounts import Accounts, Role, add_reviewer
from visionloop.core.datasets import add_image
from visionloop.core.entities import Job, JobStatus, VersionStatus
from visionloop.core.services import Services
from visionloop.engines.fake import ColourEngine
from visionloop.workflows.worker import run_job

HTMX = {"HX-Request": "true"}


@pytest.fixture
def token(client: TestClient, accounts: Accounts) -> str:
    add_reviewer(accounts, "olga", PASSWORD, Role.OPERATOR)
    return sign_in(client, "olga")


def fill(svc: Services, project: str = "logos", n: int = 12) -> None:
    make_project(svc, project)
    for i in range(n):
        red = i % 2 == 0
        colour = (200 + i, 20, 20) if red else (20, 20, 200 + i)
        add_image(svc, project, image_bytes(color=colour), f"{i}.jpg", ["red" if red else "blue"])


def run(svc: Services, job: Job, engine: ColourEngine | None = None) -> None:
    claimed = svc.repo.claim_job(svc.clock.now(), job.id)
    assert claimed is not None
    run_job(svc, engine or ColourEngine(), claimed, "us-east-1", "123456789012")


def test_train_with_the_defaults_and_follow_the_job(
    client: TestClient, services: Services, token: str
) -> None:
    fill(services)
    page = client.get("/console/projects/logos/train")
    assert page.status_code == 200 and "Train a model" in page.text and '<details id="advanced">' in page.text
    assert "12</strong> training images" in page.text and "No model trained yet" in page.text
    r = client.post("/console/projects/logos/train", data={"csrf_token": token})
    assert r.status_code == 303
    [job] = services.repo.list_jobs(services.repo.get_project("logos").id)
    assert r.headers["location"] == f"/console/projects/logos/train?job={job.id}#job-{job.id}"
    version = services.repo.get_version_by_id(job.version_id or 0)
    assert (version.name, version.mode, version.backbone) == ("v1", "fast", "auto")

    page = client.get(r.headers["location"])
    assert f'id="job-{job.id}"' in page.text and "Waiting for a worker" in page.text
    assert f'hx-get="/console/projects/logos/train/jobs/{job.id}"' in page.text
    assert "/static/vendor/htmx.min.js" in page.text and '<noscript><meta http-equiv="refresh"' in page.text
    fragment = client.get(f"/console/projects/logos/train/jobs/{job.id}", headers=HTMX)
    assert (
        fragment.status_code == 200
        and fragment.text.startswith("<article")
        and 'hx-trigger="every 1s"' in fragment.text
    )

    services.repo.update_job(
        job.id, status=JobStatus.RUNNING, progress=0.42, stage="training", eta_seconds=12.0
    )
    fragment = client.get(f"/console/projects/logos/train/jobs/{job.id}", headers=HTMX)
    assert 'value="42"' in fragment.text and "about 12 s left" in fragment.text and "hx-get" in fragment.text
    services.repo.update_job(job.id, status=JobStatus.QUEUED, progress=0.0, stage="")
    run(services, job)
    fragment = client.get(f"/console/projects/logos/train/jobs/{job.id}", headers=HTMX)
    assert "trained" in fragment.text and "hx-get" not in fragment.text and "See its results" in fragment.text
    assert 'href="/console/projects/logos/versions/v1"' in fragment.text
    # a person following the link gets the page
    r = client.get(f"/console/projects/logos/train/jobs/{job.id}")
    assert r.status_code == 303 and r.headers["location"].endswith(f"#job-{job.id}")
    assert "v1" in client.get("/console/projects").text


def test_advanced_options_and_refusals(client: TestClient, services: Services, token: str) -> None:
    fill(services)
    data = {
        "csrf_token": token,
        "mode": "best",
        "backbone": "efficientnet-lite0",
        "max_seconds": "30",
        "version_name": "first",
    }
    assert client.post("/console/projects/logos/train", data=data).status_code == 303
    version = services.repo.list_versions(services.repo.get_project("logos").id)[0]
    assert (version.name, version.mode, version.backbone) == ("first", "best", "efficientnet-lite0")
    assert version.params["requested"]["max_seconds"] == 30.0  # type: ignore[index]
    for bad, words in [
        ({"mode": "slow"}, "unknown training mode"),
        ({"backbone": "resnet-9000"}, "unknown backbone"),
        ({"max_seconds": "soon"}, "number of seconds"),
        ({"max_seconds": "-5"}, "positive"),
        ({"version_name": "two words"}, "invalid version name"),
        ({"version_name": "first"}, "already has a model version named"),
    ]:
        r = client.post("/console/projects/logos/train", data={"csrf_token": token, **bad})
        assert r.status_code in (400, 409) and words in r.text, bad
        assert 'id="train-error"' in r.text or "Not possible" in r.text
    make_project(services, "empty")
    r = client.post("/console/projects/empty/train", data={"csrf_token": token})
    assert r.status_code == 400 and "no labelled images" in r.text
    assert client.post("/console/projects/nope/train", data={"csrf_token": token}).status_code == 404
    assert client.get("/console/projects/empty/train/jobs/999", headers=HTMX).status_code == 404
    job = services.repo.list_jobs(services.repo.get_project("logos").id)[0]
    assert client.get(f"/console/projects/empty/train/jobs/{job.id}", headers=HTMX).status_code == 404


def test_a_failed_job_says_why(client: TestClient, services: Services, token: str) -> None:
    fill(services)
    client.post("/console/projects/logos/train", data={"csrf_token": token})
    [job] = services.repo.list_jobs(services.repo.get_project("logos").id)
    with contextlib.suppress(RuntimeError):  # recorded on the job; the worker logs and goes on
        run(services, job, ColourEngine(fail_with=RuntimeError("the engine broke")))
    assert services.repo.get_version_by_id(job.version_id or 0).status is VersionStatus.TRAINING_FAILED
    fragment = client.get(f"/console/projects/logos/train/jobs/{job.id}", headers=HTMX)
    assert "failed" in fragment.text and "the engine broke" in fragment.text and "hx-get" not in fragment.text
