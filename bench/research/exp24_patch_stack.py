"""Per-label patch banks stacked on the linear head: the general form of exp23 for the product.

For every label a coreset of the patches of its training images (exp23's maps at 448 px); an image's
features are, per label, the distance of its most unusual patch to that label's bank. A logistic
regression on the linear head's out-of-fold logit and these scores (standardised) is the stacker;
its own out-of-fold predictions (folds grouped by tile) decide whether it is kept, as the product's
selection would. Printed per split: held-out macro F1 at the stacker's arg-max and AUROC, for banks of
the Free label alone (4000) and one bank per label (2000 each).

Run: RCACHE=/tmp/vl_research python bench/research/exp24_patch_stack.py
"""
import os, sys, time, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler
sys.path.insert(0, os.path.dirname(__file__))
sys.argv = [sys.argv[0], '448']
from exp20_subclasses import VIEWS
from exp21_squash_views import squash_feats
from exp23_patch_knn import coreset, scores, lr_logit, patches, FOLDS
from heldout_common import magnetic, mf1


def feats(P, y, inner, query, banks, seed):
    cols = []
    for lab, size in banks:
        own = inner[y[inner] == lab]
        bank = coreset(P[own].reshape(-1, P.shape[2]), size, seed)
        cols.append(scores(P, query, bank))
    return np.stack(cols, 1)


def stack_fit(Z, y):
    sc = StandardScaler().fit(Z)
    return sc, LogisticRegression(C=1.0).fit(sc.transform(Z), y)


def run(seed, P, F):
    items, y, tr, te, g = magnetic(seed)
    rng = np.random.default_rng(seed)
    groups = np.array(sorted(set(g[tr]))); rng.shuffle(groups)
    fold_of = {gr: k % FOLDS for k, gr in enumerate(groups)}
    fold = np.array([fold_of[g[i]] for i in tr])
    l_tr = np.zeros(len(tr))
    for k in range(FOLDS):
        inner = tr[fold != k]
        l_tr[fold == k] = lr_logit([X[inner] for X in F], y[inner], [X[tr[fold == k]] for X in F])
    l_te = lr_logit([X[tr] for X in F], y[tr], [X[te] for X in F])
    row = [f'seed {seed}: linear oof {mf1(y[tr], (l_tr > 0).astype(int)):.3f} held-out {mf1(y[te], (l_te > 0).astype(int)):.3f} AUROC {roc_auc_score(y[te], l_te):.3f}']
    for name, banks in (('free4000', [(0, 4000)]), ('each2000', [(0, 2000), (1, 2000)])):
        t = time.time()
        S_tr = np.zeros((len(tr), len(banks)))
        for k in range(FOLDS):
            S_tr[fold == k] = feats(P, y, tr[fold != k], tr[fold == k], banks, seed)
        S_te = feats(P, y, tr, te, banks, seed)
        Z_tr = np.column_stack([l_tr, S_tr]); Z_te = np.column_stack([l_te, S_te])
        oof = np.zeros(len(tr))
        for k in range(FOLDS):
            sc, m = stack_fit(Z_tr[fold != k], y[tr][fold != k])
            oof[fold == k] = m.decision_function(sc.transform(Z_tr[fold == k]))
        sc, m = stack_fit(Z_tr, y[tr])
        z = m.decision_function(sc.transform(Z_te))
        row.append(f'{name}: stack oof {mf1(y[tr], (oof > 0).astype(int)):.3f} held-out {mf1(y[te], (z > 0).astype(int)):.3f} AUROC {roc_auc_score(y[te], z):.3f} ({time.time() - t:.0f}s)')
    print(' | '.join(row), flush=True)


if __name__ == '__main__':
    P = patches()
    F = [squash_feats('magnetic-tile', v) for v in VIEWS]
    for seed in (0, 1, 2):
        run(seed, P, F)
