"""Views (crop fraction, flip) as train-time augmentation and test-time averaging; Lite0 vs Lite2 vs both."""

from __future__ import annotations

import warnings

import numpy as np
import rlib
from exp01_frozen import bank
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

warnings.simplefilter("ignore", ConvergenceWarning)
B2 = bank("efficientnet-lite2", 260)
B0 = bank("efficientnet-lite0", 224)
BC = {k: np.concatenate([B2[k], B0[k]], 1) for k in B2}


def lr_views(B, train_views, test_views, head):
    def fp(tr, ytr, te):
        Xtr = np.concatenate([B[v][tr] for v in train_views])
        Ytr = np.concatenate([ytr] * len(train_views))
        if head == "raw":
            m = LogisticRegression(C=1.0, max_iter=300).fit(Xtr, Ytr)
            f = np.asarray
        else:
            sc = StandardScaler().fit(Xtr)
            m = LogisticRegression(C=0.1, max_iter=300).fit(sc.transform(Xtr), Ytr)
            f = sc.transform
        lg = np.mean([m.decision_function(f(B[v][te])) for v in test_views], 0)
        return lg.argmax(1)

    return fp


def V(c):
    return [(c, False), (c, True)]


for bname, B in [("lite2", B2), ("lite0", B0), ("both", BC)]:
    for head in ["std", "raw"]:
        for c in [1.0, 0.875, 0.75]:
            rlib.eval_seeds(lr_views(B, [(c, False)], [(c, False)], head), label=f"{bname} {head} crop{c}")
            rlib.eval_seeds(lr_views(B, V(c), V(c), head), label=f"{bname} {head} crop{c}+flip")
        allv = list(B)
        rlib.eval_seeds(lr_views(B, allv, V(1.0), head), label=f"{bname} {head} train6 test crop1+flip")
        rlib.eval_seeds(lr_views(B, allv, allv, head), label=f"{bname} {head} train6 test6")
        rlib.eval_seeds(
            lr_views(B, V(1.0) + V(0.875), V(1.0) + V(0.875), head), label=f"{bname} {head} 1+.875 flips"
        )
