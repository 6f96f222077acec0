"""Latent subclasses: a label made of several looks (magnetic-tile's Defect = five defect types, grocery's
Apple = several varieties) is one class to a linear head. Split each label into k-means clusters of its
training features, fit the head on the clusters, add the clusters' probabilities back per label.

Run: RCACHE=/tmp/vl_research python bench/research/exp20_subclasses.py
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from exp11_heldout_features import feats, listing
from heldout_common import grocery, magnetic, mf1
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.cluster import KMeans

NET = 'efficientnet-lite0-int8'
VIEWS = ['full', 'full-flip', 'tile-tl', 'tile-tr', 'tile-bl', 'tile-br', 'tile-centre']

def fit_predict(Xs_tr, y_tr, Xs_te, C=0.1, k=1, sub=None, seed=0):
    """Xs_*: one array per view. Returns per-parent-label probabilities on the test images."""
    classes = np.unique(y_tr)
    sc = StandardScaler().fit(np.concatenate(Xs_tr))
    if sub is None:
        sub = np.zeros(len(y_tr), int)
        if k > 1:
            mean = sc.transform(np.mean(Xs_tr, 0))
            for c in classes:
                idx = np.flatnonzero(y_tr == c)
                kk = min(k, max(1, len(idx) // 10))
                if kk > 1:
                    sub[idx] = KMeans(kk, n_init=4, random_state=seed).fit_predict(mean[idx])
    fine = y_tr * 100 + sub
    X = sc.transform(np.concatenate(Xs_tr)); Y = np.concatenate([fine] * len(Xs_tr))
    m = LogisticRegression(C=C, max_iter=3000).fit(X, Y)
    logits = np.mean([m.decision_function(sc.transform(V)) for V in Xs_te], 0)
    if logits.ndim == 1:
        logits = np.stack([-logits / 2, logits / 2], 1)
    p = np.exp(logits - logits.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
    parent = m.classes_ // 100
    return classes, np.stack([p[:, parent == c].sum(1) for c in classes], 1)

def run(name, ds, y, tr, te, oracle=None):
    Fs = [feats(ds, NET, v) for v in VIEWS]
    Xtr = [F[tr] for F in Fs]; Xte = [F[te] for F in Fs]
    for C in (0.03, 0.1):
        row = []
        for k in (1, 2, 3, 5):
            cl, P = fit_predict(Xtr, y[tr], Xte, C=C, k=k)
            row.append(f'k={k} {mf1(y[te], cl[P.argmax(1)]):.3f}')
        if oracle is not None:
            cl, P = fit_predict(Xtr, y[tr], Xte, C=C, sub=oracle[tr])
            row.append(f'oracle {mf1(y[te], cl[P.argmax(1)]):.3f}')
        print(name, f'C={C}', ' '.join(row), flush=True)

if __name__ == '__main__':
    items, y, tr, te, g = magnetic(0)
    fine = np.array(sorted({l for l, _ in items}))
    oracle = np.array([list(fine).index(l) for l, _ in items])
    run('magnetic', 'magnetic-tile', y, tr, te, oracle)
    for sub in ('b20', 'all'):
        items, tr, te = grocery(sub)
        labs = sorted({l for l, _ in items}); y = np.array([labs.index(l) for l, _ in items])
        run('grocery-' + sub, 'grocery-produce', y, tr, te)
