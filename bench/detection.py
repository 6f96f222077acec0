"""Train and evaluate the object-detection engine on FlickrLogos-27 (COCO boxes) and print mAP@0.5,
per-label AP, training wall and CPU time, and detect latency per image (one torch thread).

    .venv/bin/python bench/detection.py DATASETS_DIR [--seed 0] [--max-seconds 600] [--input-size 512]
        [--test-fraction 0.2]

The split is seeded and keeps near-duplicates together: images with identical bytes, and Flickr photos
whose numeric ids (the file names) lie within --id-gap of each other (one upload burst, usually the
same scene), form one group, and sklearn's GroupShuffleSplit sends whole groups to TEST.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupShuffleSplit

from visionloop.core.entities import Box
from visionloop.engines.detection import DetectionEngine, DetectionExample
from visionloop.engines.detection.metrics import evaluate_detection


def load_coco(folder: Path) -> tuple[list[str], dict[str, bytes], dict[str, tuple[Box, ...]]]:
    """Labels (category order), image bytes and boxes in ratios, by file name."""
    coco = json.loads((folder / "annotations_coco.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    sizes = {im["id"]: (im["file_name"], im["width"], im["height"]) for im in coco["images"]}
    boxes: dict[str, list[Box]] = {name: [] for name, _, _ in sizes.values()}
    for a in coco["annotations"]:
        name, w, h = sizes[a["image_id"]]
        x, y, bw, bh = a["bbox"]
        x0, y0 = max(0.0, x / w), max(0.0, y / h)
        x1, y1 = min(1.0, (x + bw) / w), min(1.0, (y + bh) / h)
        if x1 > x0 and y1 > y0:
            boxes[name].append(Box(names[a["category_id"]], x0, y0, x1 - x0, y1 - y0))
    images = {name: (folder / "images" / name).read_bytes() for name in boxes}
    labels = [names[k] for k in sorted(names)]
    return labels, images, {k: tuple(v) for k, v in boxes.items()}


def groups(images: dict[str, bytes], id_gap: int) -> dict[str, int]:
    """Group number of each image: identical bytes, or numeric file names within ``id_gap``, chained."""
    parent = {name: name for name in images}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    def join(a: str, b: str) -> None:
        parent[root(a)] = root(b)

    by_hash: dict[str, str] = {}
    for name, data in images.items():
        digest = hashlib.sha256(data).hexdigest()
        if digest in by_hash:
            join(name, by_hash[digest])
        by_hash.setdefault(digest, name)
    numbered = sorted((int(Path(n).stem), n) for n in images if Path(n).stem.isdigit())
    for (a, na), (b, nb) in zip(numbered, numbered[1:], strict=False):
        if b - a <= id_gap:
            join(na, nb)
    roots = {r: i for i, r in enumerate(sorted({root(n) for n in images}))}
    return {n: roots[root(n)] for n in images}


class Progress:
    """Prints the training's progress every tenth of the way (with the time since the start)."""

    def __init__(self) -> None:
        self.started, self.shown = time.perf_counter(), -1

    def __call__(self, fraction: float, stage: str) -> None:
        tenth = int(fraction * 10)
        if tenth > self.shown:
            self.shown = tenth
            print(f"  {time.perf_counter() - self.started:6.0f} s {fraction:4.0%} {stage}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("datasets", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--input-size", type=int, default=512)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--id-gap", type=int, default=1000)
    args = parser.parse_args()
    folder = args.datasets / "flickrlogos27"
    if not folder.is_dir():
        print(f"no data set at {folder}", file=sys.stderr)
        return 2
    labels, images, boxes = load_coco(folder)
    names = sorted(images)
    group_of = groups(images, args.id_gap)
    split = GroupShuffleSplit(n_splits=1, test_size=args.test_fraction, random_state=args.seed)
    train_idx, test_idx = next(split.split(names, groups=[group_of[n] for n in names]))
    train, test = [names[i] for i in train_idx], [names[i] for i in test_idx]
    print(f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    print(
        f"split seed {args.seed}: {len(train)} train / {len(test)} test images "
        f"({sum(len(boxes[n]) for n in train)} / {sum(len(boxes[n]) for n in test)} boxes), "
        f"{len(set(group_of.values()))} groups of near-duplicates"
    )
    engine = DetectionEngine(input_size=args.input_size)
    wall, cpu = time.perf_counter(), time.process_time()
    trained = engine.train(
        [DetectionExample(n, boxes[n]) for n in train],
        images.__getitem__,
        labels,
        seed=args.seed,
        max_seconds=args.max_seconds,
        progress=Progress(),
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    s = trained.stats
    print(
        f"training: {wall:.0f} s wall, {cpu:.0f} s CPU (features {s.cache_seconds:.0f} s for {s.views} "
        f"views, head {s.train_seconds:.0f} s, {s.steps} steps = {s.epochs:.1f} epochs, "
        f"loss {s.final_loss:.3f})"
    )
    detector = engine.load(trained.files)
    detector.detect([images[test[0]]])  # warm-up
    latencies, predicted = [], []
    for n in test:
        t = time.perf_counter()
        predicted.append(detector.detect([images[n]])[0])
        latencies.append(time.perf_counter() - t)
    result = evaluate_detection(test, [boxes[n] for n in test], predicted, labels)
    ms = np.array(latencies) * 1000
    print(f"detect latency per image: p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms")
    found = sum(sum(img.correct) for img in result.images)
    total = sum(len(img.truth) for img in result.images)
    print(
        f"mAP@0.5 {result.map50:.3f} over {sum(m.ap is not None for m in result.per_label)} labels; "
        f"{found}/{total} test boxes found at the assumed thresholds"
    )
    print(f"{'label':<14}{'boxes':>6}{'AP':>7}{'thr':>7}{'P':>7}{'R':>7}{'F1':>7}")
    for m in result.per_label:
        ap = "-" if m.ap is None else f"{m.ap:.3f}"
        thr = "-" if m.threshold is None else f"{m.threshold:.3f}"
        print(f"{m.label:<14}{m.true_boxes:>6}{ap:>7}{thr:>7}{m.precision:>7.2f}{m.recall:>7.2f}{m.f1:>7.2f}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
