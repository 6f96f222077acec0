"""Why does the issue quote 0.83 (Lite2) / 0.72 (Lite0) for a linear probe? Try the usual mistakes."""

from __future__ import annotations

import warnings

import rlib
from exp01_frozen import feats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

warnings.simplefilter("ignore", ConvergenceWarning)


def lr(X, C, scale, max_iter):
    def fp(tr, ytr, te):
        Xtr, Xte = X[tr], X[te]
        if scale:
            sc = StandardScaler().fit(Xtr)
            Xtr, Xte = sc.transform(Xtr), sc.transform(Xte)
        return LogisticRegression(C=C, max_iter=max_iter).fit(Xtr, ytr).predict(Xte)

    return fp


for name, size in [("efficientnet-lite2", 260), ("efficientnet-lite0", 224)]:
    F = feats(name, size, 0.875)[0]
    for C, scale, it in [(1.0, False, 100), (1.0, False, 5000), (0.01, False, 5000), (1.0, True, 100)]:
        rlib.eval_seeds(lr(F, C, scale, it), label=f"{name} C={C} scale={scale} max_iter={it}")
