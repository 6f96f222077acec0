"""The pictures: each label's assumed threshold written on its precision-recall curve beside its point,
inside the chart; the drift signal as a chart on the detection log's page, from reviewers' real answers
over several days (a day of few loops drawn hollow)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from fastapi.testclient import TestClient

from tests.factories import image_bytes, unique_colour
from tests.web.conftest import Clock, sign_in
from tests.web.console.data import evaluation_json, sample_probs
from visionloop.core import review
from visionloop.core.entities import ModelVersion
from visionloop.core.records.review import Detection, FlowSettings, LoopPurpose
from visionloop.core.services import Services
from visionloop.web.console import charts
from visionloop.web.console.evaluation import pr_curves, read_evaluation
from visionloop.web.numbers import percent

SVG = "{http://www.w3.org/2000/svg}"


def test_each_curve_writes_its_assumed_threshold_beside_its_point_inside_the_chart() -> None:
    truth, probs = sample_probs(n_per_label=8, seed=3)
    ev = read_evaluation(evaluation_json(truth, probs))
    assert ev is not None
    curves = pr_curves(ev)
    assert curves and all(c.operating is not None for c in curves)
    for curve in curves:
        root = ET.fromstring(charts.pr_chart(curve))
        [text] = [t for t in root.iter(f"{SVG}text") if t.get("class") == "threshold-text"]
        assert curve.operating is not None
        assert text.text == f"threshold {percent(curve.operating.threshold)}"
        x, width = float(text.get("x", "0")), float(root.get("width", "0"))
        assert 0 < x < width and 0 < float(text.get("y", "0")) < float(root.get("height", "0"))
        guides = [g for g in root.iter(f"{SVG}line") if g.get("class") == "threshold-guide"]
        assert len(guides) == 2


def _answered_loops(services: Services, answers: list[str], start: int) -> None:
    """Audit loops where the model said amazon_logo, answered by alice with ``answers``."""
    flow = review.put_flow(services, "logos", FlowSettings(), region="us-east-1", account="123456789012")
    for i, answer in enumerate(answers):
        image = image_bytes(color=unique_colour(start + i))
        detection = Detection("logos", "v1", image, {"amazon_logo": 0.9, "other": 0.1})
        assert review.maybe_start_loop(services, detection, flow=flow, purpose=LoopPurpose.AUDIT) is not None
        item = review.next_item(services, "alice")
        assert item is not None
        review.submit_answer(services, item.loop, "alice", answer)


def test_the_detection_log_draws_the_agreement_over_days(
    client: TestClient, olga: str, services: Services, clock: Clock, logos: list[ModelVersion]
) -> None:
    page = client.get("/console/projects/logos/workflow/detections")
    assert page.status_code == 200 and 'id="agreement-chart"' not in page.text  # nothing answered yet
    _answered_loops(services, ["amazon_logo"] * 5, 0)
    clock.advance(days=1)
    _answered_loops(services, ["amazon_logo", "other"], 10)
    sign_in(client, "olga")  # a day later: the session has expired
    page = client.get("/console/projects/logos/workflow/detections")
    found = re.search(r'<figure class="chart-box" id="agreement-chart">(.*?)</figure>', page.text, re.S)
    assert found is not None
    root = ET.fromstring(found.group(1))
    points = list(root.iter(f"{SVG}circle"))
    assert [p.get("class") for p in points] == ["point", "few"]
    tips = [p.findtext(f"{SVG}title") or "" for p in points]
    assert tips[0].endswith("100% of 5 loops agreed") and tips[1].endswith("50% of 2 loops agreed")
    assert float(points[0].get("cy", "0")) < float(points[1].get("cy", "0"))  # higher agreement is higher up
    assert "from 100% to 50%" in (root.findtext(f"{SVG}desc") or "")
