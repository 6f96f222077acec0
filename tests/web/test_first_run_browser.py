"""The first run in a real browser (issue 18, item 1): ``visionloop serve`` in its own process over an empty
data folder prints a one-time setup link; chromium (Debian's, driven by Playwright) opens it, creates the
first operator and lands signed in on the console. The link is dead afterwards, and a phone shows the form
without scrolling sideways. Screenshots as in tests/web/browser.py (VISIONLOOP_UPDATE_SCREENSHOTS=1 copies
them to docs/screenshots/)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.servers import serve_process
from tests.web.browser import keep_screenshots

LINK = re.compile(r"first run: create the first operator at (http://\S+/console/setup\?token=\S+)")
PHONE = {"width": 390, "height": 844}


def _printed_link(data: Path, url: str) -> str:
    port = url.rsplit(":", 1)[1]
    log = (data.parent / f"server-{port}.log").read_text()
    found = LINK.search(log)
    assert found, log
    return found.group(1)


def test_the_first_operator_is_created_in_the_browser(browser: object, tmp_path: Path) -> None:
    data = tmp_path / "var"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with serve_process(data, start_timeout=90) as url:
        link = _printed_link(data, url)
        assert link.startswith(f"{url}/console/setup?token=")
        assert httpx.get(f"{url}/console/setup?token=guess").status_code == 403

        phone = browser.new_context(viewport=PHONE)  # type: ignore[attr-defined]
        page = phone.new_page()
        page.goto(link)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(shots / "first-run-phone.png"), full_page=True)
        phone.close()

        context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{url}/console/")
        assert "Create the first operator" in page.inner_text("main")
        assert "setup link the server printed" in page.inner_text("main")
        page.goto(link)
        assert page.inner_text("h1") == "Create the first operator"
        page.fill("input[name=name]", "olga")
        page.fill("input[name=password]", "first operator pw")
        page.fill("input[name=password_again]", "first operator pw, typo")
        page.click("#create-operator")
        assert "The two passwords differ" in page.inner_text("#setup-error")
        page.fill("input[name=password]", "first operator pw")
        page.fill("input[name=password_again]", "first operator pw")
        page.screenshot(path=str(shots / "first-run-setup.png"))
        page.click("#create-operator")
        page.wait_for_url(f"{url}/console/projects?**")
        assert "Welcome, olga: you are the first operator" in page.inner_text("main")
        assert "signed in as olga" in page.inner_text("header")
        page.screenshot(path=str(shots / "first-run-welcome.png"))

        page.goto(link)  # used: dead now
        assert "Setup is done" in page.inner_text("main")
        assert httpx.get(link).status_code == 410
        assert not problems, problems
        context.close()
    keep_screenshots(shots)
