"""The Train page's job fragment says "estimating the time left" while the job has no measured rate
(core.training.JobProgress writes no ETA before one), then the time left."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import image_bytes, make_project, unique_colour
from visionloop.core.datasets import add_image
from visionloop.core.entities import JobStatus
from visionloop.core.services import Services
from visionloop.core.training import request_training

HTMX = {"HX-Request": "true"}


def test_the_time_left_is_shown_only_once_measured(client: TestClient, services: Services, olga: str) -> None:
    make_project(services, "fruit")
    for i in range(8):
        add_image(
            services, "fruit", image_bytes(color=unique_colour(50 * i)), f"{i}.jpg", ["a" if i % 2 else "b"]
        )
    _, job = request_training(services, "fruit")
    url = f"/console/projects/fruit/train/jobs/{job.id}"
    assert "estimating" not in client.get(url, headers=HTMX).text, "waiting for a worker: no time at all"
    services.repo.update_job(job.id, status=JobStatus.RUNNING, progress=0.03, stage="reading images (3 of 8)")
    fragment = client.get(url, headers=HTMX).text
    assert "reading images (3 of 8) · estimating the time left…" in fragment and 'value="3"' in fragment
    services.repo.update_job(job.id, progress=0.5, stage="embedding images (8 of 8)", eta_seconds=200.0)
    fragment = client.get(url, headers=HTMX).text
    assert "embedding images (8 of 8) · about 3 min left" in fragment and "estimating" not in fragment
