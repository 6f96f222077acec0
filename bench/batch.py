"""Batch inference benchmark: 2,000 images (grocery-produce photos of ../shared/datasets, cycled under
distinct keys) in a local bucket, answered by `visionloop batch` machinery with local worker processes
and then with Ray (a local ray.init on this machine's CPUs, when ray is installed): images/s of each,
from start (workers loading the model included) to summary.

    .venv/bin/python bench/batch.py [--images 2000] [--engine real|colour] [--workers N]
        [--part-size 100] [--runners local,ray] [--data-dir DIR] [--json]

--engine real (default): a small classifier trained first as bench/serve.py trains it (EfficientNet-Lite0,
one view, 5 labels x 16 photos; a --data-dir trained before is reused); --engine colour: the colour engine
of the tests, which measures the machinery alone (listing, reading, parts, progress). Each runner writes
to its own output prefix, so each measures a full run, not a resume.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import GROCERY_LABELS, SHARED, pick_images, train  # noqa: E402  (bench/serve.py)


def fill_bucket(data_dir: Path, count: int) -> None:
    from visionloop.bootstrap import build_services
    from visionloop.settings import load_settings

    photos = [
        p for label in GROCERY_LABELS for p in sorted((SHARED / "grocery-produce" / label).glob("*.jpg"))
    ]
    svc = build_services(load_settings({"data_dir": str(data_dir)}, environ={}))
    try:
        svc.buckets.create_bucket("bench")
        have = sum(1 for _ in svc.buckets.list_objects("bench", "in/"))
        if have != count:
            items = [(f"in/{i:05d}.jpg", photos[i % len(photos)].read_bytes()) for i in range(count)]
            svc.buckets.put_many("bench", items)
    finally:
        svc.close()


def colour_project(data_dir: Path) -> None:
    """A colour-engine model version "bench/v1" (from the tests' helpers), for --engine colour."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.workflows.helpers import colour_project as make
    from tests.workflows.helpers import run_jobs
    from visionloop.bootstrap import build_services
    from visionloop.core.training import TrainingOptions, request_training
    from visionloop.settings import load_settings

    svc = build_services(load_settings({"data_dir": str(data_dir)}, environ={}))
    try:
        if "bench" not in {p.name for p in svc.repo.list_projects()}:
            make(svc, data_dir.parent, "bench")
            request_training(svc, "bench", TrainingOptions(version_name="v1"))
            run_jobs(svc)
    finally:
        svc.close()


def measure(data_dir: Path, runner: str, engine: str, workers: int, part_size: int) -> dict[str, Any]:
    from visionloop.bootstrap import fake_engine
    from visionloop.settings import load_settings
    from visionloop.workflows.batch import run_batch_job

    settings = load_settings({"data_dir": str(data_dir)}, environ={})
    ray_address = None
    if runner == "ray":
        import ray

        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        ray_address = "local"
    out = f"s3://bench/out-{runner}-{int(time.time())}/"
    started = time.perf_counter()
    try:
        summary = run_batch_job(
            settings,
            "bench/v1",
            "s3://bench/in/",
            out,
            engine_factory=fake_engine if engine == "colour" else None,
            workers=workers,
            ray_address=ray_address,
            part_size=part_size,
        )
    finally:
        if runner == "ray":
            ray.shutdown()
    seconds = time.perf_counter() - started
    return {
        "runner": runner,
        "images": summary.done,
        "failed": summary.failed,
        "seconds": round(seconds, 2),
        "images_per_second": round(summary.done / seconds, 1),
        "images_per_second_after_start": summary.images_per_second,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--engine", choices=("real", "colour"), default="real")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--part-size", type=int, default=100)
    parser.add_argument("--runners", default="local,ray")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="visionloop-bench-batch-")) / "var"
    data_dir.mkdir(parents=True, exist_ok=True)
    if args.engine == "real":
        train(data_dir, pick_images("grocery")[0], "small", None)
    else:
        colour_project(data_dir)
    fill_bucket(data_dir, args.images)
    results = []
    for runner in args.runners.split(","):
        if runner == "ray":
            try:
                import ray  # noqa: F401
            except ImportError:
                print("ray: skipped (not installed: pip install 'visionloop[ray]')")
                continue
        result = measure(data_dir, runner, args.engine, args.workers, args.part_size)
        results.append(result)
        if not args.json:
            print(
                f"{runner}: {result['images']} images ({result['failed']} failed) in {result['seconds']} s: "
                f"{result['images_per_second']} images/s ({result['images_per_second_after_start']} "
                f"after the workers started)"
            )
    if args.json:
        print(json.dumps({"engine": args.engine, "workers": args.workers, "results": results}, indent=2))


if __name__ == "__main__":
    main()
