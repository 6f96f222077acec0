"""What learning TEST does, and how far TEST's F1 is from new tiles, over many magnetic-tile splits.

Three held-out splits of 31 tiles could not say whether refitting the head on TRAIN + TEST after the
evaluation helps or hurts on magnetic-tile (-0.057 to +0.001 through the product), nor whether the
reported TEST F1 is biased: the split alone moves a figure by 0.1. Here, on cached features (exp21's
seven views of the whole image, exp23's patches at 448 px), the product's steps are simulated on
SPLITS outer splits (20 % of the tiles held out, `heldout_common.magnetic(seed)`); inside the rest the
automatic split moves 20 % of the tiles of each label to TEST. Per split, at arg-max on the held-out
tiles:

- linear: the head on TRAIN; linear+T: the same head fitted on TRAIN + TEST (what the product serves);
- stack: the stacker (linear head's out-of-fold logit + per-label patch scores, exp24) with banks and
  head of TRAIN; stack+T: the head refitted on TRAIN + TEST, banks and stacker unchanged (the product);
  stack+TB: the head refitted and the banks rebuilt from TRAIN + TEST too;
- the same stack with each label's score the mean of its 5 most unusual patches instead of the maximum
  (top5).

Also printed: the F1 each model scores on TEST (what the product reports) minus its held-out F1.

Run: RCACHE=/tmp/vl_research python bench/research/exp25_refit_many_splits.py [SPLITS]
"""
import os, sys, time, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
sys.path.insert(0, os.path.dirname(__file__))
SPLITS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
sys.argv = [sys.argv[0], '448']
from exp20_subclasses import VIEWS
from exp21_squash_views import squash_feats
from exp23_patch_knn import coreset, lr_logit, patches, FOLDS
from heldout_common import magnetic, mf1

TOPK = 5
BANK = 2000


def near(P, idx, bank):
    """Per image: (largest, mean of the TOPK largest) distance of its patches to their nearest bank patch."""
    B = bank.astype(np.float32)
    bb = (B * B).sum(1)
    mx, tk = [], []
    for k in range(0, len(idx), 8):
        Q = P[idx[k:k + 8]].astype(np.float32)
        n, m, D = Q.shape
        Qf = Q.reshape(-1, D)
        d2 = (Qf * Qf).sum(1)[:, None] + bb[None, :] - 2 * Qf @ B.T
        d = np.sqrt(np.maximum(d2.min(1), 0)).reshape(n, m)
        d.sort(1)
        mx.extend(d[:, -1]); tk.extend(d[:, -TOPK:].mean(1))
    return np.array(mx), np.array(tk)


def bank_scores(P, y, inner, query, seed):
    """(max, top-k) scores of ``query`` against one bank per label built from ``inner``."""
    cols = [near(P, query, coreset(P[inner[y[inner] == lab]].reshape(-1, P.shape[2]), BANK, seed)) for lab in (0, 1)]
    return np.stack([c[0] for c in cols], 1), np.stack([c[1] for c in cols], 1)


def split_test(tr, y, g, seed):
    rng = np.random.default_rng(1000 + seed)
    test = []
    for lab in (0, 1):
        gs = np.array(sorted(set(g[tr][y[tr] == lab]))); rng.shuffle(gs)
        pick = set(gs[:max(1, round(0.2 * len(gs)))])
        test += [i for i in tr if y[i] == lab and g[i] in pick]
    test = np.array(sorted(test))
    return np.setdiff1d(tr, test), test


def splits(seed):
    """Labels, TRAIN, TEST (the automatic split inside), held-out tiles, and TRAIN's fold per image
    (folds of whole tiles) for outer split ``seed``."""
    _, y, tr, he, g = magnetic(seed)
    train, test = split_test(tr, y, g, seed)
    rng = np.random.default_rng(seed)
    groups = np.array(sorted(set(g[train]))); rng.shuffle(groups)
    fold_of = {gr: k % FOLDS for k, gr in enumerate(groups)}
    return y, train, test, he, np.array([fold_of[g[i]] for i in train])


def stacker(Z, yz):
    sc = StandardScaler().fit(Z)
    m = LogisticRegression(C=1.0).fit(sc.transform(Z), yz)
    return lambda A: m.decision_function(sc.transform(A))


def run(seed, P, F):
    t0 = time.time()
    y, train, test, he, fold = splits(seed)
    both = np.concatenate([train, test])
    oof = np.zeros(len(train))
    s_oof = [np.zeros((len(train), 2)), np.zeros((len(train), 2))]
    for k in range(FOLDS):
        inner, val = train[fold != k], train[fold == k]
        oof[fold == k] = lr_logit([X[inner] for X in F], y[inner], [X[val] for X in F])
        for a, b in zip(s_oof, bank_scores(P, y, inner, val, seed)):
            a[fold == k] = b
    ask = np.concatenate([test, he])
    lin = lr_logit([X[train] for X in F], y[train], [X[ask] for X in F])
    lin_t = lr_logit([X[both] for X in F], y[both], [X[ask] for X in F])
    s_tr = bank_scores(P, y, train, ask, seed)
    s_tb = bank_scores(P, y, both, ask, seed)
    nt = len(test)
    out = {}

    def record(name, z):
        out[name] = (mf1(y[test], (z[:nt] > 0).astype(int)), mf1(y[he], (z[nt:] > 0).astype(int)))

    record('linear', lin)
    record('linear+T', lin_t)
    for j, kind in enumerate(('max', 'top5')):
        f = stacker(np.column_stack([oof, s_oof[j]]), y[train])
        record(f'stack {kind}', f(np.column_stack([lin, s_tr[j]])))
        record(f'stack {kind}+T', f(np.column_stack([lin_t, s_tr[j]])))
        record(f'stack {kind}+TB', f(np.column_stack([lin_t, s_tb[j]])))
    print(f'split {seed} ({time.time() - t0:.0f}s): ' + ', '.join(f'{k} {v[1]:.3f} (TEST {v[0]:.3f})' for k, v in out.items()), flush=True)
    return out


if __name__ == '__main__':
    P = patches()
    F = [squash_feats('magnetic-tile', v) for v in VIEWS]
    rows = [run(seed, P, F) for seed in range(SPLITS)]
    print(f'mean over {SPLITS} splits: held-out macro F1 (sd), TEST minus held-out (mean, sd of the difference)')
    for k in rows[0]:
        h = np.array([r[k][1] for r in rows]); d = np.array([r[k][0] - r[k][1] for r in rows])
        print(f'  {k:16s} {h.mean():.3f} ({h.std():.3f})   gap {d.mean():+.3f} ({d.std():.3f})')
    for a, b in (('linear+T', 'linear'), ('stack max', 'linear'), ('stack max+T', 'stack max'),
                 ('stack max+TB', 'stack max+T'), ('stack top5', 'stack max'), ('stack top5+TB', 'stack max+T')):
        d = np.array([r[a][1] - r[b][1] for r in rows])
        print(f'  {a} - {b}: {d.mean():+.3f} (se {d.std(ddof=1) / np.sqrt(len(d)):.3f}, wins {int((d > 0).sum())}/{len(d)})')
