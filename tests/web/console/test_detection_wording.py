"""What a detection project can do, said before anyone labels: the create form and the Train page say a
detector learns from boxes on the training images, how many are advised and how long training takes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import image_bytes, make_project
from visionloop.core.datasets import add_image
from visionloop.core.entities import Box, TaskType
from visionloop.core.services import Services
from visionloop.core.stats import MIN_TRAIN_IMAGES
from visionloop.engines.detection.trainer import DEFAULT_SECONDS
from visionloop.web.console.training import DETECTION_MINUTES


def test_the_create_form_says_what_each_kind_of_project_learns(client: TestClient, olga: str) -> None:
    page = client.get("/console/projects")
    assert page.status_code == 200
    assert "draw a labelled box around each object on the training images" in page.text
    assert "takes up to 10 minutes" in page.text


def test_the_train_page_of_a_detection_project_says_what_it_needs(
    client: TestClient, services: Services, olga: str
) -> None:
    project = make_project(services, "shapes", TaskType.DETECTION)
    services.repo.add_labels(project.id, ["dot"])
    add_image(services, "shapes", image_bytes(color=(10, 200, 10)), "a.jpg")
    page = client.get("/console/projects/shapes/train")
    assert page.status_code == 200 and 'id="detection-needs"' in page.text
    assert "0 boxes so far" in page.text and "drag on the image" in page.text
    assert (
        f"Advised: {MIN_TRAIN_IMAGES} or more" in page.text
        and "at most 10 minutes (14 in best mode)" in page.text
    )
    entry = add_image(services, "shapes", image_bytes(color=(200, 10, 10)), "b.jpg")
    services.repo.set_entry_labels(entry.id, (), (Box("dot", 0.1, 0.1, 0.3, 0.3),), services.clock.now())
    page = client.get("/console/projects/shapes/train")
    assert "1 box so far" in page.text and "training boxes" in page.text
    r = client.post("/console/projects/shapes/train", data={"csrf_token": olga, "split": "keep"})
    assert r.status_code == 400 and "no test images" in r.text
    classification = make_project(services, "fruit")
    assert 'id="detection-needs"' not in client.get(f"/console/projects/{classification.name}/train").text


def test_the_budget_said_is_the_detectors() -> None:
    assert {mode: minutes * 60.0 for mode, minutes in DETECTION_MINUTES.items()} == DEFAULT_SECONDS
