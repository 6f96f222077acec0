"""End to end through visionloop.engines.recipe: embed + fit + evaluate on the benchmark split.

Usage: exp08_recipe.py [--mode fast|best] [--seeds 0,1,2] [--blocked] [--max-seconds S]
Embeddings are not cached between runs here (each seed pays the full embedding cost), so the
printed times are what a user would wait for a first training."""

from __future__ import annotations

import argparse
import ast
import time

import numpy as np
from grocery_subset import DEFAULT_DATASET, make_split
from sklearn.metrics import f1_score

from visionloop.engines.recipe import TrainingRecipe
from visionloop.engines.selection import fit_classifier

ap = argparse.ArgumentParser()
ap.add_argument("--mode", default="fast")
ap.add_argument("--seeds", default="0,1,2")
ap.add_argument("--blocked", action="store_true")
ap.add_argument("--max-seconds", type=float, default=None)
ap.add_argument("--set", action="append", default=[], help="expert override key=python-literal")
a = ap.parse_args()
over = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in a.set)}
scores, times = [], []
for seed in [int(s) for s in a.seeds.split(",")]:
    s = make_split(DEFAULT_DATASET, seed, blocked=a.blocked)
    tr = [p.read_bytes() for p in s.train_paths]
    te = [p.read_bytes() for p in s.test_paths]
    t0 = time.perf_counter()
    recipe = TrainingRecipe(mode=a.mode, seed=0, max_seconds=a.max_seconds, **over)
    clf = fit_classifier(tr, [[y] for y in s.train_labels], len(s.labels), recipe=recipe)
    t1 = time.perf_counter()
    pred = clf.predict_proba(te).argmax(1)
    t2 = time.perf_counter()
    f1 = f1_score(s.test_labels, pred, average="macro")
    scores.append(f1)
    times.append(t2 - t0)
    p = clf.get_params()
    print(
        f"seed {seed}: F1 {f1:.3f}  total {t2 - t0:.1f}s (embed {p['timings']['embed_seconds']}s, "
        f"fit {p['timings']['fit_seconds']}s, evaluate {t2 - t1:.1f}s)  l2={p['l2']} cv={p['cv_macro_f1']} "
        f"early={p['stopped_early']} kind={p['kind']} finetune={p['finetune']}",
        flush=True,
    )
print(
    f"mode={a.mode} blocked={a.blocked} {over}: F1 {np.mean(scores):.3f} ± {np.std(scores):.3f}, "
    f"time {np.mean(times):.1f}s (max {np.max(times):.1f}s)"
)
