"""A real `visionloop serve` (with its worker process and the real engine) killed with SIGKILL while a
training check's training runs: on the next start the run is resumed from its train step (the cut-short
training is requested once more) and ends deployed, and nothing else is lost — the earlier run, the
parameters and their history, the events, the datasets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import shared_dataset
from tests.factories import make_project
from tests.servers import free_port
from visionloop.bootstrap import build_services
from visionloop.core import datasets, parameters
from visionloop.core.retraining import request_check
from visionloop.settings import load_settings

P = "/api/v1/projects/logos"


class Server:
    """`visionloop serve` in a subprocess with one worker process."""

    def __init__(self, data: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("VISIONLOOP_")}
        env |= {"VISIONLOOP_WORKERS": "1", "VISIONLOOP_WORKFLOW_POLL_SECONDS": "0.2"}
        cmd = [sys.executable, "-m", "visionloop", "serve", "--port", str(self.port), "--data-dir", str(data)]
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        wait_for("the server", self.up, 60, self)

    def up(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def get(self, path: str, **kw: Any) -> Any:
        r = httpx.get(f"{self.url}{P}{path}", timeout=30, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    def workers(self) -> list[int]:
        """Pids of the worker processes this server started (found by their --parent-pid)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"worker" in args and b"--parent-pid" in args and str(self.proc.pid).encode() in args:
                found.append(int(entry.name))
        return found

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)  # no clean-up at all
        self.proc.wait(timeout=30)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 240, server: Server | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        log = server.log.read_text() if server else ""
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{log[-3000:]}"
        time.sleep(0.1)
    return found


def test_a_run_cut_short_by_a_killed_server_is_resumed(tmp_path: Path) -> None:
    logos = shared_dataset("aws-logos")
    data = tmp_path / "var"
    svc = build_services(load_settings({"data_dir": str(data)}, environ={}))
    try:
        make_project(svc, "logos")
        labelled = tmp_path / "labelled"
        for label in ("amazon_logo", "aws_logo"):
            (labelled / label).mkdir(parents=True)
            for f in (logos / label).iterdir():
                (labelled / label / f.name).write_bytes(f.read_bytes())
        assert datasets.import_folder(svc, "logos", str(labelled)).imported == 10
        parameters.update_parameters(svc, "logos", {"min_untrained_images": 10}, changed_by="test")
        earlier = request_check(
            svc, "logos"
        )  # queued now; the server runs it: skipped (automatic training off)
    finally:
        svc.repo.close()

    server = Server(data, tmp_path / "server.log")
    try:
        wait_for("the earlier run", lambda: server.get(f"/runs/{earlier.id}")["outcome"], server=server)
        r = httpx.patch(f"{server.url}{P}/parameters", json={"auto_training_enabled": True})
        assert r.status_code == 200, r.text
        run = wait_for(
            "the training check", lambda: [x for x in server.get("/runs")["runs"] if x["id"] != earlier.id]
        )[0]

        def training() -> bool:
            jobs = httpx.get(f"{server.url}/api/v1/jobs").json()["jobs"]
            return bool(jobs) and jobs[0]["status"] == "RUNNING" and jobs[0]["progress"] < 0.5

        wait_for("the training job to run", training, server=server)
        before = {
            "events": server.get("/events", params={"limit": 1000})["events"],
            "history": server.get("/parameters/history")["changes"],
            "train": server.get("/datasets/train/entries")["total"],
            "test": server.get("/datasets/test/entries")["total"],
            "earlier": server.get(f"/runs/{earlier.id}"),
        }
        assert before["events"][-1]["type"] == "training_started"
        workers = server.workers()
        assert workers
        server.kill()
        wait_for(
            "the orphaned worker to stop",
            lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers),
            30,
        )
    except BaseException:
        server.close()
        raise

    server = Server(data, tmp_path / "server.log")
    try:
        ended = wait_for(
            "the resumed run",
            lambda: (x := server.get(f"/runs/{run['id']}"))["status"] in ("SUCCEEDED", "FAILED") and x,
            server=server,
        )
        assert ended["resumed"] == 1 and len(ended["output"]["resumed_at"]) == 1
        assert (ended["status"], ended["outcome"]) == ("SUCCEEDED", "deployed"), ended
        train = next(s for s in ended["steps"] if s["name"] == "train")
        assert train["output"]["version"] == "v2" and train["output"]["attempt"] == 2
        v1 = server.get("/versions/v1")
        assert v1["status"] == "TRAINING_FAILED" and v1["status_message"].startswith("interrupted:")
        jobs = httpx.get(f"{server.url}/api/v1/jobs").json()["jobs"]
        assert [j["status"] for j in jobs if j["kind"] == "train"] == ["FAILED", "SUCCEEDED"]
        assert server.get("/deployments")["serving"] == "v2"
        image = (logos / "aws_logo").iterdir().__next__().read_bytes()
        r = httpx.post(f"{server.url}{P}/detect", files={"file": ("a.png", image)}, timeout=60)
        assert r.status_code == 200 and r.json()["version"] == "v2", r.text

        # nothing else was lost
        events = server.get("/events", params={"limit": 1000})["events"]
        assert events[: len(before["events"])] == before["events"]
        assert [e["type"] for e in events[len(before["events"]) :]] == [
            "training_started",
            "training_completed",
            "version_deployed",
        ]
        assert server.get("/parameters/history")["changes"] == before["history"]
        assert server.get("/datasets/train/entries")["total"] == before["train"]
        assert server.get("/datasets/test/entries")["total"] == before["test"]
        assert server.get(f"/runs/{earlier.id}") == before["earlier"]
    finally:
        server.close()
