"""Partial fine-tuning of EfficientNet-Lite2's last block(s) on cached intermediate activations.

The stem and the first blocks run once per image and view in ONNX Runtime; the activations at the
tap are cached; only the tail (blocks[k:], conv_head, bn1) and a linear classifier are trained in
torch. BatchNorm running statistics stay frozen (eval mode), their affine parameters train.
The classifier starts from the frozen-feature logistic regression (warm start).
Usage: exp07_finetune.py K EPOCHS LR [blocked:0|1] [seeds]"""

from __future__ import annotations

import copy
import sys
import time

import numpy as np
import rlib
import torch

from visionloop.engines.heads import LinearHead

NAME, SIZE = "efficientnet-lite2", 260
K = int(sys.argv[1]) if len(sys.argv) > 1 else 20  # first trained block (21 = conv_head only)
EPOCHS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
LR = float(sys.argv[3]) if len(sys.argv) > 3 else 3e-4
PROTOS = (bool(int(sys.argv[4])),) if len(sys.argv) > 4 else (False, True)
SEEDS = tuple(int(s) for s in sys.argv[5].split(",")) if len(sys.argv) > 5 else rlib.SEEDS
VIEWS = [(1.0, False), (1.0, True), (0.75, False), (0.75, True)]
torch.set_num_threads(2)
imgs = rlib.decoded()


def acts(view):
    crop, flip = view

    def fn():
        sess = rlib.ort_session(NAME, SIZE, (K - 1,))
        out = []
        for i in range(0, len(imgs), 64):
            x = rlib.resize_batch(imgs[i : i + 64], SIZE, crop, flip)
            out.append(rlib.run_sess(sess, x)[0].astype(np.float16))
        return [np.concatenate(out)]

    return rlib.cached(f"act_{NAME}_{SIZE}_{K - 1}_{crop}_{int(flip)}", fn)[0]


A = {v: acts(v) for v in VIEWS}
print("activations", A[VIEWS[0]].shape, flush=True)
base = rlib.load_torch(NAME, SIZE)


class Tail(torch.nn.Module):
    def __init__(self, n_labels):
        super().__init__()
        m = copy.deepcopy(base)
        self.blocks = torch.nn.ModuleList(m._blocks[K:])
        self.conv_head, self.bn1, self.act = m._conv_head, m._bn1, m._swish
        self.fc = torch.nn.Linear(1280, n_labels)

    def features(self, x):
        for b in self.blocks:
            x = b(x)
        return self.act(self.bn1(self.conv_head(x))).mean((2, 3))

    def forward(self, x):
        return self.fc(self.features(x))


def fp(tr, ytr, te):
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    net = Tail(20)
    net.eval()
    with torch.no_grad():  # warm start: logistic regression on the frozen tail's features (full+flip)
        F = [net.features(torch.from_numpy(A[v][tr].astype(np.float32))).numpy() for v in VIEWS[:2]]
    h = LinearHead(1e-2, n_labels=20, standardize=False).fit(np.concatenate(F), np.concatenate([ytr, ytr]))
    net.fc.weight.data = torch.tensor(h.coef_, dtype=torch.float32)
    net.fc.bias.data = torch.tensor(h.intercept_, dtype=torch.float32)
    body = [p for n, p in net.named_parameters() if not n.startswith("fc.")]
    opt = torch.optim.AdamW(
        [{"params": body, "lr": LR}, {"params": net.fc.parameters(), "lr": LR}], weight_decay=1e-2
    )
    rng = np.random.default_rng(0)
    n, bs = len(tr), 32
    steps = EPOCHS * ((n + bs - 1) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[LR, LR], total_steps=steps, pct_start=0.1)
    Atr = {v: torch.from_numpy(A[v][tr].astype(np.float32)) for v in VIEWS}
    yt = torch.from_numpy(ytr)
    t = time.perf_counter()
    for _ in range(EPOCHS):
        perm = rng.permutation(n)
        vsel = rng.integers(0, len(VIEWS), n)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            x = torch.stack([Atr[VIEWS[vsel[j]]][j] for j in idx])
            loss = torch.nn.functional.cross_entropy(net(x), yt[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    dt = time.perf_counter() - t
    with torch.no_grad():
        lg = np.mean([net(torch.from_numpy(A[v][te].astype(np.float32))).numpy() for v in VIEWS[:2]], 0)
    print(f"    train {dt:.0f}s", flush=True)
    return lg.argmax(1)


rlib.eval_seeds(fp, seeds=SEEDS, protocols=PROTOS, label=f"finetune lite2 from block {K} ep{EPOCHS} lr{LR}")
