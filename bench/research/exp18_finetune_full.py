"""Whole-network (or last-k-blocks) fine-tuning of fp32 EfficientNet-Lite0 on the actual images with
on-the-fly augmentation, against the seven-view linear head, on photos of a later session
(README.md, "Full fine-tuning with augmentation").

Benchmarks as bench/heldout.py: ``g20`` = grocery20 (train_* → train, val_* → measured), ``mag`` =
magnetic-tile Free vs Defect, 20% of the tiles held out (heldout_common.magnetic, seed 0).

Baseline (same script, same pixels): frozen Lite0, seven views (whole, mirror, four quarters, centre),
logistic regression on standardised features (C = 0.1), logits averaged over the seven views.
Fine-tuning: random resized crops (area ``--scale``..1, aspect 3/4..4/3), mirror, brightness /
contrast / saturation jitter; BatchNorm frozen (eval mode, statistics and affine kept... unless
``--bn-affine``); AdamW, one-cycle, label smoothing 0.1; the classifier warm-started from the baseline's
logistic regression (standardisation folded into it); one torch thread.
Prediction: logits averaged over the whole image + mirror ("tta2") and over the seven views ("tta7").

Usage: exp18_finetune_full.py BENCH [--epochs 5] [--size 224] [--from-block 0] [--lr 2e-4] ..."""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import rlib  # noqa: E402
from heldout_common import grocery, magnetic, mf1  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

torch.set_num_threads(1)
ap = argparse.ArgumentParser()
ap.add_argument("bench", choices=["g20", "mag", "all"])
ap.add_argument("--epochs", type=int, default=5)
ap.add_argument("--size", type=int, default=224, help="training input size (prediction is at 224)")
ap.add_argument("--from-block", type=int, default=0, help="blocks before this one stay frozen (0: all train)")
ap.add_argument("--lr", type=float, default=2e-4)
ap.add_argument("--head-lr", type=float, default=None)
ap.add_argument("--scale", type=float, default=0.2, help="smallest crop area of a random resized crop")
ap.add_argument("--jitter", type=float, default=0.3)
ap.add_argument("--aug", choices=["crops", "views"], default="crops", help="views: one of the seven fixed views")
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--no-warm", action="store_true")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--budget", type=float, default=1e9, help="stop training after this many seconds")
args = ap.parse_args()
CACHE = rlib.CACHE / "h12"
CACHE.mkdir(parents=True, exist_ok=True)
SIZE = 224
REGIONS = [None, None, (0, 0, 0.5, 0.5), (0.5, 0, 1, 0.5), (0, 0.5, 0.5, 1), (0.5, 0.5, 1, 1), (0.25, 0.25, 0.75, 0.75)]
FLIPS = [False, True, False, False, False, False, False]

if args.bench == "mag":
    items, y_all, tr, te, _ = magnetic(0)
    y_all = np.asarray(y_all)
else:
    items, tr, te = grocery("b20" if args.bench == "g20" else "all")
    labs = sorted({items[i][0] for i in tr})
    li = {lab: k for k, lab in enumerate(labs)}
    y_all = np.array([li.get(lab, -1) for lab, _ in items])
n_labels = int(y_all[tr].max()) + 1
print(f"{args.bench}: {len(tr)} train, {len(te)} held out, {n_labels} labels; {vars(args)}", flush=True)


def square(i: int) -> Image.Image:
    """The product's whole-image view before resizing: the centred square of the short side."""
    im = Image.open(items[i][1]).convert("RGB")
    w, h = im.size
    s = min(w, h)
    return im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))


idx = np.concatenate([tr, te])
squares = {int(i): square(int(i)) for i in idx}


def view(im: Image.Image, region, flip: bool, size: int = SIZE) -> np.ndarray:
    s = im.size[0]
    if region is not None:
        im = im.crop(tuple(round(v * s) for v in region))
    im = im.resize((size, size), Image.BICUBIC)
    if flip:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(im)


def to_tensor(arrs: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(rlib.to_input(np.stack(arrs)))


def augment(im: Image.Image, rng: random.Random, size: int) -> np.ndarray:
    if args.aug == "views":  # one of the seven fixed views (prediction's), mirrored half of the time
        v = rng.randrange(7)
        out = Image.fromarray(view(im, REGIONS[v], FLIPS[v] != (rng.random() < 0.5), size))
        for enh in rng.sample([ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color], 3):
            out = enh(out).enhance(rng.uniform(1 - args.jitter, 1 + args.jitter))
        return np.asarray(out)
    s = im.size[0]
    for _ in range(10):
        area = rng.uniform(args.scale, 1.0) * s * s
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w, h = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if w <= s and h <= s:
            break
    else:
        w = h = s
    left, top = rng.randint(0, s - w), rng.randint(0, s - h)
    out = im.resize((size, size), Image.BILINEAR, box=(left, top, left + w, top + h))
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    j = args.jitter
    if j > 0:
        for enh in rng.sample([ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color], 3):
            out = enh(out).enhance(rng.uniform(1 - j, 1 + j))
    return np.asarray(out)


class Net(torch.nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.m = rlib.load_torch("efficientnet-lite0")
        self.fc = torch.nn.Linear(1280, n)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        m = self.m
        with torch.set_grad_enabled(torch.is_grad_enabled() and args.from_block == 0):
            x = m._swish(m._bn0(m._conv_stem(x)))
        for k, block in enumerate(m._blocks):
            with torch.set_grad_enabled(torch.is_grad_enabled() and k >= args.from_block):
                x = block(x)
        return m._swish(m._bn1(m._conv_head(x))).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def embed(net: Net, ids: np.ndarray) -> np.ndarray:
    """[7, len(ids), 1280] features of the seven views."""
    out = np.zeros((7, len(ids), 1280), np.float32)
    net.eval()
    with torch.no_grad():
        for s in range(0, len(ids), 32):
            chunk = ids[s : s + 32]
            for v in range(7):
                x = to_tensor([view(squares[int(i)], REGIONS[v], FLIPS[v]) for i in chunk])
                out[v, s : s + len(chunk)] = net.features(x).numpy()
    return out


def report(name: str, logits7: np.ndarray, dt: float) -> None:
    yt = y_all[te]
    for tag, lg in (("tta2", logits7[:2].mean(0)), ("tta7", logits7.mean(0))):
        p = lg.argmax(1)
        print(
            f"RESULT {args.bench} {name} {tag}: macro F1 {mf1(yt, p):.3f} accuracy {(p == yt).mean():.3f} "
            f"time {dt:.0f}s load {os.getloadavg()[0]:.1f}",
            flush=True,
        )


torch.manual_seed(args.seed)
net = Net(n_labels)
t0 = time.perf_counter()
fcache = CACHE / f"{args.bench}_frozen7.npz"
if fcache.exists():
    z = np.load(fcache)
    Ftr, Fte = z["tr"], z["te"]
else:
    Ftr, Fte = embed(net, tr), embed(net, te)
    np.savez(fcache, tr=Ftr, te=Fte)
print(f"frozen features {time.perf_counter() - t0:.0f}s", flush=True)
t0 = time.perf_counter()
X = np.concatenate(list(Ftr)).astype(np.float64)
Y = np.concatenate([y_all[tr]] * 7)
sc = StandardScaler().fit(X)
lr = LogisticRegression(C=0.1, max_iter=3000).fit(sc.transform(X), Y)
coef = lr.coef_ if n_labels > 2 else np.stack([-lr.coef_[0] / 2, lr.coef_[0] / 2])
icpt = lr.intercept_ if n_labels > 2 else np.array([-lr.intercept_[0] / 2, lr.intercept_[0] / 2])
W = coef / sc.scale_
b = icpt - W @ sc.mean_
base = np.stack([Fte[v] @ W.T + b for v in range(7)])
report("frozen-7view-LR", base, time.perf_counter() - t0)
if not args.no_warm:
    net.fc.weight.data = torch.tensor(W, dtype=torch.float32)
    net.fc.bias.data = torch.tensor(b, dtype=torch.float32)

# fine-tuning
for k, blk in enumerate(net.m._blocks):
    for p in blk.parameters():
        p.requires_grad_(k >= args.from_block)
for mod in (net.m._conv_stem, net.m._bn0):
    for p in mod.parameters():
        p.requires_grad_(args.from_block == 0)
body = [p for n, p in net.named_parameters() if p.requires_grad and not n.startswith("fc.")]
head_lr = args.head_lr or args.lr
opt = torch.optim.AdamW([{"params": body, "lr": args.lr}, {"params": net.fc.parameters(), "lr": head_lr}], weight_decay=1e-2)
steps_per_epoch = math.ceil(len(tr) / args.batch)
sched = torch.optim.lr_scheduler.OneCycleLR(
    opt, max_lr=[args.lr, head_lr], total_steps=args.epochs * steps_per_epoch, pct_start=0.15
)
rng = random.Random(args.seed)
nrng = np.random.default_rng(args.seed)
yt_tr = torch.from_numpy(y_all[tr])
t0 = time.perf_counter()
stopped = ""
for epoch in range(args.epochs):
    net.eval()  # BatchNorm keeps its ImageNet statistics (batches of 16)
    perm = nrng.permutation(len(tr))
    total = 0.0
    for s in range(0, len(tr), args.batch):
        b_ids = perm[s : s + args.batch]
        x = to_tensor([augment(squares[int(tr[j])], rng, args.size) for j in b_ids])
        loss = torch.nn.functional.cross_entropy(net(x), yt_tr[b_ids], label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * len(b_ids)
    el = time.perf_counter() - t0
    print(f"epoch {epoch + 1} loss {total / len(tr):.3f} {el:.0f}s load {os.getloadavg()[0]:.1f}", flush=True)
    if el > args.budget:
        stopped = f" (stopped after {epoch + 1} epochs)"
        break
train_s = time.perf_counter() - t0
F7 = embed(net, te)
with torch.no_grad():
    lg = np.stack([net.fc(torch.from_numpy(F7[v])).numpy() for v in range(7)])
tag = f"ft-from{args.from_block}-ep{args.epochs}-s{args.size}-lr{args.lr}-sc{args.scale}-j{args.jitter}-{args.aug}{stopped}"
report(tag, lg, train_s)
np.savez(CACHE / f"{args.bench}_{tag.replace(' ', '_')}.npz", finetuned=lg, linear=base)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ensemble: the fine-tuned net's and the linear head's probabilities averaged (views as above)
report(tag + " +linear", np.log(np.stack([softmax(lg[v]) + softmax(base[v]) for v in range(7)])), train_s)
