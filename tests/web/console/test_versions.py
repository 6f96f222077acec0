"""The console's model pages in-process: the version page's table, charts and filters on a version the
fake engine trained (with the evaluation the real metrics code makes), start/stop with units over fake
inference units, comparing two versions; CSRF on every form, reviewers refused, failures as pages."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from fastapi.testclient import TestClient

from tests.factories import make_project, write_folder_dataset
from tests.web.conftest import sign_in
from tests.web.console.data import store_evaluation
from visionloop.core.accounts import Accounts
from visionloop.core.datasets import import_folder
from visionloop.core.entities import ModelVersion, VersionStatus
from visionloop.core.services import Services
from visionloop.engines.review_guide import review_guide

P = "/console/projects/logos"


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg .*?</svg>", html, flags=re.S)]


def test_the_list_and_a_version_page(client: TestClient, logos: list[ModelVersion], olga: str) -> None:
    page = client.get(f"{P}/versions")
    assert page.status_code == 200
    assert 'href="/console/projects/logos/versions/v1"' in page.text and "v2" in page.text
    assert 'aria-current="page">Models' in page.text and 'id="compare-form"' in page.text

    page = client.get(f"{P}/versions/v1")
    assert page.status_code == 200, page.text
    html = page.text
    v1 = logos[0]
    ev = v1.evaluation
    assert ev is not None
    for row in ev["per_label"]:  # type: ignore[union-attr]
        assert f">{row['label']}" in html
        assert f"{100 * row['threshold']:.1f}%" in html  # thresholds in percent, like confidences
    assert 'id="few-images"' in html and "few images" in html  # 2 test images per label
    assert "The TEST set is small (6 images)" in html
    assert "tuned on the TEST images" in html and 'id="n-groups"' not in html
    assert 'id="confusion"' in html and "heat-" in html
    svgs = _svgs(html)  # 3 PR curves and the reliability diagram, each well-formed
    assert len(svgs) == 4
    assert 'id="start-form"' in html and 'name="min_units"' in html and 'name="max_units"' in html
    assert 'id="reliability-table"' in html
    assert "Content-Security-Policy" in page.headers and "<script>" not in html  # no inline script


def test_thresholds_from_validation_and_groups(
    client: TestClient, services: Services, logos: list[ModelVersion], olga: str
) -> None:
    evaluation = dict(logos[0].evaluation or {}, threshold_source="validation", n_groups=4)
    store_evaluation(services, logos[0], evaluation)
    html = client.get(f"{P}/versions/v1").text
    assert "chosen on cross-validation of the training images" in html
    assert "tuned on the TEST images" not in html
    assert 'id="n-groups"' in html and "4 groups of similar photos" in html
    assert "bootstrap over the 4 groups of similar test photos" in html


def _gallery(html: str) -> str:
    """The page's test-image gallery (the confused pairs above it show some of the images too)."""
    return html.split('<section class="panel" id="images">', 1)[1]


def test_per_image_filters(client: TestClient, logos: list[ModelVersion], olga: str) -> None:
    ev = logos[0].evaluation
    assert isinstance(ev, dict)
    images = ev["images"]
    page = client.get(f"{P}/versions/v1?outcome=all")
    shown = re.findall(
        r'src="/console/projects/logos/versions/v1/images/([0-9a-f]{64})"', _gallery(page.text)
    )
    assert sorted(shown) == sorted(i["image_id"] for i in images)
    for outcome, key in (("false_positives", "false_positives"), ("false_negatives", "false_negatives")):
        page = client.get(f"{P}/versions/v1", params={"outcome": outcome})
        shown = re.findall(r"/versions/v1/images/([0-9a-f]{64})", _gallery(page.text))
        assert sorted(shown) == sorted(i["image_id"] for i in images if i[key])
    label = ev["labels"][0]
    page = client.get(f"{P}/versions/v1", params={"outcome": "false_negatives", "label": label})
    shown = re.findall(r"/versions/v1/images/([0-9a-f]{64})", _gallery(page.text))
    assert sorted(shown) == sorted(i["image_id"] for i in images if label in i["false_negatives"])
    # nonsense filters fall back to everything, never an error
    page = client.get(f"{P}/versions/v1", params={"outcome": "<x>", "label": "nope", "page": "99"})
    assert page.status_code == 200 and "&lt;x&gt;" not in page.text
    # the images: only the version's test images, as small JPEGs
    r = client.get(f"{P}/versions/v1/images/{images[0]['image_id']}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    r = client.get(f"{P}/versions/v1/images/{'0' * 64}")
    assert r.status_code == 404 and "not tested on that image" in r.text


def _wait_status(services: Services, version: ModelVersion, *statuses: VersionStatus) -> ModelVersion:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        v = services.repo.get_version_by_id(version.id)
        if v.status in statuses:
            return v
        time.sleep(0.1)
    raise AssertionError(f"still {v.status}")


def test_start_and_stop_with_units(
    client: TestClient, services: Services, logos: list[ModelVersion], olga: str
) -> None:
    v1 = logos[0]
    # bad units: the page again, with the reason and the typed values; nothing started
    r = client.post(f"{P}/versions/v1/start", data={"csrf_token": olga, "min_units": "2", "max_units": "1"})
    assert r.status_code == 400 and "max_inference_units" in r.text and 'value="2"' in r.text
    r = client.post(f"{P}/versions/v1/start", data={"csrf_token": olga, "min_units": "two"})
    assert r.status_code == 400 and "whole number" in r.text
    assert services.repo.get_version_by_id(v1.id).status is VersionStatus.TRAINING_COMPLETED
    # without the CSRF token: refused, nothing started
    r = client.post(f"{P}/versions/v1/start", data={"min_units": "1"})
    assert r.status_code == 403 and "Form refused" in r.text
    assert services.repo.get_version_by_id(v1.id).status is VersionStatus.TRAINING_COMPLETED

    r = client.post(f"{P}/versions/v1/start", data={"csrf_token": olga, "min_units": "1", "max_units": "2"})
    assert r.status_code == 303 and r.headers["location"] == f"{P}/versions/v1"
    page = client.get(r.headers["location"])
    assert 'id="serving"' in page.text
    panel = client.get(f"{P}/versions/v1/serving")
    assert panel.status_code == 200
    assert 'id="version-status" hx-swap-oob="true"' in panel.text  # the heading's status follows
    if "every 2s" in panel.text:  # still starting: the panel polls itself
        assert 'hx-get="/console/projects/logos/versions/v1/serving"' in panel.text
    v = _wait_status(services, v1, VersionStatus.RUNNING)
    assert (v.min_inference_units, v.max_inference_units) == (1, 2)
    panel = client.get(f"{P}/versions/v1/serving")
    assert "every 2s" not in panel.text and 'id="stop-form"' in panel.text and "running" in panel.text
    # starting again: 409 as a page
    r = client.post(f"{P}/versions/v1/start", data={"csrf_token": olga, "min_units": "1"})
    assert r.status_code == 409 and "RUNNING" in r.text
    r = client.post(f"{P}/versions/v1/stop", data={})
    assert r.status_code == 403
    r = client.post(f"{P}/versions/v1/stop", data={"csrf_token": olga})
    assert r.status_code == 303 and r.headers["location"] == f"{P}/versions/v1"
    _wait_status(services, v1, VersionStatus.STOPPED)
    r = client.post(f"{P}/versions/v1/stop", data={"csrf_token": olga})
    assert r.status_code == 409 and "<html" in r.text


def test_compare_two_versions(client: TestClient, logos: list[ModelVersion], olga: str) -> None:
    page = client.get(f"{P}/compare")  # the two newest by default
    assert page.status_code == 200 and 'id="compare-labels"' in page.text
    page = client.get(f"{P}/compare", params={"a": "v1", "b": "v2"})
    assert page.status_code == 200
    for label in ("amazon_logo", "aws_logo", "other"):
        assert f'<th scope="row">{label}</th>' in page.text
    assert page.text.count('class="delta') >= 3 * 3 + 5
    assert "different test images" not in page.text  # same snapshot, same TEST set
    r = client.get(f"{P}/compare", params={"a": "v1", "b": "v9"})
    assert r.status_code == 404 and "v9" in r.text


def test_missing_things_and_reviewers(
    client: TestClient, services: Services, logos: list[ModelVersion], accounts: Accounts
) -> None:
    sign_in(client, "olga")
    assert client.get("/console/projects/nope/versions").status_code == 404
    r = client.get(f"{P}/versions/v7")
    assert r.status_code == 404 and "<html" in r.text and "Traceback" not in r.text
    client.cookies.clear()
    bob = sign_in(client, "bob")  # a reviewer
    for path in (f"{P}/versions", f"{P}/versions/v1", f"{P}/compare", f"{P}/versions/v1/serving"):
        r = client.get(path)
        assert r.status_code == 403 and "Operators only" in r.text, path
    r = client.post(f"{P}/versions/v1/start", data={"csrf_token": bob, "min_units": "1"})
    assert r.status_code == 403
    assert services.repo.get_version_by_id(logos[0].id).status is VersionStatus.TRAINING_COMPLETED


def test_a_version_without_evaluation(
    client: TestClient, services: Services, olga: str, tmp_path: Path
) -> None:
    from visionloop.core.training import TrainingOptions, request_training

    make_project(services, "empty")
    folder = write_folder_dataset(tmp_path / "imgs", {"a": 5, "b": 5})
    import_folder(services, "empty", str(folder))
    request_training(services, "empty", TrainingOptions(version_name="v1"))  # queued, not run
    page = client.get("/console/projects/empty/versions/v1")
    assert page.status_code == 200 and "still training" in page.text and "<svg" not in page.text
    page = client.get("/console/projects/empty/compare")
    assert page.status_code == 200 and "needs two trained versions" in page.text


def test_a_model_that_learned_its_test_images_says_so(
    client: TestClient, services: Services, logos: list[ModelVersion], olga: str
) -> None:
    assert 'id="learned-test"' not in client.get(f"{P}/versions/v1").text
    params = {**logos[0].params, "refit_on_test": True, "trained_on_images": 30}
    services.repo.update_version(logos[0].id, params=params)
    html = client.get(f"{P}/versions/v1").text
    assert 'id="learned-test"' in html
    assert "also learned its 6 TEST images" in html and "learned from 30 images" in html


def test_a_model_on_views_of_the_whole_image_says_so(
    client: TestClient, services: Services, logos: list[ModelVersion], olga: str
) -> None:
    assert 'id="framing"' not in client.get(f"{P}/versions/v1").text
    services.repo.update_version(logos[0].id, params={**logos[0].params, "framing": "whole image"})
    html = client.get(f"{P}/versions/v1").text
    assert 'id="framing"' in html and "views of the whole image</span>" in html


def test_a_model_with_patch_scores_says_so(
    client: TestClient, services: Services, logos: list[ModelVersion], olga: str
) -> None:
    assert 'id="patch-scores"' not in client.get(f"{P}/versions/v1").text
    classifier = {**logos[0].params.get("classifier", {}), "patches": {"size": 448}}
    services.repo.update_version(logos[0].id, params={**logos[0].params, "classifier": classifier})
    html = client.get(f"{P}/versions/v1").text
    assert 'id="patch-scores"' in html and "with patch scores</span>" in html


def test_the_f1_to_expect_on_new_photos(
    client: TestClient, services: Services, logos: list[ModelVersion], olga: str
) -> None:
    base = dict(logos[0].evaluation or {}, threshold_source="validation", new_scenes_macro_f1=0.823)
    range_ = {"lower": 0.823, "upper": 1.0, "basis": "new scenes to TEST"}
    store_evaluation(services, logos[0], dict(base, new_photos_macro_f1=range_))
    html = client.get(f"{P}/versions/v1").text
    assert 'id="new-photos-f1">82%–100%' in html and "from the F1 on new scenes to TEST" in html
    assert "expect something between the F1 on new scenes and the TEST F1" in html
    range_ = {"lower": 0.52, "upper": 0.82, "basis": "TEST"}
    store_evaluation(services, logos[0], dict(base, new_photos_macro_f1=range_))
    html = client.get(f"{P}/versions/v1").text
    assert 'id="new-photos-f1">52%–82%' in html and "TEST's 95% interval" in html
    assert "did not learn it" in html and "expect something between" not in html


def test_the_review_guide_shows_what_min_confidence_catches(
    client: TestClient, services: Services, logos: list[ModelVersion], olga: str
) -> None:
    base = {k: v for k, v in (logos[0].evaluation or {}).items() if k != "review_guide"}
    store_evaluation(services, logos[0], base)  # an evaluation stored before the guide existed
    assert 'id="review-guide"' not in client.get(f"{P}/versions/v1").text
    confidence = [0.9, 0.6, 0.75, 0.95, 0.55, 0.85, 0.99, 0.7]
    correct = [True, False, False, True, False, True, True, True]
    store_evaluation(services, logos[0], dict(base, review_guide=review_guide(confidence, correct)))
    html = client.get(f"{P}/versions/v1").text
    assert 'id="review-guide"' in html and "8 out-of-fold predictions of the training images" in html
    assert "3 of them wrong: too few" in html and "never saw its scene" not in html
    assert "too few for more than a rough guide" in html
    assert '<tr><td>70</td><td class="num">67%</td><td class="num">25%</td></tr>' in html
    assert (
        "set <code>min_confidence</code> to <strong>76</strong>: it sent 100% of them and 50% of all" in html
    )
    assert 'href="/console/projects/logos/workflow/parameters">Human review and Suggested minimum' in html
    on_scenes = dict(review_guide(confidence, correct) or {}, basis="cross-validation and new scenes")
    store_evaluation(services, logos[0], dict(base, review_guide=on_scenes))
    assert "by heads that never saw its scene" in client.get(f"{P}/versions/v1").text
