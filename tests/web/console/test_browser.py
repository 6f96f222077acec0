"""The model pages and the operators' workflow in a real browser: Playwright driving Debian's chromium
(``apt-get install chromium``; .ci/run installs it) against a real server on a free port, serving with
the fake colour engine's inference units.

The aws-logos labelled images and two versions trained on them (fake engine, with the evaluation the
real metrics code makes) are set up server-side. An operator signs in, reads v1's metrics page (table,
confusion matrix, charts, the false-negative filter), starts it with 1-2 units and watches it run,
turns human review on for every detection on the parameters page, tries an aws-logos inference image
(the version's labels, and the pretrained labels analyser when it is installed), compares v1 with v2,
reviews the item that detection opened on the review page, finds the detection in the log, runs a
training check and adds a webhook channel. Screenshots of each page land in the
test's output folder; with VISIONLOOP_UPDATE_SCREENSHOTS=1 they are also copied, as small palette PNGs,
to docs/screenshots/ (models-*.png)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import shared_dataset
from tests.web.browser import PASSWORD, Server, keep_screenshots, live_server
from tests.web.console.data import train_with_evaluation
from visionloop.core import parameters
from visionloop.core.accounts import Role
from visionloop.core.datasets import import_folder
from visionloop.core.entities import DatasetType, EntrySource, TaskType, VersionStatus
from visionloop.core.projects import create_project
from visionloop.core.records.review import HumanLoop, LoopStatus
from visionloop.core.services import Services
from visionloop.workflows.runner import build_runner

SCREEN = {"width": 1280, "height": 860}
MAX_SHOT_BYTES = 200_000


def _installed(kind: str) -> bool:
    try:
        from visionloop.analysis.registry import analyser_class

        analyser_class(kind)
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("models") / "var"
    with live_server(data, "olga", Role.OPERATOR, workers=0, analysis_threads=1) as server:
        runner = build_runner(server.svc, server.serving, server.settings)  # as `visionloop serve` does
        if runner is not None:
            runner.start()
        try:
            yield server
        finally:
            if runner is not None:
                runner.stop()


def _logos(svc: Services, tmp: Path) -> None:
    """Project logos: the aws-logos labelled images and versions v1, v2 trained on them (fake engine)."""
    logos = shared_dataset("aws-logos")
    labelled = tmp / "labelled"
    for label in ("amazon_logo", "aws_logo"):
        shutil.copytree(logos / label, labelled / label)
    create_project(svc, "logos", TaskType.CLASSIFICATION)
    assert import_folder(svc, "logos", str(labelled)).imported == 10
    train_with_evaluation(svc, "logos", "v1")
    train_with_evaluation(svc, "logos", "v2", seed=1)


def test_an_operator_reads_starts_tries_compares_and_reviews(
    server: Server, browser: object, tmp_path: Path
) -> None:
    svc = server.svc
    _logos(svc, tmp_path)
    url = f"{server.url}/console/projects/logos"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems: list[str] = []
    context = browser.new_context(viewport=SCREEN)  # type: ignore[attr-defined]
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    # sign in, asked for the models page
    page.goto(f"{url}/versions")
    page.fill("input[name=name]", "olga")
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{url}/versions")
    assert "v1" in page.inner_text("#versions") and "v2" in page.inner_text("#versions")
    page.screenshot(path=str(shots / "models-1-versions.png"))

    # v1's metrics
    page.click("#versions a:text-is('v1')")
    page.wait_for_url(f"{url}/versions/v1")
    table = page.inner_text("#labels")
    assert "amazon_logo" in table and "aws_logo" in table and "few images" in table
    assert page.locator("#curves svg").count() == 2 and page.locator("#calibration svg").count() == 1
    assert page.locator("table.confusion tbody tr").count() == 2
    page.locator("#images").scroll_into_view_if_needed()  # the thumbnails load lazily
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#images img'))"
        ".every((i) => i.complete && i.naturalWidth > 0)"
    )
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "models-2-version.png"), full_page=True)
    page.select_option("#image-filter select[name=outcome]", "false_negatives")
    page.click("#image-filter button")
    page.wait_for_url("**/versions/v1?outcome=false_negatives&label=#images")
    shown = page.locator("#images li.thumb").count()
    assert "image" in page.inner_text("#image-count")
    assert all("missed" in t for t in page.locator("#images li.thumb").all_inner_texts()) or shown == 0

    # start it with 1-2 units; the serving panel follows it to RUNNING
    page.goto(f"{url}/versions/v1")
    page.fill("input[name=min_units]", "1")
    page.fill("input[name=max_units]", "2")
    page.click("#start")
    page.wait_for_url(f"{url}/versions/v1")
    page.wait_for_function(  # htmx swaps the panel every 2 s while the version is STARTING
        "() => document.getElementById('serving-status').innerText.includes('running')", timeout=60_000
    )
    assert page.is_visible("#stop") and "running" in page.inner_text("#version-status")
    version = svc.repo.get_version(svc.repo.get_project("logos").id, "v1")
    assert version.status is VersionStatus.RUNNING and version.max_inference_units == 2
    page.screenshot(path=str(shots / "models-3-running.png"))

    # every detection to human review, on the workflow parameters page
    page.click("nav.tabs a:text-is('Workflow')")
    page.wait_for_url(f"{url}/workflow/parameters")
    page.check("input[name=human_review_enabled]")
    page.fill("input[name=min_confidence]", "100")
    page.click("#save")
    page.wait_for_url(f"{url}/workflow/parameters?notice=saved")
    assert "olga" in page.inner_text("#history")
    p = parameters.get_parameters(svc, "logos")
    assert p.human_review_enabled and p.min_confidence == 100
    page.screenshot(path=str(shots / "models-4-parameters.png"), full_page=True)

    # try an inference image on v1, and the pretrained labels and text analysers when installed
    page.goto(f"{url}/versions/v1")
    page.click("#serving a:text-is('Try it')")
    page.wait_for_url(f"{url}/try?version=v1")
    assert page.input_value("#target") == "logos/v1"
    kinds = [k for k in ("labels", "text") if _installed(k)]  # the pretrained ones that are installed
    for kind in ("labels", "text", "moderation"):
        page.set_checked(f"input[name=analyser][value={kind}]", kind in kinds)
    image = sorted((shared_dataset("aws-logos") / "inference_images").iterdir())[0]  # a Whole Foods sign
    page.set_input_files("#file", str(image))  # choosing the file sends it (tryit.js)
    page.wait_for_selector("#results", timeout=120_000)
    custom = page.inner_text("#found-custom-labels")
    assert "amazon_logo" in custom and "aws_logo" in custom and "returned" in custom
    assert page.locator("#results [role=alert]").count() == 0
    if "labels" in kinds:
        assert page.is_visible("#found-labels")  # (the labels analyser sees no object in a logo)
    if "text" in kinds:
        assert "WHOLE" in page.inner_text("#found-text")
        assert page.locator("#result-image polygon.word").count() >= 3
    page.screenshot(path=str(shots / "models-5-try.png"), full_page=True)

    # compare v1 with v2
    page.goto(f"{url}/compare?a=v1&b=v2")
    assert page.locator("#compare-labels tbody tr").count() == 2
    assert "Macro F1" in page.inner_text("#compare-overall")
    page.screenshot(path=str(shots / "models-6-compare.png"))

    # the detection opened a human loop: the operator reviews it
    deadline = time.monotonic() + 30
    loops: list[HumanLoop] = []
    flow = None
    while not loops:
        assert time.monotonic() < deadline, "the detection opened no human loop"
        flow = svc.repo.find_flow(svc.repo.get_project("logos").id)
        loops = svc.repo.list_loops(flow.id, status=LoopStatus.IN_PROGRESS) if flow else []
        time.sleep(0.2)
    page.click("header a:text-is('Review')")
    page.wait_for_url(f"{server.url}/review/")
    page.click("text=Review logos")
    page.wait_for_selector("#item")
    page.wait_for_function("document.getElementById('image').naturalWidth > 0")
    page.screenshot(path=str(shots / "models-7-review.png"))
    page.click("label.choice:has-text('aws_logo')")
    page.click("#submit-answer")
    page.wait_for_url("**/review/queue?project=logos&done=1")
    train = svc.repo.find_dataset(svc.repo.get_project("logos").id, DatasetType.TRAIN)
    assert train is not None
    reviewed = [e for e in svc.repo.list_entries(train.id) if e.source is EntrySource.HUMAN_REVIEW]
    assert [e.labels for e in reviewed] == [("aws_logo",)]

    # the detection in the log, a training check run, a webhook channel
    page.goto(f"{url}/workflow/detections")
    page.wait_for_selector("#detections")
    row = page.inner_text("#detections tbody tr")
    assert "console" in row and "v1" in row
    page.screenshot(path=str(shots / "models-8-detections.png"), full_page=True)
    page.click("nav.subtabs a:text-is('Runs')")
    page.click("#check-now")
    page.wait_for_url(f"{url}/workflow/runs/*")
    assert "training check" in page.inner_text("#run")
    page.wait_for_selector("#outcome", timeout=30_000)  # the runner ran it: auto training is off
    assert "skipped" in page.inner_text("#outcome") and "check" in page.inner_text("#steps")
    page.click("nav.subtabs a:text-is('Runs')")
    page.wait_for_selector("#runs table")
    page.screenshot(path=str(shots / "models-9-runs.png"), full_page=True)
    page.click("nav.subtabs a:text-is('Notifications')")
    page.fill("input[name=channel]", "ops")
    page.fill("input[name=url]", "https://hooks.example.org/visionloop")
    page.click("#add")
    page.wait_for_selector("#secret")
    page.screenshot(path=str(shots / "models-10-notifications.png"), full_page=True)

    # stop it again
    page.goto(f"{url}/versions/v1")
    page.click("#stop")
    page.wait_for_selector("#start", timeout=60_000)
    assert problems == [], problems
    keep_screenshots(shots, MAX_SHOT_BYTES)
    print(f"\nscreenshots: {shots}")
