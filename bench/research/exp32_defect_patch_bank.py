"""A bank of the *unusual* patches of Defect tiles beside the bank of Free patches.

The product's bank per label holds patches of every Defect tile, mostly normal surface, so a patch's
distance to it says little. Here the Defect bank keeps only the TOP patches of each Defect training tile
that lie farthest from the Free bank (2,000 patches, exp25's coreset), and a patch scores
d_free - d_defect (near known defects, far from normal surface). Per image: the largest, the mean of
the 5 largest, and the largest ratio d_free / d_defect. Protocol and caches of exp26 (three splits;
each about 90 s); compared with the product's stacker on the held-out tiles, alone, with the linear
logit, and added to the product's stacker.

Run: SPLITS=3 RCACHE=/tmp/vl_research python bench/research/exp32_defect_patch_bank.py
"""
import os, sys, time, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
sys.argv = [sys.argv[0], '448'] + sys.argv[1:]
from exp23_patch_knn import patches, coreset, FOLDS
from exp25_refit_many_splits import splits, BANK
from exp26_stackers import compute, print_paired, record, with_score
SPLITS = int(os.environ.get('SPLITS', 3)); TOP = int(os.environ.get('TOP', 16))

def nearest(Q, B, bb):
    d2 = (Q * Q).sum(1)[:, None] + bb[None, :] - 2 * Q @ B.T
    return np.sqrt(np.maximum(d2.min(1), 0))

def banks(P, y, inner, seed):
    free = coreset(P[inner[y[inner] == 0]].reshape(-1, P.shape[2]), BANK, seed).astype(np.float32)
    fb = (free * free).sum(1)
    dp = []
    for i in inner[y[inner] == 1]:
        Q = P[i].astype(np.float32); d = nearest(Q, free, fb)
        dp.append(Q[np.argsort(d)[-TOP:]])
    dbank = np.concatenate(dp)
    return free, fb, dbank, (dbank * dbank).sum(1)

def score(P, idx, bk):
    free, fb, dbank, db = bk; out = []
    for i in idx:
        Q = P[i].astype(np.float32)
        a = nearest(Q, free, fb); b = nearest(Q, dbank, db)
        s = np.sort(a - b)
        out.append([s[-1], s[-5:].mean(), (a / (b + 1e-6)).max()])
    return np.array(out)

res = {}
P = patches()
for seed in range(SPLITS):
    t0 = time.time(); d = compute(seed, P, None)
    y, train, test, he, fold = splits(seed)
    mo = np.zeros((len(train), 3))
    for k in range(FOLDS):
        inner, val = train[fold != k], train[fold == k]
        mo[fold == k] = score(P, val, banks(P, y, inner, seed))
    ms = score(P, he, banks(P, y, train, seed))
    var = with_score(d, mo, ms, ('max', 'top5', 'ratio'))
    print(f'split {seed} {time.time()-t0:.0f}s ' + record(res, d, var), flush=True)
print_paired(res, 'product')
