"""Check the product path: visionloop.engines backbones (helper-1) give the same linear-probe F1."""

from __future__ import annotations

import time
import warnings

import rlib
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from visionloop.engines.registry import create_backbone

warnings.simplefilter("ignore", ConvergenceWarning)
data = [p.read_bytes() for p in rlib.all_paths()]
for name in ["efficientnet-lite0", "efficientnet-lite2"]:

    def fn(name=name):
        bb = create_backbone(name, cache_dir=rlib.CACHE / "onnx", num_threads=2)
        bb.warm_up()
        t = time.perf_counter()
        e = bb.embed(data)
        dt = time.perf_counter() - t
        ef = bb.embed(data, flip=True)
        print(f"{name}: {len(data) / dt:.1f} img/s plain, flip {time.perf_counter() - t - dt:.1f}s")
        return [e, ef]

    E, EF = rlib.cached(f"product_{name}", fn)

    def lr(X, C, std):
        def fp(tr, ytr, te):
            sc = StandardScaler(with_mean=std, with_std=std).fit(X[tr])
            return (
                LogisticRegression(C=C, max_iter=300)
                .fit(sc.transform(X[tr]), ytr)
                .predict(sc.transform(X[te]))
            )

        return fp

    rlib.eval_seeds(lr(E, 0.1, True), label=f"product {name} std C=0.1")
    rlib.eval_seeds(lr(E, 1.0, False), label=f"product {name} raw C=1")
    rlib.eval_seeds(lr((E + EF) / 2, 1.0, False), label=f"product {name} raw C=1 flip-avg")
