"""The operators' console in a real browser: Playwright driving Debian's chromium (``apt-get install
chromium``; .ci/run installs it; Playwright never downloads a browser of its own) against a real server on a
free port, with a worker thread training on the fake colour engine (engines/fake.py) so that training
takes a second.

An operator signs in, creates a project, uploads the aws-logos labelled images as a folder through the
page, trains with the defaults and watches the progress finish; a detection image gets a box drawn and
moved. Screenshots of each page land in the test's output folder (printed at the end); with
VISIONLOOP_UPDATE_SCREENSHOTS=1 they are also copied, as small palette PNGs, to docs/screenshots/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import shared_dataset
from tests.web.browser import PASSWORD, Server, keep_screenshots, live_server, worker_thread
from visionloop.core.accounts import Role
from visionloop.core.datasets import add_image
from visionloop.core.entities import DatasetType, JobStatus, TaskType, VersionStatus
from visionloop.core.projects import create_project
from visionloop.engines.fake import ColourEngine

SCREEN = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("console") / "var"
    # workers: 1 as `visionloop serve` has it; create_app starts none, worker_thread is the worker
    with live_server(data, "olga", Role.OPERATOR, workers=1) as server, worker_thread(server, ColourEngine()):
        yield server  # a worker, as `visionloop serve` starts them, on the fake engine


def _sign_in(page: object, url: str, asked: str) -> None:
    page.goto(f"{url}{asked}")  # type: ignore[attr-defined]
    page.fill("input[name=name]", "olga")  # type: ignore[attr-defined]
    page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]


def test_an_operator_creates_a_project_uploads_and_trains(
    server: Server, browser: object, tmp_path: Path
) -> None:
    svc = server.svc
    logos = shared_dataset("aws-logos")
    folder = tmp_path / "aws-logos-labelled"  # the labelled images: one folder per label
    for label in ("amazon_logo", "aws_logo"):
        shutil.copytree(logos / label, folder / label)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems: list[str] = []
    context = browser.new_context(viewport=SCREEN)  # type: ignore[attr-defined]
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    # signing in: the console asks for it, then goes where it was asked
    page.goto(f"{server.url}/")
    assert page.url == f"{server.url}/review/sign-in?next=/console/"
    assert "Sign in to the console" in page.inner_text("main")
    page.screenshot(path=str(shots / "console-1-sign-in.png"))
    page.fill("input[name=name]", "olga")
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}/console/projects")
    assert "No project yet" in page.inner_text("main")

    # a project: name, task, Create
    page.fill("input[name=name]", "logos")
    page.check("input[name=task][value=classification]")
    page.click("text=Create project")
    page.wait_for_url(f"{server.url}/console/projects/logos/datasets/train?notice=created")
    assert "The project is ready" in page.inner_text("main")
    assert page.is_visible("#add-images[open]")

    # the labelled images as a folder, through the page's folder input
    page.set_input_files("#folder", str(folder))
    assert "10 images chosen" in page.inner_text("#chosen")
    assert page.is_checked("input[name=labels_from][value=folder]")
    page.screenshot(path=str(shots / "console-2-upload.png"))
    page.click("#upload-button")
    page.wait_for_selector("#upload-status[data-done='1']")
    assert page.inner_text("#upload-status").startswith("Done: 10 added")
    page.wait_for_function(
        "() => document.querySelectorAll('#browser li.thumb').length === 10"
    )  # htmx refreshed it
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#browser li.thumb img'))"
        ".every((i) => i.complete && i.naturalWidth > 0)"
    )
    counts = page.inner_text("#label-counts")
    assert "amazon_logo\t5" in counts and "aws_logo\t5" in counts
    page.click("#add-images > summary")  # fold the upload panel away for the picture
    page.screenshot(path=str(shots / "console-3-dataset.png"))
    project = svc.repo.get_project("logos")
    train = svc.repo.find_dataset(project.id, DatasetType.TRAIN)
    assert train is not None
    assert (
        sorted(e.labels[0] for e in svc.repo.list_entries(train.id)) == ["amazon_logo"] * 5 + ["aws_logo"] * 5
    )

    # filter to one label, tick two images, relabel them, then put them back
    page.select_option("#filters select[name=label]", "aws_logo")
    page.click("#filters button")
    page.wait_for_function("() => document.querySelectorAll('#browser li.thumb').length === 5")
    page.locator("li.thumb input[type=checkbox]").nth(0).check()
    page.locator("li.thumb input[type=checkbox]").nth(1).check()
    page.select_option("#bulk-action", "set")
    page.fill("#bulk-label", "amazon_logo")
    page.click("#bulk-apply")
    page.wait_for_selector("text=2 images changed.")
    assert page.locator("li.thumb").count() == 3
    page.goto(f"{server.url}/console/projects/logos/datasets/train?label=amazon_logo")
    page.locator("li.thumb input[type=checkbox]").nth(5).check()
    page.locator("li.thumb input[type=checkbox]").nth(6).check()
    page.select_option("#bulk-action", "set")
    page.fill("#bulk-label", "aws_logo")
    page.click("#bulk-apply")
    page.wait_for_selector("text=2 images changed.")

    # one image's page
    page.locator("li.thumb a.caption").first.click()
    page.wait_for_selector("#labels-form")
    page.wait_for_function("() => document.getElementById('image').naturalWidth > 0")
    page.screenshot(path=str(shots / "console-4-image.png"))
    first = page.get_attribute("#entry", "data-entry")
    page.keyboard.press("2")  # keys: aws_logo, then 1 amazon_logo again, Enter saves and opens the next
    assert page.is_checked("input[name=label][value=aws_logo]")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Saved.")
    assert page.get_attribute("#entry", "data-entry") != first
    assert svc.repo.get_entry(int(first or 0)).labels == ("amazon_logo",)

    # train with the defaults and watch the job finish
    page.click("nav.tabs >> text=Train")
    page.wait_for_url(f"{server.url}/console/projects/logos/train")
    assert "10</strong> training images" in page.inner_html("#train")
    assert not page.is_visible("select[name=mode]")  # advanced options folded away
    page.screenshot(path=str(shots / "console-5-train.png"))
    page.click("#train-button")
    page.wait_for_url("**/console/projects/logos/train?job=*")
    page.wait_for_selector("article.job[data-status='SUCCEEDED']", timeout=60_000)  # htmx polled it
    assert "See its results" in page.inner_text("#jobs")
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "console-6-trained.png"))
    [version] = svc.repo.list_versions(project.id)
    assert version.status is VersionStatus.TRAINING_COMPLETED
    assert [j.status for j in svc.repo.list_jobs(project.id)] == [JobStatus.SUCCEEDED]
    assert svc.repo.count_entries(train.id) == 8  # a fifth went to TEST for the evaluation

    # the projects list shows the new version
    page.click("nav.nav >> text=Projects")
    page.wait_for_url(f"{server.url}/console/projects")
    assert "v1" in page.inner_text("#projects") and "training completed" in page.inner_text("#projects")
    page.screenshot(path=str(shots / "console-7-projects.png"))
    context.close()
    assert problems == [], problems  # no script errors, no refused (CSP) resources
    keep_screenshots(shots)
    print(f"\nscreenshots of the console: {shots}")


def test_boxes_are_drawn_moved_and_saved(server: Server, browser: object, tmp_path: Path) -> None:
    svc = server.svc
    create_project(svc, "shapes", TaskType.DETECTION)
    svc.repo.add_labels(svc.repo.get_project("shapes").id, ["amazon_logo", "aws_logo"])
    image = sorted((shared_dataset("aws-logos") / "inference_images").iterdir())[3].read_bytes()
    entry = add_image(svc, "shapes", image, "sign.jpg")
    problems: list[str] = []
    context = browser.new_context(viewport=SCREEN)  # type: ignore[attr-defined]
    page = context.new_page()
    page.on("pageerror", lambda e: problems.append(str(e)))
    _sign_in(page, server.url, f"/console/projects/shapes/entries/{entry.id}")
    page.wait_for_selector("#canvas")
    page.wait_for_function("() => document.getElementById('image').naturalWidth > 0")
    page.focus("#canvas")
    page.keyboard.press("2")  # aws_logo
    box = page.locator("#canvas").bounding_box()
    assert box is not None and box["width"] > 50
    x0, y0 = box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + box["width"] * 0.5, y0 + box["height"] * 0.5, steps=8)
    page.mouse.up()
    assert page.locator("#box-list li").count() == 1 and "aws_logo" in page.inner_text("#box-list")
    # move it right by a tenth with the mouse, then down by 0.01 with the keyboard
    cx, cy = x0 + box["width"] * 0.2, y0 + box["height"] * 0.2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + box["width"] * 0.1, cy, steps=5)
    page.mouse.up()
    page.keyboard.press("ArrowDown")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page.screenshot(path=str(shots / "console-8-boxes.png"))
    page.click("#save-boxes")
    page.wait_for_selector("text=Saved.")
    context.close()
    [b] = svc.repo.get_entry(entry.id).boxes
    assert b.label == "aws_logo"
    assert b.left == pytest.approx(0.35, abs=0.02) and b.top == pytest.approx(0.26, abs=0.02)
    assert b.width == pytest.approx(0.5, abs=0.02) and b.height == pytest.approx(0.5, abs=0.02)
    assert problems == [], problems
    keep_screenshots(shots)
