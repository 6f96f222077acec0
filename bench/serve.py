"""Serving benchmark: train a small model, serve it with `visionloop serve` (a separate process, on
loopback), start it with 1 and then 2 inference units, and measure DetectCustomLabels requests — by
default on the Rekognition-compatible endpoint (POST / with the image base64 in the JSON body, as boto3
sends it), or with --api native on the native detect endpoint (the image as the raw request body) — with
the default per-label thresholds, at 1 and 8 concurrent clients: images/s, p50 and p99 latency.

    .venv/bin/python bench/serve.py [--dataset grocery|grocery-later|logos|flickrlogos] [--api aws|native]
        [--model small|default|default-every-view|default-fp32] [--requests 400] [--units 1,2]
        [--clients 1,8] [--threads N] [--max-seconds S] [--data-dir DIR] [--json]

--model small (default): EfficientNet-Lite0 on one view, the small model the serving target is set for;
--model default: what `visionloop train` gives (EfficientNet-Lite0 quantized to INT8 on seven views of
each image: the whole image, its mirror, its four quarters and its centre; seven network passes);
--model default-fp32: the same on the fp32 Lite0; --model default-every-view: the default without its
cascade (every image through the seven views; the default answers from the first two alone where they
are sure enough, docs/training.md).
--dataset grocery (default when ../shared/datasets/grocery-produce exists): 5 labels x 16 photos of
grocery-produce (the first files by name) for training; the requests cycle through 64 other photos of
those labels, 348 px JPEGs of 15-40 KB. --dataset grocery-later: the same labels' first 16 `train_*`
photos for training and their 46 `val_*` photos, taken in a later session, as requests (a model is
surer of photos like its training photos). --dataset logos: the 10 aws-logos photos for training and the
10 inference_images as requests. --dataset flickrlogos: an object-detection project, FlickrLogos-27's
COCO file imported whole and trained as `visionloop train` trains it (--max-seconds: its budget; the
product splits off TEST itself), the requests cycling through 64 of its photos. Every client runs the
same bounded number of requests (--requests in total per measurement). The clients run in this process,
the server in another, on the same CPU.
Also printed: the CPU time the server and its unit processes spent per image (from /proc), which
depends far less than images/s on what else the machine runs: two idle cores can serve at most
2000 / that many images per second; in brackets, the units' share (decoding, the network, the head).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
GROCERY_LABELS = ("Apple", "Banana", "Carrots", "Lemon", "Tomato")
AWS_JSON = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class Request:
    path: str
    bodies: list[bytes]
    headers: dict[str, str]


def later_labels(root: Path, n: int) -> list[str]:
    """The ``n`` grocery-produce labels with photos of the later session (``val_*``) and the most
    ``train_*`` photos (ties by name)."""
    counts = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        names = [p.name for p in d.iterdir()]
        if any(x.startswith("val_") for x in names):
            counts[d.name] = sum(x.startswith("train_") for x in names)
    return sorted(sorted(counts, key=lambda k: (-counts[k], k))[:n])


def pick_images(
    dataset: str, n_labels: int = len(GROCERY_LABELS)
) -> tuple[dict[str, list[Path]], list[Path]]:
    """(training files per label, request images)."""
    if dataset == "flickrlogos":
        from PIL import Image

        def big_enough(p: Path) -> bool:  # DetectCustomLabels takes 64-4096 px a side
            with Image.open(p) as im:
                return min(im.size) >= 64

        photos = [p for p in sorted((SHARED / "flickrlogos27" / "images").glob("*.jpg")) if big_enough(p)]
        return {}, photos[:: max(1, len(photos) // 64)][:64]
    if dataset == "logos":
        root = SHARED / "aws-logos"
        train = {lab: sorted((root / lab).iterdir()) for lab in ("amazon_logo", "aws_logo")}
        return train, sorted((root / "inference_images").iterdir())
    root = SHARED / "grocery-produce"
    train = {}
    requests: list[Path] = []
    by_label: dict[str, list[Path]] = {}
    labels = GROCERY_LABELS if n_labels == len(GROCERY_LABELS) else later_labels(root, n_labels)
    for label in labels:
        files = sorted(p for p in (root / label).iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        if dataset == "grocery-later":  # requests from the later session (val_*), as new photos come
            train[label] = [p for p in files if p.name.startswith("train_")][:16]
            by_label[label] = [p for p in files if p.name.startswith("val_")]
        else:
            train[label] = files[:16]
            requests += files[16:29]
    if dataset == "grocery-later":  # every label's later photos, in turn
        requests = [p for group in itertools.zip_longest(*by_label.values()) for p in group if p]
    return train, requests[:64]


MODELS = {
    # the "small model": EfficientNet-Lite0, one view (the ~6 ms network of models.md)
    "small": {
        "backbone": "efficientnet-lite0",
        "hyperparams": {"views": ["full"], "predict_views": ["full"]},
    },
    # what `visionloop train` gives by default: Lite0 INT8 on seven views (whole, mirror, four quarters,
    # centre)
    "default": {},
    # the same without the cascade: every image through all seven views
    "default-every-view": {"hyperparams": {"cascade": False}},
    # the same seven views on the fp32 Lite0 (the default before the INT8 graph: twice the CPU a pass)
    "default-fp32": {"backbone": "efficientnet-lite0"},
}


def train(
    data_dir: Path,
    files: dict[str, list[Path]],
    model: str,
    max_seconds: float | None,
    values: dict[str, str] | None = None,  # more settings (bench/batch.py: a PostgreSQL database, S3)
) -> float:
    from visionloop.bootstrap import build_engine, build_services
    from visionloop.core.datasets import import_coco, import_folder
    from visionloop.core.projects import create_project
    from visionloop.core.training import TrainingOptions, request_training
    from visionloop.settings import load_settings
    from visionloop.workflows.worker import run_job

    settings = load_settings({"data_dir": str(data_dir), **(values or {})}, environ={})
    svc = build_services(settings)
    if "bench" in {p.name for p in svc.repo.list_projects()}:  # a --data-dir trained before: reuse it
        version = svc.repo.get_version(svc.repo.get_project("bench").id, "v1")
        svc.repo.close()
        print(f"reusing the bench project of {data_dir} (v1: {version.status.value})")
        return version.training_seconds or 0.0
    if not files:  # flickrlogos: a detection project from the COCO file
        create_project(svc, "bench", "object_detection")
        import_coco(svc, "bench", str(SHARED / "flickrlogos27" / "annotations_coco.json"))
        options = TrainingOptions(max_seconds=max_seconds)
    else:
        folder = data_dir.parent / "labelled"
        for label, paths in files.items():
            (folder / label).mkdir(parents=True, exist_ok=True)
            for p in paths:
                (folder / label / p.name).write_bytes(p.read_bytes())
        create_project(svc, "bench")
        import_folder(svc, "bench", str(folder))
        options = TrainingOptions(max_seconds=max_seconds, **MODELS[model])  # type: ignore[arg-type]
    started = time.perf_counter()
    request_training(svc, "bench", options)
    job = svc.repo.claim_job(svc.clock.now())
    assert job is not None
    run_job(svc, build_engine(settings), job, settings.region, settings.account_id)
    version = svc.repo.get_version(svc.repo.get_project("bench").id, "v1")
    svc.repo.close()
    if version.status.value != "TRAINING_COMPLETED":
        sys.exit(f"training failed: {version.status_message}")
    ev: dict[str, Any] = dict(version.evaluation or {})
    if ev.get("task") == "object_detection":
        print(
            f"self-reported on the product's own TEST split: mAP@0.5 {ev['map50']:.3f}, "
            f"macro F1 {version.f1:.3f}"
        )
    return time.perf_counter() - started


class Server:
    def __init__(self, data_dir: Path, threads: int) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        env = {
            **os.environ,
            "VISIONLOOP_WORKERS": "0",
            "VISIONLOOP_LOG_LEVEL": "WARNING",
            "VISIONLOOP_INFERENCE_THREADS": str(threads),
        }
        cmd = [
            sys.executable,
            "-m",
            "visionloop",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
        ]
        self.log = data_dir.parent / "server.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not self._healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the server did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            return self.call("GET", "/healthz")[0] == 200
        except OSError:
            return False

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, path, data, {"content-type": "application/json"} if data else {})
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"null")
        finally:
            conn.close()

    def aws(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """One unsigned call to the Rekognition-compatible endpoint (the server has no access keys)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            headers = {"content-type": AWS_JSON, "x-amz-target": f"RekognitionService.{operation}"}
            conn.request("POST", "/", json.dumps(body).encode(), headers)
            r = conn.getresponse()
            data = json.loads(r.read() or b"null")
            if r.status != 200:
                sys.exit(f"{operation} failed: {r.status} {data}")
            return dict(data)
        finally:
            conn.close()

    def wait_status(self, path: str, status: str) -> dict[str, Any]:
        deadline = time.monotonic() + 300
        while True:
            code, state = self.call("GET", f"{path}/serving")
            if state["status"] == status:
                return dict(state)
            if state["status"] == "FAILED" or time.monotonic() > deadline:
                sys.exit(f"the model did not become {status}: {state}")
            time.sleep(0.1)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def tree_cpu_seconds(root: int) -> tuple[float, float]:
    """CPU seconds (user + system) used so far by ``root`` itself and by its live descendants (the
    inference units), from Linux /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / tick
    descendants, stack = 0.0, [child for child, parent in parents.items() if parent == root]
    while stack:
        pid = stack.pop()
        descendants += times.get(pid, 0.0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return times.get(root, 0.0), descendants


def measure(port: int, request: Request, clients: int, total: int) -> dict[str, float]:
    """``clients`` threads, each with its own keep-alive connection, ``total // clients`` requests each."""
    per_client = max(1, total // clients)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        barrier.wait()
        for i in range(per_client):
            body = request.bodies[(k * per_client + i) % len(request.bodies)]
            t = time.perf_counter()
            conn.request("POST", request.path, body, request.headers)
            r = conn.getresponse()
            answer = r.read()
            mine.append(time.perf_counter() - t)
            if r.status != 200:
                with lock:
                    errors.append(f"{r.status} {answer[:200]!r}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    if errors:
        sys.exit(f"{len(errors)} requests failed, e.g. {errors[0]}")
    latencies.sort()
    return {
        "requests": len(latencies),
        "images_per_s": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = "grocery" if (SHARED / "grocery-produce").is_dir() else "logos"
    parser.add_argument(
        "--dataset", choices=("grocery", "grocery-later", "logos", "flickrlogos"), default=default
    )
    parser.add_argument(
        "--labels",
        type=int,
        default=len(GROCERY_LABELS),
        help="grocery-later: train on this many labels (those with the most photos) instead of the five",
    )
    parser.add_argument("--api", choices=("aws", "native"), default="aws")
    parser.add_argument("--model", choices=tuple(MODELS), default="small")
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement")
    parser.add_argument("--units", default="1,2")
    parser.add_argument("--clients", default="1,8")
    parser.add_argument(
        "--threads", type=int, default=0, help="inference_threads of the server (0: one per core)"
    )
    parser.add_argument("--max-seconds", type=float, help="training budget (default: the product's)")
    parser.add_argument(
        "--data-dir",
        help="where to train and serve (default: a temporary folder; one trained before is reused)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    train_files, request_files = pick_images(args.dataset, args.labels)
    images = [p.read_bytes() for p in request_files]
    with tempfile.TemporaryDirectory(prefix="vl-bench-serve-") as tmp:
        data = Path(args.data_dir) if args.data_dir else Path(tmp) / "var"
        seconds = train(data, train_files, args.model, args.max_seconds)
        sizes = sorted(len(b) for b in images)
        print(
            f"dataset {args.dataset}, {args.model} model: "
            f"trained on {sum(map(len, train_files.values())) or 'the product split of the'} images "
            f"in {seconds:.1f} s; "
            f"{len(images)} request images, {sizes[0] // 1000}-{sizes[-1] // 1000} KB; {args.api} API; "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} before the server started",
            flush=True,
        )
        server = Server(data, args.threads)
        version = "/api/v1/projects/bench/versions/v1"
        if args.api == "aws":
            [project] = server.aws("DescribeProjects", {"ProjectNames": ["bench"]})["ProjectDescriptions"]
            [described] = server.aws(
                "DescribeProjectVersions", {"ProjectArn": project["ProjectArn"], "VersionNames": ["v1"]}
            )["ProjectVersionDescriptions"]
            arn = described["ProjectVersionArn"]
            bodies = [
                json.dumps(
                    {"ProjectVersionArn": arn, "Image": {"Bytes": base64.b64encode(b).decode()}}
                ).encode()
                for b in images
            ]
            headers = {"content-type": AWS_JSON, "x-amz-target": "RekognitionService.DetectCustomLabels"}
            request = Request("/", bodies, headers)
        else:
            request = Request(f"{version}/detect", images, {"content-type": "image/jpeg"})
        results = []
        try:
            if server.call("GET", f"{version}/serving")[1]["status"] in ("STARTING", "RUNNING"):
                server.wait_status(version, "RUNNING")  # a reused data dir: the server restarted it
                server.call("POST", f"{version}/stop")
                server.wait_status(version, "STOPPED")
            for units in (int(u) for u in args.units.split(",")):
                code, state = server.call("POST", f"{version}/start", {"min_inference_units": units})
                assert code == 202, state
                state = server.wait_status(version, "RUNNING")
                measure(server.port, request, 2, 20)  # warm-up
                for clients in (int(c) for c in args.clients.split(",")):
                    before = tree_cpu_seconds(server.proc.pid)
                    r = measure(server.port, request, clients, args.requests)
                    after = tree_cpu_seconds(server.proc.pid)
                    spent = [1000 * (a - b) / r["requests"] for a, b in zip(after, before, strict=True)]
                    own, units_cpu = spent
                    r["server_cpu_ms_per_image"] = own + units_cpu
                    r["units_cpu_ms_per_image"] = units_cpu
                    r.update(units=units, clients=clients, start_seconds=state["load_seconds"])
                    results.append(r)
                    print(
                        f"units {units}  clients {clients}:  {r['images_per_s']:6.1f} images/s   "
                        f"p50 {r['p50_ms']:6.1f} ms   p99 {r['p99_ms']:6.1f} ms   "
                        f"server+units CPU {r['server_cpu_ms_per_image']:5.1f} ms/image "
                        f"(units {r['units_cpu_ms_per_image']:4.1f})   "
                        f"({r['requests']} requests; start took {state['load_seconds']:.2f} s)",
                        flush=True,
                    )
                server.call("POST", f"{version}/stop")
                server.wait_status(version, "STOPPED")
        finally:
            server.close()
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
