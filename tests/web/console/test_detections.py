"""The detection log page in-process: detections of a running version (fake engine units) from the API
and the console, filtered by source, label, confidence, version and time, paged, one opened with its
image; bad filters are 400 pages; the inbox scan needs its CSRF token; reviewers are refused."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.factories import image_bytes, unique_colour
from tests.web.conftest import sign_in
from visionloop.core import detections, serving
from visionloop.core.detections import DetectionSource
from visionloop.core.entities import ModelVersion, VersionStatus
from visionloop.core.services import Services
from visionloop.web.console import detections as page_module

D = "/console/projects/logos/workflow/detections"


@pytest.fixture
def logged(app: FastAPI, services: Services, logos: list[ModelVersion]) -> list[detections.DetectionRecord]:
    """Five detections with v1: three from the API, two from the console."""
    srv = app.state.serving
    serving.start_version(services, srv, "logos", "v1")
    deadline = time.monotonic() + 60
    while services.repo.get_version_by_id(logos[0].id).status is not VersionStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    for i in range(5):
        source = DetectionSource.API if i < 3 else DetectionSource.CONSOLE
        image = image_bytes(120, 90, color=unique_colour(900 + 40 * i))
        serving.detect(services, srv, "logos", "v1", image, 0.0, source=source)
    srv.detection_log.flush()
    return detections.list_detections(services, "logos").detections


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(rf'<a href="{D}/(\d+)">\d{{4}}-', html)]


def test_the_log_and_its_filters(
    client: TestClient, logged: list[detections.DetectionRecord], olga: str
) -> None:
    page = client.get(D)
    assert page.status_code == 200 and 'aria-current="page">Detection log' in page.text
    assert _ids(page.text) == [d.id for d in logged]  # newest first
    page = client.get(D, params={"source": "console"})
    assert _ids(page.text) == [d.id for d in logged if d.source is DetectionSource.CONSOLE]
    top = logged[0].top_label
    assert top is not None
    page = client.get(D, params={"label": top, "min_confidence": "0"})
    assert _ids(page.text) == [d.id for d in logged if any(p.label == top for p in d.labels)]
    page = client.get(D, params={"version": "v2"})
    assert _ids(page.text) == [] and "No detection matches" in page.text
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert _ids(client.get(D, params={"since": future}).text) == []
    assert len(_ids(client.get(D, params={"until": future}).text)) == 5
    for bad in (
        {"since": "yesterday"},
        {"min_confidence": "high"},
        {"min_confidence": "90", "max_confidence": "10"},
        {"source": "carrier pigeon"},
        {"cursor": "not-a-cursor"},
    ):
        r = client.get(D, params=bad)
        assert r.status_code == 400 and 'id="error"' in r.text and "<html" in r.text, bad


def test_paging(
    client: TestClient, logged: list[detections.DetectionRecord], olga: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(page_module, "PER_PAGE", 2)
    seen: list[int] = []
    url = D + "?source=api"
    while url:
        page = client.get(url)
        seen += _ids(page.text)
        found = re.search(r'<a href="(\?[^"]+)" id="older">', page.text)
        url = D + found.group(1).replace("&amp;", "&") if found else ""
    assert seen == [d.id for d in logged if d.source is DetectionSource.API]


def test_one_detection(client: TestClient, logged: list[detections.DetectionRecord], olga: str) -> None:
    d = logged[-1]
    page = client.get(f"{D}/{d.id}")
    assert page.status_code == 200 and f"Detection {d.id}" in page.text
    assert "opened no human loop" in page.text
    for label, _ in d.probabilities:
        assert label in page.text
    for size in ("small", "large"):
        r = client.get(f"{D}/{d.id}/image", params={"size": size})
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert client.get(f"{D}/999999").status_code == 404


def test_inbox_scan_and_access(client: TestClient, services: Services, logos: list[ModelVersion]) -> None:
    olga = sign_in(client, "olga")
    scan = "/console/projects/logos/workflow/inbox/scan"
    assert client.post(scan, data={}).status_code == 403
    r = client.post(scan, data={"csrf_token": olga})
    assert r.status_code == 200 and "Looked into the inboxes: nothing new." in r.text
    client.cookies.clear()
    bob = sign_in(client, "bob")
    assert client.get(D).status_code == 403
    assert client.post(scan, data={"csrf_token": bob}).status_code == 403


def _row(html: str, detection_id: int) -> str:
    found = re.search(rf'<tr>\s*<td><a href="{D}/{detection_id}">.*?</tr>', html, re.S)
    assert found, f"no row for detection {detection_id}"
    return found.group(0)


def test_try_it_detections_show_what_was_returned(
    client: TestClient, logged: list[detections.DetectionRecord], logos: list[ModelVersion], olga: str
) -> None:
    """Try it asks for every score (MinConfidence 0); the log shows the labels at or above their
    assumed threshold, as DetectCustomLabels answers by default, and the others only on request."""
    thresholds = logos[0].thresholds
    console = [d for d in logged if d.source is DetectionSource.CONSOLE]
    below_seen = 0
    plain, every = client.get(D), client.get(D, params={"scores": "all"})
    for d in console:
        plain_row, every_row, one = _row(plain.text, d.id), _row(every.text, d.id), client.get(f"{D}/{d.id}")
        returned = one.text.split('id="returned"')[1].split("</ul>")[0]
        for p in d.labels:
            if p.confidence / 100 >= thresholds.get(p.label, 0.5):
                assert f'<span class="returned">{p.label} ' in plain_row
                assert f"<strong>{p.label}</strong>" in returned
            else:
                below_seen += 1
                assert f">{p.label} " not in plain_row and f"<strong>{p.label}</strong>" not in returned
                assert f'<span class="below">{p.label} ' in every_row
                assert f"{p.label} {p.confidence:.1f}% &lt; " in one.text.split('id="below"')[1]
    assert below_seen, "the test data has no label below its threshold"
    api = next(d for d in logged if d.source is DetectionSource.API)  # what the API returned, as it was
    assert all(f'<span class="returned">{p.label} ' in _row(plain.text, api.id) for p in api.labels)


def test_filtered_by_a_label_a_try_it_score_below_its_threshold_is_not_a_match(
    client: TestClient, logged: list[detections.DetectionRecord], logos: list[ModelVersion], olga: str
) -> None:
    thresholds = logos[0].thresholds
    below = [
        (d, p.label)
        for d in logged
        if d.source is DetectionSource.CONSOLE
        for p in d.labels
        if p.confidence / 100 < thresholds.get(p.label, 0.5)
    ]
    assert below, "the test data has no label below its threshold"
    for d, label in below:
        query = {"label": label, "source": "console"}
        assert d.id not in _ids(client.get(D, params=query).text)
        assert d.id in _ids(client.get(D, params={**query, "scores": "all"}).text)
