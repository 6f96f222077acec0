"""A supervised patch classifier on magnetic-tile (multiple-instance learning), stacked like the product's
patch scores.

The product's patch scores are distances to banks of training patches: unsupervised, so a lighting
artefact far from every bank patch scores like a defect. Here a logistic regression learns which patches
are defects: negatives are 100 random patches of each Free training tile; positives start as 25 random
patches of each Defect tile (most of a Defect tile is normal surface), then, ITERS times, become the TOPK
patches of each Defect tile that the current classifier scores highest (mi-SVM's relabelling). An
image's score is the mean of its k highest patch logits (k = 1, 5, 20). Same protocol and caches as
exp26 (the exp25 splits, the head refitted on TRAIN + TEST as served, 448 px patches of exp23): the
classifier is cross-validated on TRAIN's grouped folds for the stacker's out-of-fold input, and each
variant is compared with the product's stacker (linear logit + one bank score per label) on the
held-out tiles.

Run: SPLITS=12 RCACHE=/tmp/vl_research python bench/research/exp31_patch_mil.py
"""
import os, sys, time, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
sys.argv = [sys.argv[0], '448'] + sys.argv[1:]
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from exp23_patch_knn import patches, FOLDS
from exp25_refit_many_splits import splits
from exp26_stackers import compute, print_paired, record, with_score

SPLITS = int(os.environ.get('SPLITS', 12))
NEG_PER_IMG = 100
TOPK = int(os.environ.get('TOPK', 8))
ITERS = int(os.environ.get('ITERS', 2))
C = float(os.environ.get('MILC', 0.1))
POOL = [1, 5, 20]

def img_scores(m, sc, P, idx):
    out = []
    for k in range(0, len(idx), 32):
        Q = P[idx[k:k + 32]].astype(np.float32); n, mm, D = Q.shape
        s = m.decision_function(sc.transform(Q.reshape(-1, D))).reshape(n, mm)
        s = np.sort(s, 1)
        out.append(np.stack([s[:, -k2:].mean(1) for k2 in POOL], 1))
    return np.concatenate(out)

def fit_mil(P, y, inner, seed):
    rng = np.random.default_rng(seed)
    free, defect = inner[y[inner] == 0], inner[y[inner] == 1]
    m = P.shape[1]
    neg = np.concatenate([P[i][rng.choice(m, NEG_PER_IMG, replace=False)] for i in free]).astype(np.float32)
    # initial positives: random patches of defect images
    pos = np.concatenate([P[i][rng.choice(m, NEG_PER_IMG // 4, replace=False)] for i in defect]).astype(np.float32)
    for it in range(ITERS + 1):
        X = np.concatenate([neg, pos]); yy = np.r_[np.zeros(len(neg)), np.ones(len(pos))]
        sc = StandardScaler().fit(X)
        mdl = LogisticRegression(C=C, max_iter=500, class_weight='balanced').fit(sc.transform(X), yy)
        if it == ITERS:
            break
        pos = []
        for i in defect:
            Q = P[i].astype(np.float32)
            s = mdl.decision_function(sc.transform(Q))
            pos.append(Q[np.argsort(s)[-TOPK:]])
        pos = np.concatenate(pos)
    return mdl, sc

if __name__ == '__main__':
    P = patches()
    res = {}
    for seed in range(SPLITS):
        t0 = time.time()
        d = compute(seed, P, None)
        y, train, test, he, fold = splits(seed)
        mo = np.zeros((len(train), len(POOL)))
        for k in range(FOLDS):
            inner, val = train[fold != k], train[fold == k]
            mdl, sc = fit_mil(P, y, inner, seed)
            mo[fold == k] = img_scores(mdl, sc, P, val)
        mdl, sc = fit_mil(P, y, train, seed)
        ms = img_scores(mdl, sc, P, he)
        var = with_score(d, mo, ms, [f'mil top{p}' for p in POOL])
        print(f'split {seed} {time.time()-t0:.0f}s ' + record(res, d, var), flush=True)
    print_paired(res, 'product')
