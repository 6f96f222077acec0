"""The reference scenario of continuous improvement, end to end, on ../shared/datasets/aws-logos with the
real engine and a fake clock: the whole server in-process (its lifespan starts the workflow runner, the
notifier and the inbox watcher; a worker thread trains), driven only through the REST API, the bucket
(the watched inboxes) and the reviewers' queue.

10 labelled images dropped into the labelled inbox → the training check trains v1 and deploys it (F1 ≥
min_f1) → the 10 inference images dropped into the detection inbox are detected with v1 → those below
min_confidence become human loops → a reviewer labels them (Whole Foods: none of the above) → once the new
labelled images reach min_untrained_images, the next scheduled check trains v2, which passes the
champion/challenger gate and replaces v1. The run history shows every step, and a webhook receiver (a
real HTTP server on a free port) got every event, signed."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import shared_dataset
from tests.factories import make_project
from tests.workflows.helpers import FakeClock
from visionloop.api.app import create_app
from visionloop.bootstrap import build_engine, build_services
from visionloop.core import review
from visionloop.core.records.review import NONE_OF_THE_ABOVE
from visionloop.settings import load_settings
from visionloop.workflows.worker import run_worker

P = "/api/v1/projects/logos"
BUCKET = "visionloop"
# what a reviewer sees in the inference images (1-5 are Whole Foods Market logos: neither label)
TRUTH = {
    "inference-image-6.png": "aws_logo",  # the AWS cloud
    "inference-image-7.png": "aws_logo",  # an AWS service icon
    "inference-image-8.png": "aws_logo",  # aws elemental
    "inference-image-9.png": "amazon_logo",  # prime, with the smile
    "inference-image-10.jpeg": "amazon_logo",  # amazon on a building
}


class Receiver:
    """A webhook receiver on a free port that keeps every request's headers and body."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, secret: str) -> list[dict[str, Any]]:
        out = []
        for headers, body in self.received:
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(expected, headers["X-Visionloop-Signature"]), headers
            out.append(json.loads(body))
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def test_the_reference_scenario(tmp_path: Path, receiver: Receiver) -> None:
    logos = shared_dataset("aws-logos")
    # the webhook receiver listens on 127.0.0.1: allowed with webhook_allow_private
    settings = load_settings(
        {"data_dir": str(tmp_path / "var"), "webhook_allow_private": True}, environ={}
    ).replace(
        workflow_poll_seconds=0.1,
        inbox_poll_seconds=0,  # the test asks for each look (POST …/inbox/scan)
        inbox_settle_seconds=0,
    )
    svc = build_services(settings)
    clock = FakeClock(datetime.now(UTC))
    svc.clock = clock
    make_project(svc, "logos")
    stop = threading.Event()
    engine = build_engine(settings)
    worker = threading.Thread(
        target=run_worker,
        args=(svc, engine, settings.region, settings.account_id, stop),
        kwargs={"poll_seconds": 0.1},
    )
    worker.start()
    try:
        with TestClient(create_app(svc, settings), raise_server_exceptions=False) as client:
            run_scenario(client, svc, clock, logos, receiver)
    finally:
        stop.set()
        worker.join()
        svc.repo.close()


def run_scenario(client: TestClient, svc: Any, clock: FakeClock, logos: Path, receiver: Receiver) -> None:
    def api(method: str, path: str, **kw: Any) -> Any:
        r = client.request(method, f"{P}{path}", **kw)
        assert r.status_code < 300, (method, path, r.status_code, r.text)
        return r.json() if r.content else None

    def runs() -> list[dict[str, Any]]:
        return list(api("GET", "/runs")["runs"])

    def deployed(n: int) -> Callable[[], dict[str, Any] | None]:
        def check() -> dict[str, Any] | None:
            done = [r for r in runs() if r["outcome"] == "deployed"]
            failed = [r for r in runs() if r["status"] == "FAILED" or r["outcome"] == "rejected"]
            assert not failed, [json.dumps(r.get("output")) for r in failed]
            return done[0] if len(done) >= n else None

        return check

    secret = api("POST", "/channels", json={"name": "ops", "kind": "webhook", "url": receiver.url})["secret"]
    rules = {
        "auto_training_enabled": True,
        "training_poll_minutes": 5,
        "min_untrained_images": 10,
        # TEST holds 2 of the 10 logo photos: one misranked photo makes F1 0.5-0.667 and moves a label's
        # F1 by a third whatever the recipe, so the gate's bars are set where this workflow test does
        # not hinge on that one photo (the gate itself is tested in tests/workflows/test_runs.py)
        "min_f1": 0.5,
        "max_f1_drop": 0.4,
        "human_review_enabled": True,
        "min_confidence": 90,
    }
    api("PATCH", "/parameters", json=rules)  # checks at once: nothing to train yet
    first = wait_for("the first check", lambda: [r for r in runs() if r["outcome"]])
    assert first[0]["outcome"] == "skipped" and first[0]["trigger"] == "parameter_change"

    # 1. ten labelled images arrive in the labelled inbox
    for label in ("amazon_logo", "aws_logo"):
        for f in sorted((logos / label).iterdir()):
            svc.buckets.put(BUCKET, f"logos/images_labeled_by_folder/{label}/{f.name}", f.read_bytes())
    clock.advance(minutes=1)
    report = api("POST", "/inbox/scan")
    assert report["added"] == 10, report

    # 2. the next scheduled check trains v1 and deploys it
    clock.advance(minutes=5)
    v1_run = wait_for("v1 deployed", deployed(1))
    assert v1_run["trigger"] == "schedule" and v1_run["output"]["version"] == "v1"
    assert v1_run["output"]["f1"] >= 0.5 and v1_run["output"]["new_images"] == 10
    assert api("GET", "/deployments")["serving"] == "v1"

    # 3. the ten inference images are dropped into the detection inbox and detected with v1
    for f in sorted((logos / "inference_images").iterdir()):
        svc.buckets.put(BUCKET, f"logos/images_for_detection/{f.name}", f.read_bytes())
    clock.advance(minutes=1)
    report = api("POST", "/inbox/scan")
    assert report["detected"] == 10, report

    # the log is written by a background writer shortly after each detection
    def logged() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = api("GET", "/detections", params={"limit": 100})["detections"]
        return rows if len(rows) >= 10 else None

    found = wait_for("the ten detections in the log", logged, timeout=30)
    assert len(found) == 10 and {d["version"] for d in found} == {"v1"}
    unsure = {d["source_ref"].rsplit("/", 1)[1] for d in found if d["top_confidence"] < 90}
    assert unsure, [d["top_confidence"] for d in found]

    # 4. the low-confidence ones became human loops (the review hook stores them in the background)
    flow = wait_for("the review flow", lambda: review.find_flow(svc, "logos"))
    loops = wait_for(
        "the loops", lambda: len(review.list_loops(svc, flow)) == len(unsure) and review.list_loops(svc, flow)
    )
    assert {loop.source_ref.rsplit("/", 1)[1] for loop in loops} == unsure
    labelled = sum(1 for name in unsure if name in TRUTH)
    assert labelled >= 1, unsure
    api("PATCH", "/parameters", json={"min_untrained_images": labelled})  # checks at once: none new yet
    wait_for("the second skipped check", lambda: len([r for r in runs() if r["outcome"] == "skipped"]) == 2)

    # 5. a reviewer labels them; labels go into TRAIN
    while (item := review.next_item(svc, "alice", project="logos")) is not None:
        name = item.loop.source_ref.rsplit("/", 1)[1]
        review.submit_answer(svc, item.loop, "alice", TRUTH.get(name, NONE_OF_THE_ABOVE))
    reviewed = api("GET", "/datasets/train/entries", params={"source": "human_review"})
    assert reviewed["total"] == labelled and {e["labels"][0] for e in reviewed["entries"]} <= set(
        TRUTH.values()
    )

    # 6. the next scheduled check trains v2 on them; it passes the gate and replaces v1
    clock.advance(minutes=5)
    v2_run = wait_for("v2 deployed", lambda: deployed(2)())
    assert v2_run["output"]["version"] == "v2" and v2_run["output"]["new_images"] == labelled
    assert v2_run["output"]["gate"]["passed"] and v2_run["output"]["gate"]["champion"] == "v1"
    assert v2_run["output"]["previous"] == "v1" and v2_run["output"]["stopped"] == "v1"
    assert api("GET", "/deployments")["serving"] == "v2"
    wait_for("v1 stopped", lambda: api("GET", "/versions/v1")["status"] == "STOPPED", timeout=60)
    assert api("GET", "/versions/v2")["status"] == "RUNNING"

    # the run history shows each step
    history = api("GET", f"/runs/{v2_run['id']}")
    assert [s["name"] for s in history["steps"]] == [
        "check",
        "train",
        "evaluate",
        "compare",
        "start",
        "switch",
        "stop_previous",
    ]
    assert all(s["status"] == "SUCCEEDED" and s["ended_at"] for s in history["steps"])
    outcomes = [r["outcome"] for r in reversed(runs())]
    assert outcomes == ["skipped", "deployed", "skipped", "deployed"], outcomes

    # the webhook got every event, signed, in order
    stored = api("GET", "/events", params={"limit": 1000})["events"]

    def delivered() -> bool:
        return len(receiver.received) >= len(stored)

    wait_for("the deliveries", delivered, timeout=60)
    got = receiver.events(secret)
    assert sorted(e["id"] for e in got) == [e["id"] for e in stored]
    types = [e["type"] for e in sorted(got, key=lambda e: e["id"])]
    for kind, count in (
        ("training_started", 2),
        ("training_completed", 2),
        ("version_deployed", 2),
        ("human_loop_created", len(unsure)),
        ("human_loop_completed", len(unsure)),
    ):
        assert types.count(kind) == count, (kind, types)
    assert "parameter_changed" in types and "images_added" in types
    deploys = [e["payload"] for e in got if e["type"] == "version_deployed"]
    assert sorted((d["version"], d["previous"]) for d in deploys) == [("v1", None), ("v2", "v1")]
