"""MLP head and feature-space augmentation (noise, mixup) on frozen embeddings vs the linear head.

Fixed hyper-parameters (no CV) to see whether there is anything to gain at all."""

from __future__ import annotations

import sys

import numpy as np
import rlib
import torch
from exp01_frozen import bank

from visionloop.engines.heads import LinearHead

torch.set_num_threads(2)
B2 = bank("efficientnet-lite2", 260)
B0 = bank("efficientnet-lite0", 224)
VIEWS = [(1.0, False), (1.0, True)]


def mlp(B, hidden, drop, mix, noise, epochs=60, lr=1e-3, wd=1e-2):
    def fp(tr, ytr, te):
        torch.manual_seed(0)
        X = np.concatenate([B[v][tr] for v in VIEWS])
        Y = np.concatenate([ytr] * len(VIEWS))
        mu, sd = X.mean(0), X.std(0) + 1e-6
        xt = torch.tensor((X - mu) / sd, dtype=torch.float32)
        yt = torch.nn.functional.one_hot(torch.from_numpy(Y), 20).float()
        layers = [torch.nn.Dropout(drop)]
        if hidden:
            layers += [
                torch.nn.Linear(X.shape[1], hidden),
                torch.nn.GELU(),
                torch.nn.Dropout(drop),
                torch.nn.Linear(hidden, 20),
            ]
        else:
            layers += [torch.nn.Linear(X.shape[1], 20)]
        net = torch.nn.Sequential(*layers)
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=wd)
        n, bs = len(xt), 64
        steps = epochs * ((n + bs - 1) // bs)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
        g = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            perm = torch.randperm(n, generator=g)
            for i in range(0, n, bs):
                idx = perm[i : i + bs]
                x, y = xt[idx], yt[idx]
                if noise:
                    x = x + noise * torch.randn(x.shape, generator=g)
                if mix:
                    lam = float(np.random.default_rng(i).beta(mix, mix))
                    j = torch.randperm(len(idx), generator=g)
                    x, y = lam * x + (1 - lam) * x[j], lam * y + (1 - lam) * y[j]
                loss = torch.sum(-y * torch.log_softmax(net(x), 1), 1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        net.eval()
        with torch.no_grad():
            lg = np.mean(
                [net(torch.tensor((B[v][te] - mu) / sd, dtype=torch.float32)).numpy() for v in VIEWS], 0
            )
        return lg.argmax(1)

    return fp


def linear(B, l2):
    def fp(tr, ytr, te):
        X = np.concatenate([B[v][tr] for v in VIEWS])
        h = LinearHead(l2, n_labels=20).fit(X, np.concatenate([ytr] * len(VIEWS)))
        return np.mean([h.decision_function(B[v][te]) for v in VIEWS], 0).argmax(1)

    return fp


B = {"lite2": B2, "lite0": B0}[sys.argv[1] if len(sys.argv) > 1 else "lite2"]
rlib.eval_seeds(linear(B, 1e-3), label="linear l2=1e-3")
for hidden, drop, mix, noise in [
    (0, 0.5, 0, 0),
    (0, 0.0, 0.4, 0),
    (1024, 0.5, 0, 0),
    (1024, 0.5, 0.4, 0),
    (1024, 0.2, 0, 0.5),
    (512, 0.5, 0.4, 0.5),
]:
    rlib.eval_seeds(
        mlp(B, hidden, drop, mix, noise), label=f"mlp h={hidden} drop={drop} mixup={mix} noise={noise}"
    )
