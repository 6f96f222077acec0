"""What the real-browser tests share: Debian's chromium (``apt-get install chromium``; .ci/run installs it;
Playwright's own browser downloads are never used), a real server on a free port with one signed-up user,
and the screenshots kept as small palette PNGs. The ``chromium`` and ``browser`` fixtures are in
tests/web/conftest.py."""

from __future__ import annotations

import io
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers import serve_in_thread
from visionloop.api.app import create_app
from visionloop.bootstrap import build_accounts, build_services, build_serving, fake_engine
from visionloop.core.accounts import Role, add_reviewer
from visionloop.core.ports import TrainingEngine
from visionloop.core.services import Services
from visionloop.core.serving import Serving
from visionloop.settings import Settings, load_settings

CHROMIUM = next(
    (p for p in (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser")) if p),
    None,
)
PASSWORD = "correct horse battery"
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@dataclass
class Server:
    url: str
    svc: Services
    settings: Settings
    serving: Serving


@contextmanager
def live_server(
    data_dir: Path, user: str, role: Role = Role.REVIEWER, **settings: object
) -> Iterator[Server]:
    """The app over storage in ``data_dir`` (serving on the fake engine, ``user`` signed up with PASSWORD
    and real Argon2id hashes) in a uvicorn thread on a free port, until the block ends."""
    config = load_settings({"data_dir": str(data_dir), **settings}, environ={})
    svc = build_services(config)
    accounts = build_accounts(svc, config)
    add_reviewer(accounts, user, PASSWORD, role)
    serving = build_serving(config, engine_factory=fake_engine)
    try:
        with serve_in_thread(create_app(svc, config, serving, accounts)) as url:
            yield Server(url, svc, config, serving)
    finally:
        serving.host.close()
        if serving.review_hook is not None and hasattr(serving.review_hook, "stop"):
            serving.review_hook.stop()  # lifespan="off": the app's shutdown does not stop it
        svc.repo.close()


def open_signed_in(page: Any, url: str, asked: str, name: str = "olga") -> None:
    """Opens ``asked`` (a path) on the server at ``url``, signing in on the way as ``name``."""
    page.goto(f"{url}{asked}")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}{asked}")


@contextmanager
def worker_thread(server: Server, engine: TrainingEngine) -> Iterator[None]:
    """A worker training the server's queued jobs on ``engine``, as `visionloop serve` starts them (the app
    itself starts none), until the block ends."""
    from visionloop.workflows.worker import run_worker

    stop = threading.Event()
    settings = server.settings
    worker = threading.Thread(
        target=run_worker,
        args=(server.svc, engine, settings.region, settings.account_id, stop),
        kwargs={"poll_seconds": 0.2, "recover": False},
        daemon=True,
    )
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(10)


def keep_screenshots(shots: Path, max_bytes: int | None = None) -> None:
    """Every screenshot in ``shots`` as a 256-colour PNG: each must be under ``max_bytes`` (when given), and
    with VISIONLOOP_UPDATE_SCREENSHOTS=1 they are copied into docs/screenshots."""
    update = os.environ.get("VISIONLOOP_UPDATE_SCREENSHOTS") == "1"
    if not update and max_bytes is None:
        return
    from PIL import Image

    for png in sorted(shots.glob("*.png")):
        with Image.open(png) as img:
            small = img.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
            out = io.BytesIO()
            small.save(out, "PNG", optimize=True)
        if max_bytes is not None:
            assert len(out.getvalue()) < max_bytes, (
                f"{png.name} is {len(out.getvalue()):,} bytes as a palette PNG"
            )
        if update:
            DOCS_SHOTS.mkdir(exist_ok=True)
            (DOCS_SHOTS / png.name).write_bytes(out.getvalue())
