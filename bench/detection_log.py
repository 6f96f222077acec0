"""Detection log benchmark: what logging adds to one detection, and how fast the writer stores them.

A colour-engine model (engines.fake: a real, tiny engine, so the model's own time does not hide the
log's) is served by one inference unit in this process's server code (core.serving with
workflows.inference). Detections run one after another, in alternating blocks with the detection log
off and on (so a machine that gets busier affects both alike; each block sends the same photos), then
in pairs: the same photo without and with the log, one right after the other. Printed: median and p90
latency per detection with and without the log, the paired differences, the time the detection path
spends handing a detection to the log (DetectionLog.record, timed around the call), and the writer's
rate (detections hashed, stored and inserted per second, from a burst of queued detections).

    .venv/bin/python bench/detection_log.py [--blocks 8] [--per-block 60] [--burst 2000] [--json]

The photos are the aws-logos inference images (../shared/datasets/aws-logos) when present, else
generated 320x240 JPEGs.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from visionloop.bootstrap import build_services, fake_engine
from visionloop.core import datasets
from visionloop.core.detections import Detected, DetectionSource
from visionloop.core.entities import Prediction
from visionloop.core.projects import create_project
from visionloop.core.serving import Serving, ServingPolicy, detect, start_version
from visionloop.core.training import TrainingOptions, request_training, run_training_job
from visionloop.engines.fake import ColourEngine
from visionloop.settings import load_settings
from visionloop.workflows.detection_log import DetectionLog
from visionloop.workflows.inference import ProcessInferenceHost

LOGOS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "aws-logos" / "inference_images"


def photos() -> list[bytes]:
    if LOGOS.is_dir():
        return [p.read_bytes() for p in sorted(LOGOS.iterdir())]
    out = []
    for i in range(10):
        img = Image.effect_noise((320, 240), 40 + 5 * i).convert("RGB")
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def colour(c: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 80), c).save(buf, "JPEG")
    return buf.getvalue()


class Timed:
    """The log's record, timed: what the detection path spends in it."""

    def __init__(self, log: DetectionLog) -> None:
        self.log = log
        self.costs: list[float] = []

    def __call__(self, d: Detected) -> None:
        start = time.perf_counter()
        self.log.record(d)
        self.costs.append(time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--per-block", type=int, default=60)
    ap.add_argument("--burst", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        svc = build_services(load_settings({"data_dir": tmp}, environ={}))
        root = Path(tmp) / "train"
        for label, c in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
            (root / label).mkdir(parents=True)
            for i in range(5):
                (root / label / f"{i}.jpg").write_bytes(colour((c[0] - i, c[1], c[2] + i)))
        create_project(svc, "bench")
        datasets.import_folder(svc, "bench", str(root))
        request_training(svc, "bench", TrainingOptions(version_name="v1"))
        job = svc.repo.claim_job(svc.clock.now())
        assert job is not None
        run_training_job(svc, ColourEngine(), job, "us-east-1", "123456789012")
        serving = Serving(ProcessInferenceHost(fake_engine, threads=1), ServingPolicy())
        start_version(svc, serving, "bench", "v1")
        assert serving.host.wait_ready(serving.host.versions()[0], 60)
        while svc.repo.get_version(svc.repo.get_project("bench").id, "v1").status.value != "RUNNING":
            time.sleep(0.05)
        images = photos()
        log = DetectionLog(svc)
        timed = Timed(log)
        latency: dict[str, list[float]] = {"off": [], "on": []}

        def block(mode: str) -> None:
            serving.detection_log = timed if mode == "on" else None
            for i in range(args.per_block):
                start = time.perf_counter()
                detect(svc, serving, "bench", "v1", images[i % len(images)])
                latency[mode].append(time.perf_counter() - start)

        for _ in range(2):  # warm up both paths
            detect(svc, serving, "bench", "v1", images[0])
        for b in range(args.blocks):
            for mode in ("off", "on") if b % 2 == 0 else ("on", "off"):
                block(mode)
        # pairs: the same photo without and with the log, one right after the other (order alternating)
        pairs: list[float] = []
        for i in range(args.blocks * args.per_block):
            took = {}
            for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
                serving.detection_log = timed if mode == "on" else None
                start = time.perf_counter()
                detect(svc, serving, "bench", "v1", images[i % len(images)])
                took[mode] = time.perf_counter() - start
            pairs.append(took["on"] - took["off"])
        log.flush(120)
        serving.host.close()

        # the writer's rate: a burst queued at once, then flushed
        probs = {"red": 0.7, "blue": 0.3}
        writer = DetectionLog(svc, max_pending=args.burst + 1)
        start = time.perf_counter()
        for i in range(args.burst):
            data = images[i % len(images)]
            writer.record(
                Detected("bench", "v1", data, probs, [Prediction("red", 70.0)], DetectionSource.API)
            )
        queued = time.perf_counter() - start
        writer.flush(600)
        written = time.perf_counter() - start
        writer.stop()
        log.stop()

        result: dict[str, Any] = {
            "photos": len(images),
            "photo_kb": round(statistics.mean(len(x) for x in images) / 1024, 1),
            "detections_per_mode": len(latency["on"]),
            "off_median_ms": 1000 * statistics.median(latency["off"]),
            "on_median_ms": 1000 * statistics.median(latency["on"]),
            "off_p90_ms": 1000 * pct(latency["off"], 0.9),
            "on_p90_ms": 1000 * pct(latency["on"], 0.9),
            "record_median_us": 1e6 * statistics.median(timed.costs),
            "record_p99_us": 1e6 * pct(timed.costs, 0.99),
            "record_max_us": 1e6 * max(timed.costs),
            "burst": args.burst,
            "burst_queue_us_each": 1e6 * queued / args.burst,
            "writer_per_second": args.burst / written,
            "logged": writer.stats().logged + log.stats().logged,
        }
        result["added_median_ms"] = result["on_median_ms"] - result["off_median_ms"]
        result["pairs"] = len(pairs)
        result["paired_median_ms"] = 1000 * statistics.median(pairs)
        result["paired_mean_ms"] = 1000 * statistics.mean(pairs)
        result["paired_sem_ms"] = 1000 * statistics.stdev(pairs) / len(pairs) ** 0.5
        if args.json:
            print(json.dumps(result, indent=2))
            return
        print(
            f"{result['photos']} photos, {result['photo_kb']} KB on average; "
            f"{result['detections_per_mode']} detections with the log and as many without"
        )
        for mode in ("off", "on"):
            median, p90 = result[f"{mode}_median_ms"], result[f"{mode}_p90_ms"]
            print(f"  log {mode:3}: median {median:.2f} ms, p90 {p90:.2f} ms")
        print(f"  added, blocks (difference of the medians): {result['added_median_ms']:+.3f} ms")
        print(
            f"  added, {result['pairs']} pairs (on - off, same photo): "
            f"median {result['paired_median_ms']:+.3f} ms, "
            f"mean {result['paired_mean_ms']:+.3f} ± {result['paired_sem_ms']:.3f} ms"
        )
        print(
            f"  DetectionLog.record on the detection path: median {result['record_median_us']:.1f} µs, "
            f"p99 {result['record_p99_us']:.1f} µs, max {result['record_max_us']:.0f} µs"
        )
        print(
            f"writer: {result['burst']} detections queued at {result['burst_queue_us_each']:.1f} µs each, "
            f"written at {result['writer_per_second']:.0f}/s (images hashed and stored, rows inserted)"
        )


if __name__ == "__main__":
    main()
