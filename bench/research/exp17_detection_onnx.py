"""The detector's frozen backbone (FeaturePyramid, torch) against ONNX Runtime running the same truncated
network (outputs: the three tapped maps), one thread each, on FlickrLogos-27 photos.

    nice -n 5 .venv/bin/python bench/research/exp17_detection_onnx.py [--sizes 512 320] [--images 30]

Per size: export once (to a temporary folder, timed), then for each image run torch and every ORT
session (graph optimisation levels disabled/basic/extended/all) in an order that rotates per image, so
the load of the shared 2-core machine falls on all of them alike. Prints p50/p90 ms per image (the
network only: the image is decoded and resized once, outside the timing) and the max absolute
difference of each level's features, absolute and relative to the level's max |value|.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from visionloop.engines.detection.features import FeaturePyramid, image_array
from visionloop.engines.detection.onnx_pyramid import TappedNet
from visionloop.engines.onnx_runtime import export_onnx

DATASET = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "flickrlogos27" / "images"
LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session(path: Path, level: ort.GraphOptimizationLevel) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = level
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def measure(pyramid: FeaturePyramid, files: list[Path], size: int, folder: Path) -> None:
    started = time.perf_counter()
    names = [f"p{s}" for s in (8, 16, 32)]
    data = export_onnx(TappedNet(pyramid.net, pyramid.taps), size, names)
    path = folder / f"pyramid-{size}.onnx"
    path.write_bytes(data)
    print(f"\n{size} px: export {time.perf_counter() - started:.1f} s, {len(data) / 1e6:.1f} MB", flush=True)
    sessions = {k: session(path, level) for k, level in LEVELS.items()}
    runners = ["torch", *sessions]
    times: dict[str, list[float]] = {k: [] for k in runners}
    worst: dict[str, list[tuple[float, float]]] = {k: [(0.0, 0.0)] * 3 for k in sessions}
    arrays = [image_array(f.read_bytes(), size)[None] for f in files]
    for warm in arrays[:2]:  # first runs allocate; not timed
        pyramid.torch_features(torch.from_numpy(warm))
        for s in sessions.values():
            s.run(None, {"images": warm})
    for n, batch in enumerate(arrays):
        order = runners[n % len(runners) :] + runners[: n % len(runners)]
        outputs: dict[str, list[np.ndarray]] = {}
        for k in order:
            t = time.perf_counter()
            if k == "torch":
                outputs[k] = [f.numpy() for f in pyramid.torch_features(torch.from_numpy(batch))]
            else:
                outputs[k] = sessions[k].run(None, {"images": batch})
            times[k].append(time.perf_counter() - t)
        for k in sessions:
            worst[k] = [
                max(w, (float(np.abs(o - r).max()), float(np.abs(o - r).max() / np.abs(r).max())))
                for w, o, r in zip(worst[k], outputs[k], outputs["torch"], strict=True)
            ]
    base = np.median(times["torch"])
    for k in runners:
        ms = np.array(times[k]) * 1000
        line = f"  {k:9s} p50 {np.median(ms):6.1f} ms  p90 {np.percentile(ms, 90):6.1f} ms"
        line += f"  ({np.median(times[k]) / base:.2f}x torch)"
        if k in worst:
            line += "  max|diff| " + " ".join(f"{a:.1e} (rel {r:.1e})" for a, r in worst[k])
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 320])
    parser.add_argument("--images", type=int, default=30)
    args = parser.parse_args()
    files = sorted(DATASET.glob("*.jpg"))[: args.images]
    pyramid = FeaturePyramid(1)
    print(f"{len(files)} images, torch {torch.__version__}, onnxruntime {ort.__version__}, 1 thread each")
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            measure(pyramid, files, size, Path(folder))


if __name__ == "__main__":
    main()
