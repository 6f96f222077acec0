"""Transforms of the frozen features before the linear head.

Few-shot linear probes on ReLU features often gain from a power transform (sqrt, "Tukey's ladder")
or from normalising each embedding to unit length before standardising: both shrink the few very large
activations that a session's lighting or background can drive. Same features, views and head as
exp21 (INT8 Lite0, seven views as training samples, logits averaged; standardised, logistic regression
at C 0.03 / 0.1); macro F1 (arg-max) on magnetic-tile's held-out tiles (three seeds; views of the whole
image, as the product keeps there) and grocery's later session (centred views). Also a nearest class
mean on unit-length features (cosine), the simplest head a domain shift cannot overfit.

Run: RCACHE=/tmp/vl_research python bench/research/exp22_feature_transforms.py
"""
import os, sys, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
sys.path.insert(0, os.path.dirname(__file__))
from exp11_heldout_features import feats
from exp20_subclasses import NET, VIEWS
from exp21_squash_views import squash_feats
from heldout_common import grocery, magnetic, mf1

TRANSFORMS = {
    'none': lambda X: X,
    'sqrt': lambda X: np.sqrt(np.maximum(X, 0)),
    'unit': lambda X: X / np.linalg.norm(X, axis=1, keepdims=True),
    'sqrt+unit': lambda X: (lambda S: S / np.linalg.norm(S, axis=1, keepdims=True))(np.sqrt(np.maximum(X, 0))),
}


def lr(Xs_tr, y_tr, Xs_te, C):
    sc = StandardScaler().fit(np.concatenate(Xs_tr))
    m = LogisticRegression(C=C, max_iter=3000).fit(sc.transform(np.concatenate(Xs_tr)), np.concatenate([y_tr] * len(Xs_tr)))
    logits = np.mean([m.decision_function(sc.transform(V)) for V in Xs_te], 0)
    if logits.ndim == 1:
        return (logits > 0).astype(int)
    return m.classes_[logits.argmax(1)]


def ncm(Xs_tr, y_tr, Xs_te):
    unit = lambda X: X / np.linalg.norm(X, axis=1, keepdims=True)
    classes = np.unique(y_tr)
    M = np.stack([np.mean([unit(X[y_tr == c]).mean(0) for X in Xs_tr], 0) for c in classes])
    M = unit(M)
    s = np.mean([unit(X) @ M.T for X in Xs_te], 0)
    return classes[s.argmax(1)]


def run(name, Fs, y, tr, te):
    out = []
    for t, f in TRANSFORMS.items():
        Gs = [f(F.astype(np.float64)) for F in Fs]
        for C in (0.03, 0.1):
            p = lr([G[tr] for G in Gs], y[tr], [G[te] for G in Gs], C)
            out.append(f'{t} C{C} {mf1(y[te], p):.3f}')
    p = ncm([F[tr] for F in Fs], y[tr], [F[te] for F in Fs])
    out.append(f'ncm {mf1(y[te], p):.3f}')
    print(name, ' | '.join(out), flush=True)


if __name__ == '__main__':
    for seed in (0, 1, 2):
        items, y, tr, te, g = magnetic(seed)
        run(f'magnetic seed {seed}', [squash_feats('magnetic-tile', v) for v in VIEWS], y, tr, te)
    for sub in ('b20', 'all'):
        items, tr, te = grocery(sub)
        labs = sorted({l for l, _ in items}); y = np.array([labs.index(l) for l, _ in items])
        run('grocery-' + sub, [feats('grocery-produce', NET, v) for v in VIEWS], y, tr, te)
