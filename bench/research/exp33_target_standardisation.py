"""Standardising the held-out photos' features with their own statistics (transductive, "AdaBN" on the
embedding): a later session's lighting shifts every feature, and a head fitted on standardised training
features sees the shift as evidence. The product's features and head of exp22 (INT8 Lite0, seven views,
logistic regression C 0.03 on features standardised with the training mean and deviation); at
prediction the held-out features are centred on their own mean (the training deviation kept), or
centred and scaled by their own statistics. Macro F1 at arg-max on grocery's later session and on
magnetic-tile's held-out tiles (splits 0-2).

Run: RCACHE=/tmp/vl_research python bench/research/exp33_target_standardisation.py
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from exp11_heldout_features import feats
from exp20_subclasses import NET, VIEWS
from exp21_squash_views import squash_feats
from heldout_common import grocery, magnetic, mf1

def run(name, Fs, y, tr, te, C=0.03):
    Xtr = np.concatenate([F[tr] for F in Fs]).astype(np.float64)
    sc = StandardScaler().fit(Xtr)
    m = LogisticRegression(C=C, max_iter=3000).fit(sc.transform(Xtr), np.concatenate([y[tr]] * len(Fs)))
    res = []
    for mode in ('train-stats', 'test-mean', 'test-mean+std'):
        if mode == 'train-stats':
            tf = lambda V: sc.transform(V)
        else:
            Xte = np.concatenate([F[te] for F in Fs]).astype(np.float64)
            mu = Xte.mean(0); sd = Xte.std(0) + 1e-6
            if mode == 'test-mean':
                tf = lambda V: (V - mu) / sc.scale_
            else:
                tf = lambda V: (V - mu) / sd
        lg = np.mean([m.decision_function(tf(F[te].astype(np.float64))) for F in Fs], 0)
        p = (lg > 0).astype(int) if lg.ndim == 1 else m.classes_[lg.argmax(1)]
        res.append(f'{mode} {mf1(y[te], p):.3f}')
    print(name, ' | '.join(res), flush=True)

for sub in ('b20', 'all'):
    items, tr, te = grocery(sub)
    labs = sorted({l for l, _ in items}); y = np.array([labs.index(l) for l, _ in items])
    run('grocery-' + sub, [feats('grocery-produce', NET, v) for v in VIEWS], y, tr, te)
for seed in (0, 1, 2):
    items, y, tr, te, g = magnetic(seed)
    run(f'magnetic seed {seed}', [squash_feats('magnetic-tile', v) for v in VIEWS], y, tr, te)
