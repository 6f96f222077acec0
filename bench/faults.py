"""Fault script: SIGKILL at random points, then check that nothing is stuck and nothing complete is lost.

    .venv/bin/python bench/faults.py [--rounds 5] [--seed 0] [--images 300] [--limit 240] [--keep]

Starts a real `visionloop serve` (one worker process, the real engine) on a temporary data folder
filled with generated images, and runs rounds. Each round picks a scenario (every scenario once per
cycle, in a seeded order) and kills with SIGKILL at a seeded random moment:

    server@import     the server, during CreateDataset from a manifest of --images lines
    server@training   the server, during a training job
    worker@training   the training worker, during a training job
    unit@serving      an inference unit process, during DetectCustomLabels requests
    server@serving    the server, during DetectCustomLabels requests

then restarts what is needed (the server; the server itself replaces a dead worker or unit) and checks,
within --limit seconds: every job ended (SUCCEEDED or FAILED with a message), no version is left
TRAINING_IN_PROGRESS, no dataset CREATE_IN_PROGRESS; a dataset interrupted is CREATE_FAILED and can be
created again; detection works again after a unit or server was killed; /healthz is "ok" again; and
everything that was complete before the kill (datasets and their entry counts, trained versions,
succeeded jobs) is still there. Prints a table of rounds and the counts; exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config
from PIL import Image, ImageDraw, ImageFilter

from visionloop.bootstrap import build_services
from visionloop.core import datasets
from visionloop.core.entities import TaskType
from visionloop.core.projects import create_project
from visionloop.settings import load_settings

P = "/api/v1/projects/faults"  # the native project the trainings and detections use
BUCKET = "faults"
COLOURS = {"warm": (200, 60, 40), "cool": (40, 70, 200)}
TERMINAL_JOB = ("SUCCEEDED", "FAILED")


class Failed(Exception):
    """A check failed: the round's outcome says which."""


# --- data ----------------------------------------------------------------------------------------------


def picture(label: str, seed: int) -> bytes:
    """A 128x96 JPEG with the label's tint and random shapes (distinct for every seed)."""
    rng = random.Random(seed)
    base = COLOURS[label]
    img = Image.new("RGB", (128, 96), tuple(min(255, c + rng.randrange(-30, 30)) for c in base))
    draw = ImageDraw.Draw(img)
    for _ in range(25):
        x, y = rng.randrange(128), rng.randrange(96)
        colour = tuple(min(255, max(0, c + rng.randrange(-90, 90))) for c in base)
        draw.ellipse((x, y, x + rng.randrange(6, 30), y + rng.randrange(6, 30)), fill=colour)
    buf = io.BytesIO()
    img.filter(ImageFilter.GaussianBlur(1)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def prepare(data: Path, images: int) -> None:
    """A bucket with ``images`` pictures and their Ground Truth manifest; the native project with 16."""
    svc = build_services(load_settings({"data_dir": str(data)}, environ={}))
    try:
        svc.buckets.create_bucket(BUCKET)
        lines = []
        for i in range(images):
            label = "warm" if i % 2 else "cool"
            svc.buckets.put(BUCKET, f"img/{i}.jpg", picture(label, i))
            meta = {
                "class-name": label,
                "confidence": 1,
                "type": "groundtruth/image-classification",
                "human-annotated": "yes",
                "creation-date": "2026-01-01T00:00:00",
            }
            lines.append(json.dumps({"source-ref": f"s3://{BUCKET}/img/{i}.jpg", "c": 0, "c-metadata": meta}))
        svc.buckets.put(BUCKET, "train.manifest", ("\n".join(lines) + "\n").encode())
        create_project(svc, "faults", TaskType.CLASSIFICATION)
        folder = data.parent / "labelled"
        for label in COLOURS:
            (folder / label).mkdir(parents=True, exist_ok=True)
            for i in range(8):
                (folder / label / f"{i}.jpg").write_bytes(picture(label, 10_000 + i * 2 + (label == "warm")))
        datasets.import_folder(svc, "faults", str(folder))
    finally:
        svc.repo.close()


# --- the server and its processes ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            if found := check():
                return found
        if time.monotonic() > deadline:
            raise Failed(f"timed out waiting for {what}")
        time.sleep(0.1)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


class Server:
    """`visionloop serve` in a subprocess with one worker process."""

    def __init__(self, data: Path, log: Path) -> None:
        self.data, self.log = data, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 120) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("VISIONLOOP_")}
        env |= {"VISIONLOOP_WORKERS": "1", "VISIONLOOP_INFERENCE_THREADS": "1"}
        cmd = [sys.executable, "-m", "visionloop", "serve", "--port", str(port), "--data-dir", str(self.data)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        wait_for("the server to start", lambda: self.health()["status"] == "ok", timeout)

    def health(self) -> dict[str, Any]:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise Failed(f"the server exited ({self.proc.returncode}); see {self.log}")
        doc: dict[str, Any] = httpx.get(f"{self.url}/healthz", timeout=5).json()
        return doc

    def descendants(self) -> list[int]:
        assert self.proc is not None
        tree, found, todo = _children(), [], [self.proc.pid]
        while todo:
            kids = tree.get(todo.pop(), [])
            found += kids
            todo += kids
        return found

    def worker_pids(self) -> list[int]:
        return [p for p in self.descendants() if b"--parent-pid" in _cmdline(p)]

    def unit_pids(self) -> list[int]:
        """Inference units: the processes a forkserver (or spawn) started for the server."""
        assert self.proc is not None
        tree = _children()
        units = []
        for child in tree.get(self.proc.pid, []):
            cmd = _cmdline(child)
            if b"forkserver" in cmd:
                units += tree.get(child, [])
            elif b"spawn_main" in cmd and b"resource_tracker" not in cmd:
                units.append(child)
        return units

    def kill(self) -> None:
        """SIGKILL the server; then its orphans (they stop by themselves; this makes it immediate)."""
        assert self.proc is not None
        orphans = self.descendants()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()

    def get(self, path: str, **kw: Any) -> Any:
        r = httpx.get(f"{self.url}{path}", timeout=60, **kw)
        if r.status_code != 200:
            raise Failed(f"GET {path}: {r.status_code} {r.text[:200]}")
        return r.json()

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        r = httpx.post(f"{self.url}{path}", json=body, timeout=120, **kw)
        if r.status_code >= 300:
            raise Failed(f"POST {path}: {r.status_code} {r.text[:200]}")
        return r.json()

    def rekognition(self) -> Any:
        config = Config(retries={"mode": "standard", "max_attempts": 1}, read_timeout=600)
        return boto3.client(
            "rekognition",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="faults",
            aws_secret_access_key="faults",
            config=config,
        )


# --- what must survive ---------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """What is complete: the entries of each project's complete datasets (CREATE/UPDATE_COMPLETE),
    trained versions, succeeded jobs; and what is not settled yet (jobs queued or running, versions
    training, datasets being created)."""

    datasets: dict[str, int] = field(default_factory=dict)  # project name: entries
    versions: dict[str, str] = field(default_factory=dict)
    jobs: set[int] = field(default_factory=set)
    unsettled: list[str] = field(default_factory=list)


def snapshot(server: Server) -> Snapshot:
    snap = Snapshot()
    rek = server.rekognition()
    for project in rek.describe_projects()["ProjectDescriptions"]:
        for d in project.get("Datasets", []):
            if d["Status"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
                desc = rek.describe_dataset(DatasetArn=d["DatasetArn"])["DatasetDescription"]
                name = project["ProjectArn"].split("/")[1]  # a training's split moves entries to TEST
                snap.datasets[name] = snap.datasets.get(name, 0) + desc["DatasetStats"]["TotalEntries"]
            elif d["Status"].endswith("IN_PROGRESS"):
                snap.unsettled.append(f"dataset {d['DatasetArn']} {d['Status']}")
    for v in server.get(f"{P}/versions")["versions"]:
        if v["status"] == "TRAINING_IN_PROGRESS":
            snap.unsettled.append(f"version {v['name']} TRAINING_IN_PROGRESS")
        elif v["status"] != "TRAINING_FAILED":
            snap.versions[v["name"]] = v["status"]
    for job in server.get("/api/v1/jobs")["jobs"]:
        if job["status"] == "SUCCEEDED":
            snap.jobs.add(job["id"])
        elif job["status"] not in TERMINAL_JOB:
            snap.unsettled.append(f"job {job['id']} {job['status']}")
    return snap


def check_kept(before: Snapshot, after: Snapshot) -> None:
    lost = [
        f"project {p}: {n} entries in complete datasets, now {after.datasets.get(p, 0)}"
        for p, n in before.datasets.items()
        if after.datasets.get(p, 0) < n
    ]
    lost += [f"version {v}" for v in before.versions if v not in after.versions]
    lost += [f"job {j}" for j in sorted(before.jobs - after.jobs)]
    if lost:
        raise Failed("lost what was complete: " + ", ".join(lost))


def settle(server: Server, limit: float) -> Snapshot:
    """Wait until nothing is left in progress and /healthz is ok; the snapshot then."""
    found: list[Snapshot] = []

    def settled() -> bool:
        snap = snapshot(server)
        found[:] = [snap]
        return not snap.unsettled and server.health()["status"] == "ok"

    try:
        wait_for("every job, version and dataset to settle", settled, limit)
    except Failed:
        left = found[0].unsettled if found else []
        raise Failed(f"not settled within {limit:g} s: {', '.join(left) or '/healthz not ok'}") from None
    return found[0]


# --- scenarios -----------------------------------------------------------------------------------------


@dataclass
class Round:
    number: int
    scenario: str
    delay: float
    killed: str = ""
    outcome: str = ""
    recovered: float | None = None
    ok: bool = False


class Faults:
    def __init__(self, data: Path, rng: random.Random, images: int, limit: float) -> None:
        self.server = Server(data, data.parent / "server.log")
        self.rng, self.images, self.limit = rng, images, limit
        self.counts: Counter[str] = Counter()
        self.imports = 0

    # helpers

    def train(self) -> dict[str, Any]:
        job: dict[str, Any] = self.server.post(f"{P}/versions", {})["job"]
        wait_for("the training to start", lambda: self.job(job["id"])["status"] != "QUEUED", self.limit)
        return job

    def job(self, job_id: int) -> dict[str, Any]:
        job: dict[str, Any] = self.server.get(f"/api/v1/jobs/{job_id}")
        return job

    def ensure_serving(self) -> str:
        """A trained version RUNNING with one unit (trains one first when none is)."""
        versions = self.server.get(f"{P}/versions")["versions"]
        trained = [v for v in versions if v["status"] not in ("TRAINING_FAILED", "TRAINING_IN_PROGRESS")]
        if not trained:
            job = self.train()
            done = wait_for(
                "a training", lambda: (j := self.job(job["id"]))["status"] in TERMINAL_JOB and j, 600
            )
            if done["status"] != "SUCCEEDED":
                raise Failed(f"the training for serving failed: {done['message']}")
            trained = self.server.get(f"{P}/versions")["versions"][-1:]
        name: str = trained[-1]["name"]
        if trained[-1]["status"] != "RUNNING":
            self.server.post(f"{P}/versions/{name}/start", {"min_inference_units": 1})
        wait_for(
            "the version to run", lambda: self.server.get(f"{P}/versions/{name}")["status"] == "RUNNING", 180
        )
        return name

    def detect(self, version: str, seed: int) -> bool:
        image = picture("warm" if seed % 2 else "cool", 50_000 + seed)
        try:
            r = httpx.post(
                f"{self.server.url}{P}/versions/{version}/detect",
                content=image,
                timeout=30,
                headers={"content-type": "image/jpeg"},
            )
        except httpx.TransportError:
            return False
        return r.status_code == 200 and bool(r.json()["labels"] is not None)

    def restart(self) -> None:
        self.server.kill()
        self.server.start()

    # scenarios: each kills, recovers, and returns (what was killed, outcome)

    def server_import(self, r: Round) -> str:
        rek = self.server.rekognition()
        project = rek.create_project(ProjectName=f"import-{r.number}")["ProjectArn"]
        source = {"GroundTruthManifest": {"S3Object": {"Bucket": BUCKET, "Name": "train.manifest"}}}
        returned: list[str] = []

        def create() -> None:
            with contextlib.suppress(Exception):  # the server is killed under it
                returned.append(
                    rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)[
                        "DatasetArn"
                    ]
                )

        caller = threading.Thread(target=create, daemon=True)
        caller.start()
        time.sleep(r.delay)
        r.killed = "server, CreateDataset " + ("returned" if returned else "running")
        self.restart()
        caller.join(30)
        settle(self.server, self.limit)
        rek = self.server.rekognition()
        name = project.split("/")[1]
        (desc,) = rek.describe_projects(ProjectNames=[name])["ProjectDescriptions"]
        status = desc["Datasets"][0]["Status"] if desc["Datasets"] else "none"
        if returned and status != "CREATE_COMPLETE":
            raise Failed(f"CreateDataset answered, and then the dataset is {status}")
        if not returned and status not in ("CREATE_FAILED", "CREATE_COMPLETE", "none"):
            raise Failed(f"interrupted dataset is {status}")
        outcome = f"dataset {status}"
        if status != "CREATE_COMPLETE":  # created again, it must be complete
            arn = rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)[
                "DatasetArn"
            ]
            status = rek.describe_dataset(DatasetArn=arn)["DatasetDescription"]["Status"]
            outcome += f", created again: {status}"
        arn = rek.describe_projects(ProjectNames=[name])["ProjectDescriptions"][0]["Datasets"][0][
            "DatasetArn"
        ]
        total = rek.describe_dataset(DatasetArn=arn)["DatasetDescription"]["DatasetStats"]["TotalEntries"]
        if status != "CREATE_COMPLETE" or total != self.images:
            raise Failed(f"{outcome}; {total} of {self.images} entries")
        self.counts[f"imports: {outcome}"] += 1
        return f"{outcome}, {total} entries"

    def _training(self, r: Round, kill: Callable[[], None], message: str) -> str:
        job = self.train()
        time.sleep(r.delay)
        state = self.job(job["id"])["status"]
        r.killed += f", job {state}"
        kill()
        snap = settle(self.server, self.limit)
        ended = self.job(job["id"])
        self.counts[f"jobs {ended['status']}"] += 1
        if ended["status"] == "FAILED" and not ended["message"].startswith(message):
            raise Failed(f"job FAILED with an unexpected message: {ended['message']!r}")
        version = self.server.get(f"{P}/versions")["versions"][-1]
        if ended["status"] == "SUCCEEDED" and version["name"] not in snap.versions:
            raise Failed(f"job SUCCEEDED but version {version['name']} is {version['status']}")
        message = ended["message"].removeprefix("interrupted: ")[:48] or "ok"
        return f"job {ended['status']} ({message}), {version['name']} {version['status']}"

    def server_training(self, r: Round) -> str:
        r.killed = "server"
        return self._training(r, self.restart, "interrupted:")

    def worker_training(self, r: Round) -> str:
        def kill() -> None:
            pids = self.server.worker_pids()
            if not pids:
                raise Failed("no worker process to kill")
            os.kill(pids[0], signal.SIGKILL)
            wait_for("a new worker", lambda: [p for p in self.server.worker_pids() if p != pids[0]], 60)

        r.killed = "worker"
        outcome = self._training(r, kill, "interrupted: the worker running this job died")
        self.counts["workers replaced"] += 1
        return outcome

    def _serving(self, r: Round, kill: Callable[[], None]) -> str:
        version = self.ensure_serving()
        stop, results = threading.Event(), Counter[bool]()

        def load() -> None:
            i = 0
            while not stop.is_set():
                results[self.detect(version, i)] += 1
                i += 1

        clients = threading.Thread(target=load, daemon=True)
        clients.start()
        time.sleep(r.delay)
        kill()
        killed_at = time.monotonic()
        wait_for("a detection to succeed again", lambda: self.detect(version, 999), self.limit)
        back = time.monotonic() - killed_at
        stop.set()
        clients.join(60)
        settle(self.server, self.limit)
        status = self.server.get(f"{P}/versions/{version}")["status"]
        if status != "RUNNING":
            raise Failed(f"version {version} is {status} after the kill")
        self.counts["detections ok"] += results[True]
        self.counts["detections failed"] += results[False]
        return f"{results[True]} ok / {results[False]} failed; detecting again after {back:.1f} s"

    def unit_serving(self, r: Round) -> str:
        def kill() -> None:
            pids = self.server.unit_pids()
            if not pids:
                raise Failed("no inference unit process to kill")
            os.kill(pids[0], signal.SIGKILL)

        r.killed = "inference unit"
        return self._serving(r, kill)

    def server_serving(self, r: Round) -> str:
        r.killed = "server"
        return self._serving(r, self.restart)


SCENARIOS: dict[str, Callable[[Faults, Round], str]] = {
    "server@import": Faults.server_import,
    "server@training": Faults.server_training,
    "worker@training": Faults.worker_training,
    "unit@serving": Faults.unit_serving,
    "server@serving": Faults.server_serving,
}
DELAYS = {  # seconds after the start of the work, drawn uniformly
    "server@import": (0.1, 2.5),
    "server@training": (0.0, 8.0),
    "worker@training": (0.0, 8.0),
    "unit@serving": (0.3, 3.0),
    "server@serving": (0.3, 3.0),
}


def run(faults: Faults, rounds: int) -> list[Round]:
    names = list(SCENARIOS)
    order: list[str] = []
    while len(order) < rounds:
        cycle = names[:]
        faults.rng.shuffle(cycle)
        order += cycle
    done = []
    for number, name in enumerate(order[:rounds], 1):
        r = Round(number, name, round(faults.rng.uniform(*DELAYS[name]), 2))
        started = time.monotonic()
        try:
            before = snapshot(faults.server)
            r.outcome = SCENARIOS[name](faults, r)
            check_kept(before, settle(faults.server, faults.limit))
            r.ok = True
        except Failed as e:
            r.outcome = f"FAILED CHECK: {e}"
        except Exception as e:  # the script's own trouble is reported, and the next round runs
            r.outcome = f"ERROR: {type(e).__name__}: {e}"
        r.recovered = time.monotonic() - started
        print(f"  round {number}: {name} -> {'ok' if r.ok else 'FAIL'}: {r.outcome}", flush=True)
        done.append(r)
        if not r.ok:  # a broken server is started again, so that the next round starts clean
            with contextlib.suppress(Exception):
                faults.restart()
    return done


def report(rounds: list[Round], counts: Counter[str]) -> None:
    print()
    print(f"{'#':>3}  {'scenario':<16} {'delay':>6}  {'killed':<32} {'s':>6}  {'check':<5} outcome")
    for r in rounds:
        took = f"{r.recovered:.1f}" if r.recovered is not None else "-"
        check = "ok" if r.ok else "FAIL"
        head = f"{r.number:>3}  {r.scenario:<16} {r.delay:>6.2f}  {r.killed:<32} {took:>6}"
        print(f"{head}  {check:<5} {r.outcome}")
    print()
    by = Counter(r.scenario for r in rounds)
    ok = Counter(r.scenario for r in rounds if r.ok)
    for name in SCENARIOS:
        if by[name]:
            print(f"{name:<16} {ok[name]}/{by[name]} ok")
    for key in sorted(counts):
        print(f"{key:<40} {counts[key]}")
    passed = sum(r.ok for r in rounds)
    print(f"rounds: {len(rounds)}, checks passed: {passed}, failed: {len(rounds) - passed}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="rounds to run (default: each scenario once)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=300, help="lines of the manifest CreateDataset imports")
    ap.add_argument("--limit", type=float, default=240, help="seconds to settle after a kill")
    ap.add_argument("--keep", action="store_true", help="keep the data folder (its path is printed)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="visionloop-faults-"))
    data = tmp / "var"
    print(f"data in {data}; server log {tmp / 'server.log'}; seed {args.seed}", flush=True)
    prepare(data, args.images)
    faults = Faults(data, random.Random(args.seed), args.images, args.limit)
    faults.server.start()
    try:
        rounds = run(faults, args.rounds)
    finally:
        faults.server.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    report(rounds, faults.counts)
    sys.exit(0 if all(r.ok for r in rounds) else 1)


if __name__ == "__main__":
    main()
