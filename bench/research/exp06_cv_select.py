"""Automatic choice of the L2 strength by stratified k-fold CV on the training set only.

Views are training samples (augmentation); test logits are averaged over the same views.
Also prints how optimistic the out-of-fold F1 is compared with the test F1."""

from __future__ import annotations

import sys

import numpy as np
import rlib
from exp01_frozen import bank
from sklearn.model_selection import StratifiedKFold

from visionloop.engines.heads import LinearHead

GRID = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def fit_views(Xs, y, l2, std, n_labels=20):
    X = np.concatenate(Xs)
    Y = np.concatenate([y] * len(Xs))
    return LinearHead(l2, n_labels=n_labels, standardize=std).fit(X, Y)


def logits(h, Xs):
    return np.mean([h.decision_function(X) for X in Xs], 0)


def cv_select(Xs, y, std, folds=5, seed=0, grid=GRID):
    skf = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores = {}
    for l2 in grid:
        oof = np.zeros((len(y), 20))
        for a, b in skf.split(y, y):
            h = fit_views([X[a] for X in Xs], y[a], l2, std)
            oof[b] = logits(h, [X[b] for X in Xs])
        scores[l2] = rlib.macro_f1(y, oof.argmax(1))
    best = max(grid, key=lambda v: (scores[v], v))  # ties -> stronger regularisation
    return best, scores


log = []


def auto(views, std):
    def fp(tr, ytr, te):
        Xtr = [V[tr] for V in views]
        l2, scores = cv_select(Xtr, ytr, std)
        h = fit_views(Xtr, ytr, l2, std)
        pred = logits(h, [V[te] for V in views]).argmax(1)
        log.append((l2, scores[l2]))
        return pred

    return fp


B2 = bank("efficientnet-lite2", 260)
B0 = bank("efficientnet-lite0", 224)
BC = {k: np.concatenate([B2[k], B0[k]], 1) for k in B2}
which = sys.argv[1:] or ["lite2:1", "lite2:0", "both:1", "lite0:1"]
for spec in which:
    name, std = spec.split(":")[0], bool(int(spec.split(":")[1]))
    B = {"lite0": B0, "lite2": B2, "both": BC}[name]
    for vname, vs in [("full+flip", [(1.0, False), (1.0, True)])]:
        log.clear()
        rlib.eval_seeds(auto([B[v] for v in vs], std), label=f"{name} {vname} std={std} auto-l2")
        print("    chosen l2 / OOF F1:", [(f"{a:g}", round(b, 3)) for a, b in log], flush=True)
