"""Frozen-embedding baselines: resolution / crop / pooling / head normalisation, Lite0 and Lite2."""

from __future__ import annotations

import sys
import time

import numpy as np
import rlib
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.preprocessing import StandardScaler, normalize

imgs = rlib.decoded()


def feats(name, size, crop, flip=False):
    key = f"f_{name}_{size}_{crop}_{int(flip)}"

    def fn():
        sess = rlib.ort_session(name, size)
        t = time.perf_counter()
        out = []
        for i in range(0, len(imgs), 64):
            x = rlib.resize_batch(imgs[i : i + 64], size, crop, flip)
            out.append(rlib.run_sess(sess, x)[0])
        fm = np.concatenate(out)
        print(f"  {key}: {len(imgs) / (time.perf_counter() - t):.1f} img/s (incl. resize)")
        return [fm.mean((2, 3)), fm.max((2, 3)), (np.clip(fm, 1e-6, None) ** 3).mean((2, 3)) ** (1 / 3)]

    return rlib.cached(key, fn)


def bank(name: str, size: int, crops=(1.0, 0.875, 0.75)) -> dict[tuple[float, bool], np.ndarray]:
    """Mean-pooled embeddings per (crop, flip) view."""
    return {(c, f): feats(name, size, c, f)[0] for c in crops for f in (False, True)}


def lr_cv(X, norm="std"):
    def fp(tr, ytr, te):
        Xtr, Xte = X[tr], X[te]
        if norm == "l2":
            Xtr, Xte = normalize(Xtr), normalize(Xte)
        sc = StandardScaler().fit(Xtr)
        Xtr, Xte = sc.transform(Xtr), sc.transform(Xte)
        g = GridSearchCV(
            LogisticRegression(max_iter=2000),
            {"C": [0.01, 0.03, 0.1, 0.3, 1.0]},
            cv=StratifiedKFold(5, shuffle=True, random_state=0),
            scoring="f1_macro",
            n_jobs=1,
        )
        g.fit(Xtr, ytr)
        return g.predict(Xte)

    return fp


if __name__ == "__main__":
    configs = [a.split(":") for a in sys.argv[1:]] or [["efficientnet-lite2", "260", "0.875"]]
    for name, size, crop in configs:
        F = feats(name, int(size), float(crop))
        for pi, pool in enumerate(["mean", "max", "gem3"]):
            for norm in ["std", "l2"]:
                rlib.eval_seeds(lr_cv(F[pi]), label=f"{name} {size} crop{crop} {pool} {norm}")
