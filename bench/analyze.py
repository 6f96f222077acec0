"""Pretrained analysis benchmark: each analyser (labels, text, moderation) on real photos, called directly
in this process ("raw model") and through the HTTP API of a `visionloop serve` process on loopback — the
native endpoint (POST /api/v1/analyze/<kind>, the image as the raw body) and the Rekognition-compatible
one (DetectLabels / DetectText / DetectModerationLabels, the image base64 in the JSON body). One client,
one request at a time, so the figures are latencies: p50 and p90 per image, and images/s.

    .venv/bin/python bench/analyze.py [--kinds labels,text,moderation] [--images 30] [--repeat 3]
        [--threads N] [--json]

Images: labels and moderation take --images grocery-produce photos (348 px JPEGs; every class in turn,
the first files by name), text the photos of ../shared/datasets/ocr (signs, composites) of ≥ 80 px a side.
Each image is analysed once untimed first (warm-up: the first calls load and tune the models), then
--repeat times on each path, the paths back to back per image. p50/p90 and images/s are over every timed
call. The API overhead is the median over images of (fastest API call - fastest raw call) for the same
image: what HTTP, JSON and the hand-over to the analysis threads add to the model, with the least noise
from whatever else the machine runs.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
OPERATIONS = {"labels": "DetectLabels", "text": "DetectText", "moderation": "DetectModerationLabels"}


def pick_images(kind: str, count: int) -> list[Path]:
    if kind == "text":  # less any picture under Rekognition's 80 px a side, which the API refuses
        from PIL import Image

        files = sorted(
            p for p in (SHARED / "ocr").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")
        )
        return [p for p in files if min(Image.open(p).size) >= 80]
    root = SHARED / "grocery-produce"
    classes = [sorted(c.glob("*.jpg")) for c in sorted(p for p in root.iterdir() if p.is_dir())]
    out: list[Path] = []
    for i in range(max(len(c) for c in classes)):
        out.extend(c[i] for c in classes if i < len(c))
        if len(out) >= count:
            break
    return out[:count]


class Server:
    """`visionloop serve` in a separate process on a free loopback port, with one kept-alive connection."""

    def __init__(self, data_dir: Path, threads: int | None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        env = {**os.environ, "VISIONLOOP_WORKERS": "0", "VISIONLOOP_LOG_LEVEL": "WARNING"}
        if threads:
            env["VISIONLOOP_INFERENCE_THREADS"] = str(threads)
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
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.request("GET", "/healthz", None, {})[0] == 200:
                    break
            except OSError:
                self.conn.close()
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the server did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
        try:
            self.conn.request(method, path, body, headers)
            r = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.conn.close()  # the server closed the idle kept-alive connection: open another
            self.conn.request(method, path, body, headers)
            r = self.conn.getresponse()
        return r.status, json.loads(r.read() or b"null")

    def native(self, kind: str, image: bytes, content_type: str) -> Any:
        status, doc = self.request("POST", f"/api/v1/analyze/{kind}", image, {"content-type": content_type})
        if status != 200:
            sys.exit(f"analyze/{kind} failed: {status} {doc}")
        return doc

    def aws(self, kind: str, image: bytes) -> Any:
        body = json.dumps({"Image": {"Bytes": base64.b64encode(image).decode()}}).encode()
        headers = {
            "content-type": "application/x-amz-json-1.1",
            "x-amz-target": f"RekognitionService.{OPERATIONS[kind]}",
        }
        status, doc = self.request("POST", "/", body, headers)
        if status != 200:
            sys.exit(f"{OPERATIONS[kind]} failed: {status} {doc}")
        return doc

    def close(self) -> None:
        self.conn.close()
        self.proc.terminate()
        self.proc.wait(60)


Item = tuple[bytes, str]  # an image and its content type


def timed(
    items: list[Item], calls: dict[str, Callable[[Item], Any]], repeat: int
) -> dict[str, list[list[float]]]:
    """Seconds per path, image and repetition, after one untimed pass. The paths take each image in turn,
    back to back, so that a burst of load elsewhere on the machine hits them alike."""
    for item in items:
        for call in calls.values():
            call(item)
    out: dict[str, list[list[float]]] = {name: [[] for _ in items] for name in calls}
    for _ in range(repeat):
        for i, item in enumerate(items):
            for name, call in calls.items():
                start = time.perf_counter()
                call(item)
                out[name][i].append(time.perf_counter() - start)
    return out


def overhead_ms(api: list[list[float]], raw: list[list[float]]) -> float:
    """Median over images of (fastest API call - fastest raw call): the least noisy paired difference."""
    return round(1000 * statistics.median(min(a) - min(r) for a, r in zip(api, raw, strict=True)), 1)


def summary(per_image: list[list[float]]) -> dict[str, float]:
    ordered = sorted(t for times in per_image for t in times)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p90_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1),
        "images_per_s": round(len(ordered) / sum(ordered), 1),
    }


def measure(kind: str, server: Server, count: int, threads: int | None, repeat: int) -> dict[str, Any]:
    from visionloop.analysis.registry import create_analyser

    paths = pick_images(kind, count)
    items = [(p.read_bytes(), "image/png" if p.suffix.lower() == ".png" else "image/jpeg") for p in paths]
    analyser = create_analyser(kind, threads)
    t0 = time.perf_counter()
    analyser.warm_up()
    load = time.perf_counter() - t0
    t = timed(
        items,
        {
            "raw": lambda item: analyser.detect(item[0]),
            "native": lambda item: server.native(kind, *item),
            "aws": lambda item: server.aws(kind, item[0]),
        },
        repeat,
    )
    return {
        "images": len(items),
        "repeat": repeat,
        "load_s": round(load, 2),
        "raw": summary(t["raw"]),
        "native_api": summary(t["native"]),
        "aws_api": summary(t["aws"]),
        "native_overhead_ms": overhead_ms(t["native"], t["raw"]),
        "aws_overhead_ms": overhead_ms(t["aws"], t["raw"]),
        "version": analyser.version,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kinds", default="labels,text,moderation")
    parser.add_argument("--images", type=int, default=30, help="photos for labels and moderation")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the images")
    parser.add_argument("--threads", type=int, help="threads per model (default: every core)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} is absent: the shared datasets are needed")
    kinds = [k for k in args.kinds.split(",") if k]
    results: dict[str, Any] = {"cpus": os.cpu_count(), "threads": args.threads or os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "var", args.threads)
        try:
            for kind in kinds:
                results[kind] = measure(kind, server, args.images, args.threads, args.repeat)
        finally:
            server.close()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{results['cpus']} CPUs, {results['threads']} threads per model; one request at a time")
    print(
        f"{'analyser':<11} {'images':>6}  {'path':<10} {'p50 ms':>8} {'p90 ms':>8} {'img/s':>7}  overhead p50"
    )
    for kind in kinds:
        r = results[kind]
        for path, key, extra in (
            ("raw model", "raw", f"(load {r['load_s']} s)"),
            ("native API", "native_api", f"+{r['native_overhead_ms']} ms"),
            ("AWS API", "aws_api", f"+{r['aws_overhead_ms']} ms"),
        ):
            s = r[key]
            figures = f"{s['p50_ms']:>8} {s['p90_ms']:>8} {s['images_per_s']:>7}"
            print(f"{kind:<11} {r['images']:>6}  {path:<10} {figures}  {extra}")


if __name__ == "__main__":
    main()
