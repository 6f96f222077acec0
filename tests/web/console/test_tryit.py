"""Try it in-process: an image sent to a running version (fake engine units) and to stand-in analysers;
every label shown with its threshold, boxes and word polygons drawn in a well-formed SVG, the detection
logged as the console's; bad images and stopped versions answered with the page and the reason."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.factories import image_bytes
from visionloop.core import detections, serving
from visionloop.core.analyzing import Analysis
from visionloop.core.entities import ModelVersion, VersionStatus
from visionloop.core.records.analysis import (
    BoundingBox,
    ImageLabel,
    LabelAnalysis,
    LabelInstance,
    ModerationLabel,
    Point,
    TextDetection,
)
from visionloop.core.services import Services
from visionloop.errors import Unavailable

IMAGE = image_bytes(200, 150, color=(250, 120, 20))
SVG = "{http://www.w3.org/2000/svg}"


class Analysers:
    """Stand-ins for the pretrained analysers; ``broken`` kinds raise."""

    version = "stand-in-1"

    def __init__(self) -> None:
        self.broken: dict[str, Exception] = {}

    def __call__(self, kind: str) -> Any:
        if kind in self.broken:
            raise self.broken[kind]
        self.kind = kind
        return self

    def detect(self, image: bytes, **options: Any) -> Any:
        if "general_labels" in options:
            box = BoundingBox(0.1, 0.2, 0.5, 0.6)
            return LabelAnalysis(
                (
                    ImageLabel("Cat", 93.5, (LabelInstance(box, 90.0),), ("Feline", "Animal")),
                    ImageLabel("Animal", 93.5),
                )
            )
        if "regions" in options:
            poly = (Point(0.1, 0.1), Point(0.5, 0.1), Point(0.5, 0.2), Point(0.1, 0.2))
            box = BoundingBox(0.1, 0.1, 0.4, 0.1)
            return [
                TextDetection("HELLO <b>", "LINE", 0, None, 97.0, box, poly),
                TextDetection("HELLO", "WORD", 1, 0, 97.0, box, poly),
            ]
        return [ModerationLabel("Swimwear or Underwear", "", 1, 71.0)]


@pytest.fixture
def analysers(app: FastAPI) -> Iterator[Analysers]:
    stand_in = Analysers()
    app.state.analysis = Analysis(stand_in, workers=1)
    yield stand_in
    app.state.analysis.close()


@pytest.fixture
def running(app: FastAPI, services: Services, logos: list[ModelVersion]) -> ModelVersion:
    v1 = logos[0]
    serving.start_version(services, app.state.serving, "logos", "v1")
    deadline = time.monotonic() + 60
    while services.repo.get_version_by_id(v1.id).status is not VersionStatus.RUNNING:
        assert time.monotonic() < deadline, services.repo.get_version_by_id(v1.id).status_message
        time.sleep(0.1)
    return v1


def _post(client: TestClient, csrf: str, path: str = "/console/try", **data: Any) -> Any:
    files = {"file": ("photo.jpg", data.pop("image", IMAGE), "image/jpeg")}
    return client.post(path, data={"csrf_token": csrf, **data}, files=files)


def test_the_form_lists_running_versions(
    client: TestClient, running: ModelVersion, olga: str, analysers: Analysers
) -> None:
    page = client.get("/console/try")
    assert page.status_code == 200 and 'value="logos/v1"' in page.text and 'value="logos/v2"' not in page.text
    assert 'aria-current="page">Try it' in page.text and 'enctype="multipart/form-data"' in page.text
    page = client.get("/console/projects/logos/try?version=v2")
    assert page.status_code == 200 and "Version v2 is not running" in page.text
    assert re.search(r'value="logos/v1" selected', page.text)


def test_a_version_and_every_analyser(
    client: TestClient,
    running: ModelVersion,
    olga: str,
    analysers: Analysers,
    app: FastAPI,
    services: Services,
) -> None:
    r = _post(
        client,
        olga,
        "/console/projects/logos/try",
        target="logos/v1",
        analyser=["labels", "text", "moderation"],
    )
    assert r.status_code == 200, r.text
    html = r.text
    for section in ("found-custom-labels", "found-labels", "found-text", "found-moderation"):
        assert f'id="{section}"' in html
    custom = html[html.index('id="found-custom-labels"') : html.index('id="found-labels"')]
    assert all(label in custom for label in ("amazon_logo", "aws_logo", "other"))  # every label
    assert "returned (threshold" in custom
    rows = re.findall(
        r'returned \(threshold ([\d.]+)%\)|below its threshold \(([\d.]+)%\)|class="pct">([\d.]+)%', custom
    )
    shown = [(bool(r[0]), float(r[0] or r[1])) for r in rows if not r[2]]  # (returned, threshold)
    confidences = [float(r[2]) for r in rows if r[2]]
    assert len(shown) == len(confidences) == 3  # in percent, one scale: a confidence reads as reaching
    for (returned, threshold), confidence in zip(shown, confidences, strict=True):  # its threshold or not
        assert (confidence >= threshold) == returned, (returned, threshold, confidence)
    assert "HELLO &lt;b&gt;" in html and "Swimwear or Underwear" in html and "Feline, Animal" in html
    svg = ET.fromstring(re.search(r'<svg xmlns="http://www.w3.org/2000/svg" viewBox.*?</svg>', html, re.S)[0])  # type: ignore[index]
    assert svg.find(f"{SVG}image") is not None
    assert svg.find(f"{SVG}image").get("href", "").startswith("data:image/jpeg;base64,")  # type: ignore[union-attr]
    rect = svg.find(f".//{SVG}rect")
    assert rect is not None and float(rect.get("width", 0)) > 0
    assert len(svg.findall(f"{SVG}polygon")) == 1  # the word
    # a real detection: logged, as the console's
    app.state.serving.detection_log.flush()
    logged = detections.list_detections(services, "logos").detections
    assert [(d.version, d.source) for d in logged] == [("v1", detections.DetectionSource.CONSOLE)]


def test_bad_requests_are_pages(
    client: TestClient, running: ModelVersion, olga: str, analysers: Analysers
) -> None:
    r = _post(client, olga, target="logos/v1", image=b"not an image")
    assert r.status_code == 400 and 'id="error"' in r.text and "<html" in r.text
    r = _post(client, olga, target="logos/v1", image=image_bytes(40, 40))
    assert r.status_code == 400 and "at least 64 px" in r.text
    r = _post(client, olga)  # neither a version nor an analyser
    assert r.status_code == 400 and "choose a model version or at least one analyser" in r.text
    r = client.post("/console/try", data={"csrf_token": olga, "analyser": "labels"})  # no file
    assert r.status_code == 400 and "choose an image" in r.text
    r = _post(client, "", analyser="labels")  # no CSRF token
    assert r.status_code == 403 and "Form refused" in r.text


def test_a_failing_section_leaves_the_others(
    client: TestClient,
    running: ModelVersion,
    olga: str,
    analysers: Analysers,
    services: Services,
    app: FastAPI,
) -> None:
    analysers.broken["text"] = Unavailable("the text analyser is not available: pip install it")
    analysers.broken["moderation"] = RuntimeError("boom")
    serving.stop_version(services, app.state.serving, "logos", "v1")
    r = _post(client, olga, target="logos/v1", analyser=["labels", "text", "moderation"])
    assert r.status_code == 200
    custom = r.text[r.text.index('id="found-custom-labels"') : r.text.index('id="found-labels"')]
    assert 'role="alert"' in custom and ("start it first" in custom or "only a RUNNING version" in custom)
    assert "pip install it" in r.text and "failed unexpectedly" in r.text and "boom" not in r.text
    assert "Feline" in r.text  # the labels still came


def test_reviewers_may_not_try(client: TestClient, logos: list[ModelVersion]) -> None:
    from tests.web.conftest import sign_in

    bob = sign_in(client, "bob")
    assert client.get("/console/try").status_code == 403
    assert _post(client, bob, analyser="labels").status_code == 403
