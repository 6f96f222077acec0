"""exp27's photometric views inside the product's stack (linear head + patch scores), magnetic-tile.

exp27: adding CLAHE-normalised copies of the seven views (14 training samples, 14 prediction views)
raised the linear head's held-out F1 by +0.03-0.04 over 12 splits. The product serves the stack of that
head's logit and the per-label patch scores (exp24-26), which may already hold what CLAHE adds. Here
exp26's cached patch scores and folds (RCACHE/exp26_{split}.npz) are reused, the linear head's
out-of-fold and served (TRAIN + TEST) logits recomputed on each feature set, and the product's stacker
(C = 1, largest patch distance) fitted on them. Held-out macro F1 at arg-max, SPLITS splits.

Run: RCACHE=/tmp/vl_research python bench/research/exp28_photometric_stack.py [SPLITS]
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
SPLITS = int(sys.argv[1]) if len(sys.argv) > 1 else 12
sys.argv = [sys.argv[0], '448']
from exp20_subclasses import VIEWS
from exp21_squash_views import squash_feats
from exp23_patch_knn import FOLDS
from exp25_refit_many_splits import splits
from exp26_stackers import compute, stack
from exp27_photometric import norm_feats
from heldout_common import mf1
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def logit(Xs_tr, y_tr, Xs_te, C=0.03):
    sc = StandardScaler().fit(np.concatenate(Xs_tr))
    m = LogisticRegression(C=C, max_iter=3000).fit(sc.transform(np.concatenate(Xs_tr)), np.concatenate([y_tr] * len(Xs_tr)))
    return np.mean([m.decision_function(sc.transform(V)) for V in Xs_te], 0)


def heads(F, Fpred, y, train, test, he, fold):
    """(out-of-fold logits on TRAIN, served logits on the held-out tiles): train on views F, predict on Fpred."""
    both = np.concatenate([train, test])
    oof = np.zeros(len(train))
    for k in range(FOLDS):
        inner, val = train[fold != k], train[fold == k]
        oof[fold == k] = logit([X[inner] for X in F], y[inner], [X[val] for X in Fpred])
    return oof, logit([X[both] for X in F], y[both], [X[he] for X in Fpred])


if __name__ == '__main__':
    none = [squash_feats('magnetic-tile', v) for v in VIEWS]
    clahe = [norm_feats('magnetic-tile', 'clahe', v, True) for v in VIEWS]
    sets = {'none': (none, none), 'none+clahe': (none + clahe, none + clahe),
            'none+clahe, predict none': (none + clahe, none), 'clahe': (clahe, clahe)}
    res = {}
    for seed in range(SPLITS):
        d = compute(seed, None, None)
        y, train, test, he, fold = splits(seed)
        nt = len(d['y_test'])
        S, So = d['s'][nt:, :, 0], d['s_oof'][:, :, 0]
        for name, (F, Fp) in sets.items():
            oof, lin = heads(F, Fp, y, train, test, he, fold)
            res.setdefault('linear ' + name, []).append(mf1(y[he], (lin > 0).astype(int)))
            z = stack(np.column_stack([oof, So]), y[train], np.column_stack([lin, S]))
            res.setdefault('stack ' + name, []).append(mf1(y[he], (z > 0).astype(int)))
        print(seed, ' '.join(f'{k}={v[-1]:.3f}' for k, v in res.items()), flush=True)
    base = np.array(res['stack none'])
    for name, v in res.items():
        v = np.array(v); dv = v - base
        print(f'{name:34s} {v.mean():.3f} (sd {v.std():.3f}) vs stack none {dv.mean():+.3f} '
              f'(se {dv.std(ddof=1) / np.sqrt(len(dv)):.3f}, wins {int((dv > 0).sum())}, losses {int((dv < 0).sum())})')
