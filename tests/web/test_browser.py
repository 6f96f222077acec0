"""The reviewer pages in a real browser: Playwright driving Debian's chromium (``apt-get install chromium``;
.ci/run installs it; Playwright's own browser downloads are never used) against a real server on a free
port. Screenshots of each page land in the test's output folder, printed at the end."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import shared_dataset
from tests.web.browser import PASSWORD, Server, live_server
from visionloop.core import review
from visionloop.core.datasets import import_folder
from visionloop.core.entities import DatasetType, EntrySource, TaskType
from visionloop.core.projects import create_project
from visionloop.core.records.review import Detection, FlowSettings, HumanLoop, LoopStatus
from visionloop.core.services import Services
from visionloop.core.training import ModelCache, TrainingOptions, predict, request_training
from visionloop.engines.fake import ColourEngine
from visionloop.workflows.worker import run_job

LAPTOP = {"width": 1366, "height": 860}
TABLET = {"width": 820, "height": 1180}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server(tmp_path_factory.mktemp("browser") / "var", "alice", workers=0) as server:
        yield server


def _trained_logos_with_three_loops(svc: Services, tmp: Path) -> list[HumanLoop]:
    """The aws-logos labelled images, a version trained with the fake colour engine, and three of the
    inference images the model was unsure about, each in a human loop (as the detection hook starts)."""
    logos = shared_dataset("aws-logos")
    labelled = tmp / "labelled"
    labelled.mkdir()
    for label in ("amazon_logo", "aws_logo"):
        shutil.copytree(logos / label, labelled / label)
    create_project(svc, "logos", TaskType.CLASSIFICATION)
    report = import_folder(svc, "logos", str(labelled))
    assert report.imported == 10, report.to_dict()
    engine = ColourEngine()
    version, job = request_training(svc, "logos", TrainingOptions())
    claimed = svc.repo.claim_job(svc.clock.now(), job.id)
    assert claimed is not None
    run_job(svc, engine, claimed, "us-east-1", "123456789012")
    version = svc.repo.get_version_by_id(version.id)
    review.put_flow(
        svc,
        "logos",
        FlowSettings(instructions="Which logo is this?", min_confidence=100.0),  # every detection
        region="us-east-1",
        account="123456789012",
    )
    images = sorted((logos / "inference_images").iterdir())[:3]
    datas = [p.read_bytes() for p in images]
    loops = []
    for path, data, preds in zip(
        images, datas, predict(ModelCache(svc, engine), version, datas, 0), strict=True
    ):
        probs = {p.label: p.confidence / 100 for p in preds}
        loop = review.maybe_start_loop(svc, Detection("logos", version.name, data, probs, ref=path.name))
        assert loop is not None
        loops.append(loop)
    return loops


def test_a_reviewer_signs_in_and_labels_three_items(server: Server, browser: object, tmp_path: Path) -> None:
    svc = server.svc
    loops = _trained_logos_with_three_loops(svc, tmp_path)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems: list[str] = []
    context = browser.new_context(viewport=LAPTOP)  # type: ignore[attr-defined]
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(f"{server.url}/review/")
    assert page.url.endswith("/review/sign-in?next=/review/")
    page.screenshot(path=str(shots / "1-sign-in.png"))
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert "wrong name or password" in page.inner_text("main")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/review/")
    problems.clear()  # the browser logs the 401 of the wrong password
    assert "logos" in page.inner_text("table.flows") and "3" in page.inner_text("table.flows")
    page.screenshot(path=str(shots / "2-projects.png"))
    page.click("text=Review logos")

    answered = []
    # item 1: keyboard only (1 = amazon_logo, then Enter)
    page.wait_for_selector("#item")
    page.wait_for_function("document.getElementById('image').naturalWidth > 0")
    assert "Which logo is this?" in page.inner_text("main") and "None of the above" in page.inner_text("main")
    assert page.locator("#guesses li").count() == 2
    page.screenshot(path=str(shots / "3-queue-item-1.png"), full_page=True)
    answered.append(page.get_attribute("#item", "data-loop"))
    page.keyboard.press("1")
    assert page.is_checked("input[name=label][value=amazon_logo]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/review/queue?project=logos&done=1")

    # item 2: clicks, on a tablet-sized screen
    page.set_viewport_size(TABLET)
    page.wait_for_function("document.getElementById('image').naturalWidth > 0")
    page.screenshot(path=str(shots / "4-queue-item-2-tablet.png"), full_page=True)
    answered.append(page.get_attribute("#item", "data-loop"))
    page.click("label.choice:has-text('aws_logo')")
    page.click("#submit-answer")
    page.wait_for_url("**/review/queue?project=logos&done=2")
    page.set_viewport_size(LAPTOP)

    # item 3: keyboard again (2 = aws_logo); 0 would be none of the above
    answered.append(page.get_attribute("#item", "data-loop"))
    page.keyboard.press("0")
    assert page.is_checked("input[name=label][data-none]")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.wait_for_url("**/review/queue?project=logos&done=3")
    assert "Nothing to review right now" in page.inner_text("main")
    assert "You answered 3 items" in page.inner_text("main")
    page.screenshot(path=str(shots / "5-queue-done.png"))
    context.close()

    assert sorted(answered) == sorted(loop.name for loop in loops)  # type: ignore[type-var]
    expected = dict(zip(answered, ["amazon_logo", "aws_logo", "aws_logo"], strict=True))
    project = svc.repo.get_project("logos")
    train = svc.repo.find_dataset(project.id, DatasetType.TRAIN)
    assert train is not None
    added = [e for e in svc.repo.list_entries(train.id) if e.source is EntrySource.HUMAN_REVIEW]
    assert len(added) == 3
    for name, label in expected.items():
        loop = review.describe_loop(svc, str(name))
        assert loop.status is LoopStatus.COMPLETED and loop.human_answer == label
        entry = svc.repo.get_entry(loop.entry_id or 0)
        assert entry in added and entry.labels == (label,) and entry.review_ref == loop.arn
    assert problems == [], problems  # no script errors, no refused (CSP) resources
    print(f"\nscreenshots of the review pages: {shots}")


def test_detection_items_get_boxes_drawn_on_the_image(
    server: Server, browser: object, tmp_path: Path
) -> None:
    svc = server.svc
    create_project(svc, "shapes", TaskType.DETECTION)
    svc.repo.add_labels(svc.repo.get_project("shapes").id, ["amazon_logo", "aws_logo"])
    flow = review.put_flow(svc, "shapes", FlowSettings(), region="us-east-1", account="123456789012")
    image = sorted((shared_dataset("aws-logos") / "inference_images").iterdir())[3].read_bytes()
    loop = review.start_loop(
        svc, flow, "shapes-1", {"customLabels": [{"Name": "aws_logo", "Confidence": 48}]}, image=image
    )
    problems: list[str] = []
    context = browser.new_context(viewport=LAPTOP)  # type: ignore[attr-defined]
    page = context.new_page()
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{server.url}/review/sign-in?next=/review/queue%3Fproject%3Dshapes")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#canvas")
    page.wait_for_function("document.getElementById('image').naturalWidth > 0")
    page.keyboard.press("2")  # aws_logo, then drag a box over the middle of the image
    box = page.locator("#canvas").bounding_box()
    assert box is not None and box["width"] > 50
    x0, y0 = box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + box["width"] * 0.25, y0 + box["height"] * 0.25, steps=5)
    page.mouse.move(x0 + box["width"] * 0.5, y0 + box["height"] * 0.5, steps=5)
    page.mouse.up()
    assert page.locator("#box-list li").count() == 1 and "aws_logo" in page.inner_text("#box-list")
    page.screenshot(path=str(tmp_path / "detection-item.png"))
    page.keyboard.press("Enter")
    page.wait_for_url("**/review/queue?project=shapes&done=1")
    context.close()

    done = review.describe_loop(svc, loop.name)
    assert done.status is LoopStatus.COMPLETED and done.human_answer == "aws_logo"
    [b] = svc.repo.get_entry(done.entry_id or 0).boxes
    assert b.label == "aws_logo"
    assert b.left == pytest.approx(0.25, abs=0.02) and b.top == pytest.approx(0.25, abs=0.02)
    assert b.width == pytest.approx(0.5, abs=0.02) and b.height == pytest.approx(0.5, abs=0.02)
    assert problems == [], problems
    print(f"\nscreenshot of a detection item: {tmp_path / 'detection-item.png'}")
