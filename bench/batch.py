"""Batch inference benchmark: 2,000 images (grocery-produce photos of ../shared/datasets, cycled under
distinct keys) in a bucket, answered by `visionloop batch` machinery with local worker processes and then
with Ray (a local ray.init on this machine's CPUs, when ray is installed): images/s of each, from start
(workers loading the model included) to summary. On each backend asked for: ``sqlite`` (a SQLite file
and folders, the default setup) and ``postgres-s3`` (a throw-away PostgreSQL cluster from Debian's
binaries, as the tests start it, and a moto S3 server in its own process for the store and the buckets:
every image read by the workers is an S3 GET).

    .venv/bin/python bench/batch.py [--images 2000] [--engine real|colour] [--workers N]
        [--part-size 100] [--runners local,ray] [--backends sqlite,postgres-s3] [--data-dir DIR] [--json]

--engine real (default): a small classifier trained first as bench/serve.py trains it (EfficientNet-Lite0,
one view, 5 labels x 16 photos; a --data-dir trained before is reused); --engine colour: the colour engine
of the tests, which measures the machinery alone (listing, reading, parts, progress). Each runner writes
to its own output prefix, so each measures a full run, not a resume.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import GROCERY_LABELS, SHARED, pick_images, train  # noqa: E402  (bench/serve.py)

ROOT = Path(__file__).resolve().parents[1]
# postgres-s3: the internal store's S3 bucket (made here, as an operator would)
STORE_BUCKET = "visionloop-store"


@contextlib.contextmanager
def backend(name: str, data_dir: Path) -> Iterator[dict[str, str]]:
    """The settings of ``name`` (``sqlite`` or ``postgres-s3``) for the block; postgres-s3 starts a
    PostgreSQL cluster and a moto S3 server in processes of their own and stops them after."""
    if name == "sqlite":
        yield {"data_dir": str(data_dir)}
        return
    sys.path.insert(0, str(ROOT))
    import boto3

    from tests.storage.postgres import start_cluster

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cluster = start_cluster()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region_name": "us-east-1"}
        for _ in range(100):
            with contextlib.suppress(Exception):
                boto3.client("s3", endpoint_url=endpoint, **keys).create_bucket(Bucket=STORE_BUCKET)
                break
            time.sleep(0.1)
        yield {
            "data_dir": str(data_dir),
            "database_url": cluster.fresh_database(),
            "store_url": f"s3://{STORE_BUCKET}/store",
            "buckets_url": "s3://",
            "s3_endpoint_url": endpoint,
            "s3_region": "us-east-1",
            "s3_access_key_id": "bench",
            "s3_secret_access_key": "bench",
        }
    finally:
        cluster.stop()
        moto.terminate()
        moto.wait(10)


def fill_bucket(values: dict[str, str], count: int) -> None:
    from visionloop.bootstrap import build_services
    from visionloop.settings import load_settings

    photos = [
        p for label in GROCERY_LABELS for p in sorted((SHARED / "grocery-produce" / label).glob("*.jpg"))
    ]
    svc = build_services(load_settings(values, environ={}))
    try:
        with contextlib.suppress(Exception):  # there already (a --data-dir used before)
            svc.buckets.create_bucket("bench")
        have = sum(1 for _ in svc.buckets.list_objects("bench", "in/"))
        if have != count:
            items = [(f"in/{i:05d}.jpg", photos[i % len(photos)].read_bytes()) for i in range(count)]
            svc.buckets.put_many("bench", items)
    finally:
        svc.close()


def colour_project(values: dict[str, str]) -> None:
    """A colour-engine model version "bench/v1" (from the tests' helpers), for --engine colour."""
    sys.path.insert(0, str(ROOT))
    from tests.workflows.helpers import colour_project as make
    from tests.workflows.helpers import run_jobs
    from visionloop.bootstrap import build_services
    from visionloop.core.training import TrainingOptions, request_training
    from visionloop.settings import load_settings

    svc = build_services(load_settings(values, environ={}))
    try:
        if "bench" not in {p.name for p in svc.repo.list_projects()}:
            make(svc, Path(values["data_dir"]).parent, "bench")
            request_training(svc, "bench", TrainingOptions(version_name="v1"))
            run_jobs(svc)
    finally:
        svc.close()


def measure(values: dict[str, str], runner: str, engine: str, workers: int, part_size: int) -> dict[str, Any]:
    from visionloop.bootstrap import fake_engine
    from visionloop.settings import load_settings
    from visionloop.workflows.batch import run_batch_job

    settings = load_settings(values, environ={})
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
        "backend": "sqlite" if "database_url" not in values else "postgres-s3",
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
    parser.add_argument("--backends", default="sqlite", help="sqlite, postgres-s3 or both (comma-separated)")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = args.data_dir or Path(tempfile.mkdtemp(prefix="visionloop-bench-batch-")) / "var"
    results = []
    for name in args.backends.split(","):
        data_dir = root if name == "sqlite" else root.parent / f"{root.name}-{name}"
        data_dir.mkdir(parents=True, exist_ok=True)
        with backend(name, data_dir) as values:
            if args.engine == "real":
                train(data_dir, pick_images("grocery")[0], "small", None, values)
            else:
                colour_project(values)
            fill_bucket(values, args.images)
            for runner in args.runners.split(","):
                if runner == "ray":
                    try:
                        import ray  # noqa: F401
                    except ImportError:
                        print("ray: skipped (not installed: pip install 'visionloop[ray]')")
                        continue
                result = measure(values, runner, args.engine, args.workers, args.part_size)
                results.append(result)
                if not args.json:
                    print(
                        f"{name} {runner}: {result['images']} images ({result['failed']} failed) in "
                        f"{result['seconds']} s: {result['images_per_second']} images/s "
                        f"({result['images_per_second_after_start']} after the workers started)"
                    )
    if args.json:
        print(json.dumps({"engine": args.engine, "workers": args.workers, "results": results}, indent=2))


if __name__ == "__main__":
    main()
