"""The Train page in a real browser (Playwright driving Debian's chromium against a real server on a free
port, a worker thread training on the fake colour engine): before training, the page shows the automatic
split per label; keeping the datasets without test images is refused on the page with the reason and
moves nothing; the automatic split then moves exactly the images shown and the job trains. On a
390 px phone the page fits the screen. The screenshot lands in docs/screenshots/ with
VISIONLOOP_UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import image_bytes, unique_colour
from tests.web.browser import Server, keep_screenshots, live_server, open_signed_in, worker_thread
from visionloop.core.accounts import Role
from visionloop.core.datasets import add_image
from visionloop.core.entities import DatasetType
from visionloop.core.projects import create_project
from visionloop.core.services import Services
from visionloop.engines.fake import ColourEngine

SCREEN = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("train") / "var"
    with live_server(data, "olga", Role.OPERATOR, workers=1) as server, worker_thread(server, ColourEngine()):
        yield server


def count(svc: Services, kind: DatasetType) -> int:
    dataset = svc.repo.find_dataset(svc.repo.get_project("fruit").id, kind)
    return svc.repo.count_entries(dataset.id) if dataset else 0


def test_the_split_is_shown_chosen_and_made_as_shown(server: Server, browser: object, tmp_path: Path) -> None:
    svc = server.svc
    create_project(svc, "fruit")
    for i in range(14):
        label = "apple" if i < 8 else "pear"
        add_image(svc, "fruit", image_bytes(color=unique_colour(40 * i + 7)), f"{label}-{i}.jpg", [label])
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems: list[str] = []
    context = browser.new_context(viewport=SCREEN)  # type: ignore[attr-defined]
    page = context.new_page()
    page.on("pageerror", lambda e: problems.append(str(e)))
    open_signed_in(page, server.url, "/console/projects/fruit/train")

    # the split before it is made: per label, stay / move, and the warnings
    assert page.is_visible("#split-preview") and page.is_checked("input[name=split][value=auto]")
    rows = page.locator("#split-preview tbody tr").all_inner_texts()
    moves = {r.split("\t")[0]: int(r.split("\t")[2]) for r in rows}
    assert set(moves) == {"apple", "pear"} and all(n >= 1 for n in moves.values())
    assert "at least 5 are advised" in page.inner_text("#split-warnings")
    page.screenshot(path=str(shots / "console-5-train-split.png"), full_page=True)

    # on a phone, the page with the split shown fits its width
    phone = browser.new_context(viewport=PHONE)  # type: ignore[attr-defined]
    small = phone.new_page()
    open_signed_in(small, server.url, "/console/projects/fruit/train")
    assert small.is_visible("#split-preview")
    width = small.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width
    phone.close()

    # keep the datasets as they are: refused on the page, with the reason; nothing moved
    page.check("input[name=split][value=keep]")
    page.click("#train-button")
    page.wait_for_selector("#train-error")
    assert "no test images" in page.inner_text("#train-error")
    assert page.is_checked("input[name=split][value=keep]")
    assert count(svc, DatasetType.TEST) == 0 and count(svc, DatasetType.TRAIN) == 14

    # the automatic split: exactly what was shown moves, and the model trains
    page.check("input[name=split][value=auto]")
    page.click("#train-button")
    page.wait_for_url(re.compile(r".*/console/projects/fruit/train\?job=\d+.*"))
    page.wait_for_selector("article.job[data-status='SUCCEEDED']", timeout=60_000)
    assert count(svc, DatasetType.TEST) == sum(moves.values())
    assert page.is_visible("#split-kept") and not page.is_visible("#split-preview")
    context.close()

    assert problems == [], problems
    keep_screenshots(shots)
