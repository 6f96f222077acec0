"""Frozen-feature controls for the fine-tuning runs: the same 4 training views (full, flip, zoom 0.75,
zoom flip), test on full+flip or on all 4; Lite2 alone and Lite2+Lite0; L2 fixed at the value CV
picks most often (1e-3)."""

from __future__ import annotations

import numpy as np
import rlib
from exp01_frozen import bank

from visionloop.engines.heads import LinearHead

B2 = bank("efficientnet-lite2", 260)
B0 = bank("efficientnet-lite0", 224)
BC = {k: np.concatenate([B2[k], B0[k]], 1) for k in B2}
V2 = [(1.0, False), (1.0, True)]
V4 = V2 + [(0.75, False), (0.75, True)]


def linear(B, train_views, test_views, l2=1e-3):
    def fp(tr, ytr, te):
        X = np.concatenate([B[v][tr] for v in train_views])
        h = LinearHead(l2, n_labels=20).fit(X, np.concatenate([ytr] * len(train_views)))
        return np.mean([h.decision_function(B[v][te]) for v in test_views], 0).argmax(1)

    return fp


for name, B in [("lite2", B2), ("lite2+lite0", BC)]:
    rlib.eval_seeds(linear(B, V4, V2), label=f"frozen {name} train4 test2")
    rlib.eval_seeds(linear(B, V4, V4), label=f"frozen {name} train4 test4")
