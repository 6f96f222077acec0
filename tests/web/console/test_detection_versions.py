"""The console's pages for an object detector, in-process through the real server: a detection project
trained by the fake colour engine (tests/web/console/detection_data.py) shows mAP@0.5, the per-label
table and a gallery of its TEST images with true, correct, wrong and missed boxes drawn over them,
filtered and paged; the comparison of two detectors, and a note beside a classifier; Try it draws the
boxes a running detector returns."""

from __future__ import annotations

import io
import re
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from tests.web.console.data import evaluation_json, sample_probs
from tests.web.console.detection_data import detection_project, scene, train_detector
from visionloop.core import serving
from visionloop.core.entities import ModelVersion, VersionStatus
from visionloop.core.services import Services
from visionloop.web.console import versions

P = "/console/projects/shapes"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def shapes(services: Services) -> ModelVersion:
    detection_project(services)
    return train_detector(services, name="v1")


def _gallery(html: str) -> list[ET.Element]:
    """The gallery's SVG overlays, parsed (each must be well-formed XML)."""
    return [ET.fromstring(m) for m in re.findall(r'<svg class="box-overlay".*?</svg>', html, flags=re.S)]


def _kinds(svg: ET.Element) -> list[str]:
    return [r.get("class", "") for r in svg.iter(f"{SVG}rect")]


def test_the_version_page_of_a_detector(client: TestClient, shapes: ModelVersion, olga: str) -> None:
    page = client.get(f"{P}/versions/v1")
    assert page.status_code == 200, page.text
    html = page.text
    ev: dict[str, Any] = dict(shapes.evaluation or {})
    assert ev["task"] == "object_detection"
    assert f'id="map50">{100 * ev["map50"]:.1f}%' in html
    assert f'id="macro-f1">{100 * ev["macro_f1"]:.1f}%' in html
    assert 'id="macro-precision"' in html and 'id="macro-recall"' in html
    assert 'id="training-facts">Trained on 12 images.' in html
    for row in ev["per_label"]:
        assert f"{100 * row['threshold']:.1f}%" in html  # thresholds in percent, like confidences
    assert "true boxes" in html and "AP@0.5" in html and "unreliable: few images" in html
    assert 'id="few-images"' in html and "plain textures" in html  # the TEST set's warning
    assert 'id="confusion"' not in html and 'id="curves"' not in html  # classification's sections
    assert "/static/console-detection.css" in html and "<script>" not in html

    svgs = _gallery(html)
    assert len(svgs) == 5  # every TEST image, with its boxes
    assert "?size=large" in html and "right-red.png" in html
    kinds = [k for svg in svgs for k in _kinds(svg)]
    assert kinds.count("b-correct") == 4 and kinds.count("b-false_positive") == 1
    assert kinds.count("b-missed") == 2  # the blue box the red rectangle hid, the red box on grey
    titles = [t.text for svg in svgs for t in svg.iter(f"{SVG}title")]
    assert "red 100% (false positive)" in titles and "blue (missed)" in titles
    rect = next(r for svg in svgs for r in svg.iter(f"{SVG}rect") if r.get("class") == "b-false_positive")
    assert [rect.get(a) for a in ("x", "y", "width", "height")] == ["12.50", "16.67", "31.25", "33.33"]

    # the images behind them: only this version's test images, small or large
    src = re.findall(r'<img src="([^"]+\?size=large)"', html)
    assert len(src) == 5
    for url in (src[0], src[0].split("?")[0]):  # large and small: a 160 × 120 image is smaller than both
        image = client.get(url)
        assert image.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(image.content)).size == (160, 120)
    assert client.get(f"{P}/versions/v1/images/{'0' * 64}").status_code == 404


def test_the_gallery_filters_and_pages(
    client: TestClient, shapes: ModelVersion, olga: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def shown(query: str) -> list[str]:
        html = client.get(f"{P}/versions/v1?{query}").text
        return re.findall(r'<span class="name" title="(?:upload:)?([^"]*)"', html)

    assert shown("outcome=false_positives") == ["red-said-blue.png"]
    assert shown("outcome=false_negatives") == ["red-said-blue.png", "nothing-there.png"]
    assert shown("outcome=errors") == ["red-said-blue.png", "nothing-there.png"]
    assert shown("outcome=false_negatives&label=red") == ["nothing-there.png"]
    assert shown("outcome=false_positives&label=blue") == []
    assert shown("label=blue") == ["right-blue.png", "right-both.png", "red-said-blue.png"]
    assert len(shown("outcome=bogus&label=nobody")) == 5  # unknown choices read as "all"
    html = client.get(f"{P}/versions/v1?outcome=errors").text
    assert '<option value="errors" selected>With errors (2)</option>' in html
    assert "No test image matches" in client.get(f"{P}/versions/v1?outcome=false_positives&label=blue").text
    # the per-label table links to its errors
    assert 'href="?outcome=false_positives&amp;label=red#images">1</a>' in html

    monkeypatch.setattr(versions, "IMAGES_PER_PAGE", 2)
    html = client.get(f"{P}/versions/v1?page=3").text
    assert "page 3 of 3" in html and "← Previous" in html and "Next →" not in html
    assert re.findall(r'<span class="name" title="(?:upload:)?([^"]*)"', html) == ["nothing-there.png"]


def test_comparing_detectors(client: TestClient, services: Services, shapes: ModelVersion, olga: str) -> None:
    train_detector(services, name="v2")
    page = client.get(f"{P}/compare?a=v1&b=v2")
    assert page.status_code == 200, page.text
    assert "mAP@0.5" in page.text and "Both versions are object detectors" in page.text
    assert (
        'id="compare-labels"' in page.text
        and ">red<" in page.text
        and 'id="different-tests"' not in page.text
    )
    listing = client.get(f"{P}/versions")
    assert listing.status_code == 200 and "mAP@0.5" in listing.text and "95% interval" not in listing.text
    assert f"{100 * (shapes.evaluation or {})['map50']:.1f}%" in listing.text  # type: ignore[operator]
    # a version whose evaluation is a classifier's (not possible through training, but stored data may
    # say anything): a note, not a crash
    truth, probs = sample_probs(2)
    services.repo.update_version(shapes.id, evaluation=evaluation_json(truth, probs))
    for query in ("a=v1&b=v2", "a=v2&b=v1"):
        page = client.get(f"{P}/compare?{query}")
        assert (
            page.status_code == 200 and 'id="mixed-tasks"' in page.text and "cannot be compared" in page.text
        )
    assert client.get(f"{P}/versions/v1").status_code == 200  # read as a classifier's now


def test_try_it_draws_the_detected_boxes(
    client: TestClient, app: FastAPI, services: Services, shapes: ModelVersion, olga: str
) -> None:
    serving.start_version(services, app.state.serving, "shapes", "v1")
    deadline = time.monotonic() + 60
    while services.repo.get_version_by_id(shapes.id).status is not VersionStatus.RUNNING:
        assert time.monotonic() < deadline, services.repo.get_version_by_id(shapes.id).status_message
        time.sleep(0.1)
    image = scene([("red", 10, 10, 60, 40), ("blue", 90, 60, 50, 40)], 99)
    r = client.post(
        f"{P}/try",
        data={"csrf_token": olga, "target": "shapes/v1"},
        files={"file": ("two.png", image, "image/png")},
    )
    assert r.status_code == 200, r.text
    custom = r.text[r.text.index('id="found-custom-labels"') :]
    assert ">red</strong>" in custom and ">blue</strong>" in custom
    found = re.search(r'<svg xmlns="http://www.w3.org/2000/svg" viewBox.*?</svg>', r.text, re.S)
    assert found is not None
    svg = ET.fromstring(found[0])
    width = float(svg.get("viewBox", "").split()[2])
    drawn = {
        (g.findtext(f"{SVG}title") or "").split()[0]: g.find(f"{SVG}rect")
        for g in svg.iter(f"{SVG}g")
        if "custom" in g.get("class", "")
    }
    assert set(drawn) == {"red", "blue"}
    red = drawn["red"]
    assert red is not None and float(red.get("x", 0)) == pytest.approx(10 / 160 * width, abs=width / 40)
    assert float(red.get("width", 0)) == pytest.approx(60 / 160 * width, abs=width / 40)
    assert "red 100.0%" in r.text  # the box's caption says how sure the model is, as the list does
    serving.stop_version(services, app.state.serving, "shapes", "v1")


def test_the_train_page_of_a_detection_project_offers_its_one_backbone(
    client: TestClient, shapes: ModelVersion, olga: str
) -> None:
    page = client.get(f"{P}/train")
    assert page.status_code == 200, page.text
    form = page.text[page.text.index('<select name="backbone">') :]
    form = form[: form.index("</select>")]
    assert form.count("<option") == 1 and "the recipe chooses" in form
    assert "empty: 10 minutes, 14 in best mode" in page.text
