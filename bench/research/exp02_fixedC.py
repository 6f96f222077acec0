"""Linear-probe sensitivity to C on the random (R) and blocked (B) splits."""

from __future__ import annotations

import sys

import rlib
from exp01_frozen import feats
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def lr(X, C):
    def fp(tr, ytr, te):
        sc = StandardScaler().fit(X[tr])
        m = LogisticRegression(C=C, max_iter=3000).fit(sc.transform(X[tr]), ytr)
        return m.predict(sc.transform(X[te]))

    return fp


for cfg in sys.argv[1:]:
    name, size, crop = cfg.split(":")
    F = feats(name, int(size), float(crop))
    for C in [0.003, 0.01, 0.03, 0.1, 1.0]:
        rlib.eval_seeds(lr(F[0], C), label=f"{name} {size} crop{crop} mean C={C}")
