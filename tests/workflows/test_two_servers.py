"""Two real `visionloop serve` processes, each with its worker process, its workflow runner and the real
engine, on one PostgreSQL database and one data folder (the store and the buckets), as docs/scale.md
describes: a training check asked through one trains once and deploys once, the deployed version is
served by both (the one that did not start it follows it with units of its own, its status staying
RUNNING), a stop through either ends it on both, and no run is counted as resumed. Skipped, with the
reason, where PostgreSQL or the shared datasets are absent."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import shared_dataset
from tests.factories import make_project
from tests.servers import serve_process
from tests.storage.postgres import Cluster
from visionloop.bootstrap import build_services
from visionloop.core import datasets
from visionloop.settings import load_settings

P = "/api/v1/projects/logos"


def _wait(what: str, check: Callable[[], Any], timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


def _get(url: str, path: str) -> Any:
    r = httpx.get(f"{url}{path}", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _detect(url: str, image: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}{P}/detect?min_confidence=0",
        content=image,
        headers={"content-type": "image/jpeg"},
        timeout=120,
    )


def test_two_serve_processes_on_one_database_train_once_and_both_serve(
    cluster: Cluster, tmp_path: Path
) -> None:
    logos = shared_dataset("aws-logos")
    data, url = tmp_path / "var", cluster.fresh_database()
    svc = build_services(load_settings({"data_dir": str(data), "database_url": url}, environ={}))
    try:
        make_project(svc, "logos")
        labelled = tmp_path / "labelled"
        for label in ("amazon_logo", "aws_logo"):
            (labelled / label).mkdir(parents=True)
            for f in sorted((logos / label).iterdir())[:5]:
                (labelled / label / f.name).write_bytes(f.read_bytes())
        assert datasets.import_folder(svc, "logos", str(labelled)).imported == 10
    finally:
        svc.repo.close()
    image = next(f for f in sorted((labelled / "aws_logo").iterdir())).read_bytes()
    env = {
        "VISIONLOOP_DATABASE_URL": url,
        "VISIONLOOP_WORKERS": "1",
        "VISIONLOOP_WORKFLOW_POLL_SECONDS": "0.2",
    }
    with ExitStack() as stack:
        a, b = (stack.enter_context(serve_process(data, env, start_timeout=90)) for _ in range(2))
        # a parameter change through a: a training check, run by whichever runner advances it, trains
        # on whichever worker claims the job and deploys (starts v1 through that server)
        change = {"auto_training_enabled": True, "min_untrained_images": 10}
        r = httpx.patch(f"{a}{P}/parameters", json=change, timeout=30)
        assert r.status_code == 200, r.text
        _wait("the deployment", lambda: _get(b, f"{P}/deployments")["serving"] == "v1", 600)
        assert _get(a, f"{P}/versions/v1/serving")["status"] == "RUNNING"
        through = [_detect(server, image) for server in (a, b, a, b)]  # one of them loads units first
        assert [r.status_code for r in through] == [200] * 4, [r.text for r in through]
        assert len({str(r.json()["labels"]) for r in through}) == 1
        for server in (a, b):  # each serves from units of its own; the stored status stayed RUNNING
            state = _get(server, f"{P}/versions/v1/serving")
            assert state["status"] == "RUNNING" and state["queue"]["served"] >= 2, state

        # stopped through b: it ends on both
        r = httpx.post(f"{b}{P}/versions/v1/stop", timeout=30)
        assert r.status_code == 202, r.text
        _wait("v1 to stop", lambda: _get(a, f"{P}/versions/v1/serving")["status"] == "STOPPED")
        _wait("a's units to go", lambda: _get(a, f"{P}/versions/v1/serving")["queue"] is None, 30)
        for server in (a, b):
            refused = _detect(server, image)
            assert refused.status_code == 409, refused.text

        jobs = _get(a, "/api/v1/jobs")["jobs"]
        versions = _get(b, f"{P}/versions")["versions"]
        runs = _get(a, f"{P}/runs")["runs"]
        assert [(j["kind"], j["status"]) for j in jobs] == [("train", "SUCCEEDED")]  # trained once
        assert [(v["name"], v["status"]) for v in versions] == [("v1", "STOPPED")]
        assert len(_get(b, f"{P}/deployments")["deployments"]) == 1  # deployed once
        assert [r["outcome"] for r in runs if r["outcome"] != "skipped"] == ["deployed"], runs
        assert all(r["resumed"] == 0 for r in runs), runs
