"""Every console page and review page fits its window, on a 390×844 phone and a 1280×800 laptop: no page is
wider than the viewport (tables scroll inside their own box, images scale, forms wrap). Playwright drives
Debian's chromium (tests/web/browser.py) against a real server seeded with what each page shows: a trained
classification project with two versions, one of them running with detections in the log (from the API
and from Try it), a trained object-detection project, a run, a notification channel with a delivery,
open review items, a face collection.

The pages are enumerated from the app's routes: a console or review GET route this test does not visit
fails it (SKIP lists, with a reason, the routes that are not pages). Phone screenshots of a few pages land
in the test's output folder (with VISIONLOOP_UPDATE_SCREENSHOTS=1 also in docs/screenshots/, phone-*.png)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from tests.core.test_collections import ANN, fake_faces
from tests.factories import image_bytes, unique_colour, write_folder_dataset
from tests.web.browser import PASSWORD, Server, keep_screenshots, live_server
from tests.web.conftest import review_project
from tests.web.console.data import train_with_evaluation
from tests.web.console.detection_data import detection_project, scene, train_detector
from visionloop.core import collections, notifications, retraining, serving
from visionloop.core.accounts import Role
from visionloop.core.datasets import import_folder
from visionloop.core.detections import DetectionSource, list_detections
from visionloop.core.entities import DatasetType, TaskType, VersionStatus
from visionloop.core.events import EventType, publish
from visionloop.core.projects import create_project
from visionloop.web.routing import PageRoute

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}
MAX_SHOT_BYTES = 200_000
SKIP = {
    "/console": "redirects to /console/",
    "/console/projects/{name}/datasets/{kind}/export": "a manifest to download, not a page",
    "/console/projects/{name}/entries/{entry_id}/image": "an image, not a page",
    "/console/projects/{name}/entries/{entry_id}/thumb": "an image, not a page",
    "/console/projects/{name}/versions/{version}/images/{digest}": "an image, not a page",
    "/console/projects/{name}/workflow/detections/{detection_id}/image": "an image, not a page",
    "/review/items/{name}/image": "an image, not a page",
}
REFUSALS = {  # pages that answer with a refusal here, which must fit too
    "/console/no-such-page",
    "/review/no-such-page",
    "/console/setup",  # an operator exists: the setup link no longer works (the form: test_first_run_browser)
}
PHONE_SHOTS = {  # page → a screen of it on the phone: its file, what to scroll to ("": the top)
    "/console/projects/logos/versions/v1": ("phone-1-version.png", ""),
    "/console/projects/logos/workflow/detections": ("phone-2-detections.png", "#detections"),
    "/review/queue?project=fruit": ("phone-3-review.png", ""),
}


@dataclass
class Seeded:
    server: Server
    pages: dict[str, list[str]]  # route path → the URLs that show it
    photo: Path  # for Try it: red and blue rectangles on grey (both projects' models answer it)


def page_routes(app: FastAPI) -> set[str]:
    """The app's page GET routes (the console's and the review pages': web.routing.PageRoute)."""

    def walk(routes: Iterable[Any]) -> Iterator[Any]:
        for route in routes:
            inner = getattr(route, "original_router", None)  # newer FastAPI wraps an included router
            yield from walk(inner.routes) if inner is not None else (route,)

    found = {r.path for r in walk(app.routes) if isinstance(r, PageRoute) and "GET" in (r.methods or ())}
    assert {"/console/", "/review/"} <= found, "the app's page routes were not found"
    return found


def _seed(server: Server, tmp: Path) -> dict[str, list[str]]:
    svc, srv = server.svc, server.serving
    folder = write_folder_dataset(tmp / "imgs", {"amazon_logo": 10, "aws_logo": 10, "other_brand_logo": 10})
    create_project(svc, "logos", TaskType.CLASSIFICATION)
    assert import_folder(svc, "logos", str(folder)).imported == 30
    train_with_evaluation(svc, "logos", "v1")
    train_with_evaluation(svc, "logos", "v2", seed=1)
    detection_project(svc, "shapes")
    train_detector(svc, "shapes", "v1")
    for project in ("logos", "shapes"):
        serving.start_version(svc, srv, project, "v1")
        deadline = time.monotonic() + 60
        while (
            svc.repo.get_version(svc.repo.get_project(project).id, "v1").status is not VersionStatus.RUNNING
        ):
            assert time.monotonic() < deadline, f"{project}/v1 did not start"
            time.sleep(0.1)
    for i, source in enumerate((DetectionSource.API, DetectionSource.CONSOLE, DetectionSource.AWS)):
        image = image_bytes(120, 90, color=unique_colour(900 + 40 * i))
        serving.detect(
            svc, srv, "logos", "v1", image, 0.0 if source is DetectionSource.CONSOLE else None, source=source
        )
    log: Any = srv.detection_log  # the background log (bootstrap.build_detection_log)
    log.flush()
    detection = list_detections(svc, "logos").detections[0]
    run = retraining.request_check(svc, "logos", "console", requested_by="olga")
    notifications.add_channel(svc, "logos", "ops", "webhook", url="https://hooks.example.org/visionloop")
    publish(svc, svc.repo.get_project("logos"), EventType.TRAINING_COMPLETED, {"version": "v2"})
    delivery = notifications.list_deliveries(svc, "logos")[0]
    review_project(svc, "fruit", n=2)
    review_project(svc, "pears", n=0)  # a flow with nothing to review: the empty queue
    collections.create_collection(svc, lambda kind: fake_faces(), "people")
    collections.index_faces(svc, lambda kind: fake_faces(), "people", ANN)
    logos = svc.repo.get_project("logos")
    train = svc.repo.find_dataset(logos.id, DatasetType.TRAIN)
    assert train is not None
    entry = svc.repo.list_entries(train.id)[0]
    job = svc.repo.list_jobs(logos.id)[0]
    p, w = "/console/projects/logos", "/console/projects/logos/workflow"
    return {
        "/console/": ["/console/"],
        "/console/projects": ["/console/projects"],
        "/console/projects/{name}": [p, "/console/projects/shapes"],
        "/console/projects/{name}/delete": [f"{p}/delete"],
        "/console/projects/{name}/datasets/{kind}": [
            f"{p}/datasets/train",
            f"{p}/datasets/test",
            "/console/projects/shapes/datasets/train",
        ],
        "/console/projects/{name}/entries/{entry_id}": [
            f"{p}/entries/{entry.id}",
        ],
        "/console/projects/{name}/train": [f"{p}/train", "/console/projects/shapes/train"],
        "/console/projects/{name}/train/jobs/{job_id}": [f"{p}/train/jobs/{job.id}"],
        "/console/projects/{name}/versions": [f"{p}/versions", "/console/projects/shapes/versions"],
        "/console/projects/{name}/versions/{version}": [
            f"{p}/versions/v1",
            "/console/projects/shapes/versions/v1",
        ],
        "/console/projects/{name}/versions/{version}/serving": [f"{p}/versions/v1/serving"],
        "/console/projects/{name}/compare": [f"{p}/compare?a=v1&b=v2"],
        "/console/try": ["/console/try"],
        "/console/projects/{name}/try": [f"{p}/try?version=v1"],
        "/console/projects/{name}/workflow/detections": [f"{w}/detections", f"{w}/detections?scores=all"],
        "/console/projects/{name}/workflow/detections/{detection_id}": [f"{w}/detections/{detection.id}"],
        "/console/projects/{name}/workflow/parameters": [f"{w}/parameters"],
        "/console/projects/{name}/workflow/runs": [f"{w}/runs"],
        "/console/projects/{name}/workflow/runs/{run_id}": [f"{w}/runs/{run.id}"],
        "/console/projects/{name}/workflow/notifications": [f"{w}/notifications"],
        "/console/projects/{name}/workflow/notifications/deliveries/{delivery_id}": [
            f"{w}/notifications/deliveries/{delivery.id}"
        ],
        "/console/faces": ["/console/faces"],
        "/console/faces/{name}": ["/console/faces/people"],
        "/console/faces/{name}/delete": ["/console/faces/people/delete"],
        "/console/batches": ["/console/batches"],
        "/console/flows": ["/console/flows"],
        "/console/reviewers": ["/console/reviewers"],
        "/console/review-items": ["/console/review-items", "/console/review-items?project=fruit"],
        "/console/projects/{name}/review": [f"{p}/review", "/console/projects/fruit/review"],
        "/console/setup": ["/console/setup"],
        "/console/{rest:path}": ["/console/no-such-page"],
        "/review/": ["/review/"],
        "/review/queue": ["/review/queue?project=fruit", "/review/queue?project=pears"],
        "/review/sign-in": ["/review/sign-in"],
        "/review/{rest:path}": ["/review/no-such-page"],
    }


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    data = tmp_path_factory.mktemp("layout")
    with live_server(data / "var", "olga", Role.OPERATOR, workers=0, analysis_threads=1) as server:
        photo = data / "scene.png"
        photo.write_bytes(scene([("red", 10, 60, 40, 40), ("blue", 100, 10, 40, 40)], 1))
        yield Seeded(server, _seed(server, data), photo)


# The widest things on the page, to say what overflows.
OVERFLOW = """() => {
  const width = window.innerWidth;
  const wide = [];
  const clipped = (el) => {  // inside a box that scrolls or clips: it does not widen the page
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== "visible") return true;
    }
    return false;
  };
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.right > width + 0.5 && r.width > 0 && !clipped(el)) {
      const classes = typeof el.className === "string" ? el.className.trim().split(/\\s+/) : [];
      const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
        classes.map((c) => "." + c).join("");
      wide.push(`${name} to ${Math.round(r.right)}px`);
    }
  }
  return {scroll: document.documentElement.scrollWidth, inner: width, wide: wide.slice(0, 4)};
}"""


def _sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/review/sign-in?next=/console/")
    page.fill("input[name=name]", "olga")
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/console/**")


def _too_wide(page: Any, base: str, url: str, size: dict[str, int]) -> str:
    """Why ``base + url`` does not fit ``size`` ('' when it fits)."""
    response = page.goto(base + url)
    page.wait_for_load_state("load")
    status = response.status if response is not None else 0
    if status >= 500 or (status >= 400 and url not in REFUSALS):
        return f"{url}: HTTP {status}"
    return _overflow(page, url, size)


def _tried(page: Any, base: str, project: str, photo: Path, size: dict[str, int]) -> str:
    """Why Try it's answer for ``photo`` with ``project``/v1 does not fit ``size`` ('' when it fits)."""
    page.goto(f"{base}/console/projects/{project}/try?version=v1")
    page.set_input_files("#file", str(photo))  # choosing the file sends it (tryit.js)
    page.wait_for_selector("#results", timeout=60_000)
    return _overflow(page, f"Try it's answer with {project}/v1", size)


def _overflow(page: Any, what: str, size: dict[str, int]) -> str:
    found = page.evaluate(OVERFLOW)
    if found["scroll"] > found["inner"]:
        return f"{what} at {size['width']} px is {found['scroll']} px wide: {', '.join(found['wide'])}"
    return ""


def test_every_page_fits_a_phone_and_a_laptop(
    seeded: Seeded, browser: Any, app: FastAPI, tmp_path: Path
) -> None:
    """``app``: the app as create_app builds it (tests/web/conftest.py), for its routes."""
    base = seeded.server.url
    missing = page_routes(app) - set(seeded.pages) - set(SKIP)
    assert not missing, (
        f"pages this test does not visit (add them, or to SKIP with a reason): {sorted(missing)}"
    )
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems: list[str] = []
    for size in (PHONE, LAPTOP):
        context = browser.new_context(viewport=size)
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
        if problem := _too_wide(page, base, "/review/sign-in", size):  # signed out: the sign-in page
            problems.append(problem)
        _sign_in(page, base)
        for urls in seeded.pages.values():
            for url in urls:
                if url == "/review/sign-in":
                    continue
                if problem := _too_wide(page, base, url, size):
                    problems.append(problem)
                if size is PHONE and url in PHONE_SHOTS:
                    name, part = PHONE_SHOTS[url]
                    if part:
                        page.locator(part).scroll_into_view_if_needed()
                    page.screenshot(path=str(shots / name))
        for project in ("logos", "shapes"):  # the answer's pages (a classifier's, a detector's boxes)
            if problem := _tried(page, base, project, seeded.photo, size):
                problems.append(problem)
        context.close()
    assert problems == [], "\n".join(problems)
    keep_screenshots(shots, MAX_SHOT_BYTES)
