"""Images per second for embedding: network alone, preprocessing alone, and the whole pipeline.

    .venv/bin/python bench/embed_throughput.py [DATASET_DIR] [--images 300] [--batch-size 32]

Reads the first N JPEGs (sorted paths) of ``../shared/datasets/grocery-produce`` by default.
Prints figures; it is not a timed test. Median of ``--repeats`` runs. CPU core-ms per image is
printed beside images/s because it is steadier when other processes share the cores: on an idle
machine the wall-clock rate approaches ``1000 * cores / core-ms``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from visionloop.engines.backbones import Backbone
from visionloop.engines.preprocess import default_workers, preprocess_batch
from visionloop.engines.registry import create_backbone, list_backbones

DEFAULT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "grocery-produce"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(n: int, fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(images/s wall-clock, CPU core-ms per image), medians over ``repeats`` runs."""
    rates, costs = [], []
    for _ in range(repeats):
        cpu, start = _cpu_seconds(), time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - start))
        costs.append((_cpu_seconds() - cpu) * 1000 / n)
    return statistics.median(rates), statistics.median(costs)


def _line(label: str, figures: tuple[float, float]) -> str:
    rate, cost = figures
    return f"  {label:<30} {rate:7.1f} img/s   {cost:6.1f} CPU core-ms/img"


def _bench(backbone: Backbone, images: list[bytes], batch_size: int, repeats: int) -> None:
    start = time.perf_counter()
    backbone.warm_up()
    print(
        f"\n{backbone.spec.name}: session ready in {time.perf_counter() - start:.1f} s (export if not cached)"
    )
    p = backbone.spec.preprocessing
    batch = preprocess_batch(images[:batch_size], p)
    with ThreadPoolExecutor(1) as one:
        single = _measure(len(images), lambda: preprocess_batch(images, p, executor=one), repeats)
    parallel = _measure(len(images), lambda: preprocess_batch(images, p), repeats)
    network = _measure(len(batch), lambda: backbone.forward(batch), repeats * 3)
    pipeline = _measure(len(images), lambda: backbone.embed(images, batch_size=batch_size), repeats)
    print(_line("preprocess, 1 thread", single))
    print(_line(f"preprocess, {default_workers()} threads", parallel))
    print(_line(f"network alone (ONNX, b{len(batch)})", network))
    print(_line("embed(): bytes -> vectors", pipeline))
    backbone.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbones", default="efficientnet-*")
    parser.add_argument("--cache-dir", type=Path, default=None, help="ONNX cache (default: a temp dir)")
    args = parser.parse_args(argv)

    paths = sorted(args.dataset.glob("*/*.jpg"))[: args.images]
    if not paths:
        print(f"no JPEGs under {args.dataset}", file=sys.stderr)
        return 1
    images = [p.read_bytes() for p in paths]
    cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="vl-onnx-"))
    print(f"{len(images)} images from {args.dataset}; {os.cpu_count()} CPUs; batch {args.batch_size}")
    for name in list_backbones(args.backbones):
        _bench(create_backbone(name, cache_dir=cache_dir), images, args.batch_size, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
