"""Which stacker of the linear head and the patch scores generalises best to new magnetic-tile tiles.

exp25's protocol (SPLITS outer splits, an automatic TEST split inside, the head refitted on TRAIN + TEST
as the product serves it), with each image's distances kept as the mean of its k most unusual patches
for several k, saved once per split (RCACHE/exp26_{split}.npz) and then compared: the product's stacker
(logistic regression, C = 1, on the standardised linear logit and one score per label), other strengths,
the scores alone, and the difference of the two labels' scores.

Run: RCACHE=/tmp/vl_research python bench/research/exp26_stackers.py [SPLITS]
"""
import os, sys, time, numpy as np
from pathlib import Path
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
sys.path.insert(0, os.path.dirname(__file__))
SPLITS = int(sys.argv[1]) if len(sys.argv) > 1 else 12
sys.argv = [sys.argv[0], '448']
from exp11_heldout_features import CACHE
from exp20_subclasses import VIEWS
from exp21_squash_views import squash_feats
from exp23_patch_knn import coreset, lr_logit, patches, FOLDS
from exp25_refit_many_splits import splits, BANK
from heldout_common import mf1
from visionloop.engines.calibration import Calibrator, expected_calibration_error

KS = (1, 3, 5, 10, 30)


def near(P, idx, bank):
    """(n, len(KS)): per image, the mean of its k largest nearest-bank distances for each k in KS."""
    B = bank.astype(np.float32)
    bb = (B * B).sum(1)
    out = []
    for k in range(0, len(idx), 8):
        Q = P[idx[k:k + 8]].astype(np.float32)
        n, m, D = Q.shape
        Qf = Q.reshape(-1, D)
        d2 = (Qf * Qf).sum(1)[:, None] + bb[None, :] - 2 * Qf @ B.T
        d = np.sort(np.sqrt(np.maximum(d2.min(1), 0)).reshape(n, m), 1)
        out.append(np.stack([d[:, -kk:].mean(1) for kk in KS], 1))
    return np.concatenate(out)


def bank_scores(P, y, inner, query, seed):
    """(n, 2 labels, len(KS))."""
    return np.stack([near(P, query, coreset(P[inner[y[inner] == lab]].reshape(-1, P.shape[2]), BANK, seed))
                     for lab in (0, 1)], 1)


def compute(seed, P, F):
    f = Path(f'{CACHE}/exp26_{seed}.npz')
    if f.exists():
        return dict(np.load(f))
    t0 = time.time()
    y, train, test, he, fold = splits(seed)
    both = np.concatenate([train, test])
    oof = np.zeros(len(train)); s_oof = np.zeros((len(train), 2, len(KS)))
    for k in range(FOLDS):
        inner, val = train[fold != k], train[fold == k]
        oof[fold == k] = lr_logit([X[inner] for X in F], y[inner], [X[val] for X in F])
        s_oof[fold == k] = bank_scores(P, y, inner, val, seed)
    ask = np.concatenate([test, he])
    out = dict(y_train=y[train], y_test=y[test], y_he=y[he], fold=fold, oof=oof, s_oof=s_oof,
               lin=lr_logit([X[train] for X in F], y[train], [X[ask] for X in F]),
               lin_t=lr_logit([X[both] for X in F], y[both], [X[ask] for X in F]),
               s=bank_scores(P, y, train, ask, seed))
    np.savez(f, **out)
    print(f'split {seed}: {time.time() - t0:.0f}s', flush=True)
    return out


def stack(Z, yz, Zq, C=1.0):
    sc = StandardScaler().fit(Z)
    return LogisticRegression(C=C).fit(sc.transform(Z), yz).decision_function(sc.transform(Zq))


def oof_stack(d, j, C=1.0):
    """The stacker's own out-of-fold decisions on TRAIN (each fold's from a stacker fitted on the others)."""
    Z = np.column_stack([d['oof'], d['s_oof'][:, :, j]]); out = np.zeros(len(Z))
    for k in np.unique(d['fold']):
        v = d['fold'] == k
        out[v] = stack(Z[~v], d['y_train'][~v], Z[v], C)
    return out


def calibrated(d, j, C=1.0):
    """Held-out (confidence of the top label, right or not) with the product's calibrator (temperature
    and a floor of uniform probability) fitted on the stacker's out-of-fold decisions."""
    two = lambda z: np.column_stack([np.zeros_like(z), z])
    cal = Calibrator().fit(two(oof_stack(d, j, C)), d['y_train'])
    nt = len(d['y_test'])
    z = stack(np.column_stack([d['oof'], d['s_oof'][:, :, j]]), d['y_train'],
              np.column_stack([d['lin_t'][nt:], d['s'][nt:, :, j]]), C)
    p = cal.transform(two(z))
    return p.max(1), p.argmax(1) == d['y_he']


def variants(d):
    """name -> decision function on the held-out tiles (the served head, refitted on TEST)."""
    nt = len(d['y_test'])
    lin, oof = d['lin_t'][nt:], d['oof']
    S, So = d['s'][nt:], d['s_oof']
    out = {'linear': lin}
    for j, k in enumerate(KS):
        for C in (1.0, 0.1, 0.01):
            out[f'stack top{k} C{C}'] = stack(np.column_stack([oof, So[:, :, j]]), d['y_train'], np.column_stack([lin, S[:, :, j]]), C)
        out[f'scores only top{k}'] = stack(So[:, :, j], d['y_train'], S[:, :, j])
        out[f'stack diff top{k}'] = stack(np.column_stack([oof, So[:, 0, j] - So[:, 1, j]]), d['y_train'], np.column_stack([lin, S[:, 0, j] - S[:, 1, j]]))
    out['stack all k'] = stack(np.column_stack([oof, So.reshape(len(oof), -1)]), d['y_train'], np.column_stack([lin, S.reshape(len(lin), -1)]), 0.1)
    return out


def with_score(d, s_oof, s_he, names):
    """Held-out decision functions of the product's stacker and of one more per-image score (column j of
    ``s_oof`` on TRAIN out of fold, of ``s_he`` on the held-out tiles, named ``names[j]``): alone, with
    the linear logit, and added to the product's inputs."""
    nt = len(d['y_test'])
    lin, oof, S, So, yt = d['lin_t'][nt:], d['oof'], d['s'][nt:, :, 0], d['s_oof'][:, :, 0], d['y_train']
    out = {'product': stack(np.column_stack([oof, So]), yt, np.column_stack([lin, S]))}
    for j, name in enumerate(names):
        out[f'{name} alone'] = stack(s_oof[:, [j]], yt, s_he[:, [j]])
        out[f'lin+{name}'] = stack(np.column_stack([oof, s_oof[:, j]]), yt, np.column_stack([lin, s_he[:, j]]))
        out[f'product+{name}'] = stack(np.column_stack([oof, So, s_oof[:, j]]), yt, np.column_stack([lin, S, s_he[:, j]]))
    return out


def record(res, d, var):
    """Add each variant's held-out macro F1 (decision function > 0) to ``res``; the split's figures."""
    for name, z in var.items():
        res.setdefault(name, []).append(mf1(d['y_he'], (z > 0).astype(int)))
    return ' '.join(f'{k}={v[-1]:.3f}' for k, v in res.items())


def print_paired(res, base):
    """Mean held-out macro F1 of each variant over the splits, and its paired difference to ``base``."""
    b = np.array(res[base])
    for name, v in res.items():
        v = np.array(v); dv = v - b
        print(f'  {name:24s} {v.mean():.3f} (sd {v.std():.3f})  vs product {dv.mean():+.3f} '
              f'(se {dv.std(ddof=1) / np.sqrt(len(dv)):.3f}, wins {int((dv > 0).sum())}, losses {int((dv < 0).sum())})')


if __name__ == '__main__':
    P = patches()
    F = [squash_feats('magnetic-tile', v) for v in VIEWS]
    data = [compute(seed, P, F) for seed in range(SPLITS)]
    del P
    res = {}
    for d in data:
        for name, z in variants(d).items():
            res.setdefault(name, []).append(mf1(d['y_he'], (z > 0).astype(int)))
    print(f'held-out macro F1 at arg-max over {SPLITS} splits (the product: stack top1 C1.0 = {np.mean(res["stack top1 C1.0"]):.3f})')
    print_paired(res, 'stack top1 C1.0')
    print('held-out calibration, pooled over the splits (ECE, 15 bins; share of wrong answers below 70 %):')
    for j, k in enumerate(KS):
        for C in (1.0, 0.1):
            conf, hit = map(np.concatenate, zip(*[calibrated(d, j, C) for d in data]))
            wrong = ~hit
            print(f'  stack top{k} C{C}: ECE {expected_calibration_error(conf, hit):.3f}, accuracy {hit.mean():.3f}, '
                  f'mean confidence {conf.mean():.3f}, wrong below 70 % {(conf[wrong] < 0.7).mean():.0%} of {wrong.sum()}')
    # What a perfectly calibrated model with these confidences would show: its ECE measured on one
    # split's held-out tiles (hits drawn with the stated probabilities), and the share of its wrong
    # answers below 70 % (each image wrong with probability 1 - confidence).
    rng = np.random.default_rng(0)
    conf, hit = map(np.concatenate, zip(*[calibrated(d, 0) for d in data]))
    per_split = int(round(len(conf) / len(data)))
    sim = [expected_calibration_error(c, rng.random(len(c)) < c) for c in
           (rng.choice(conf, per_split, replace=False) for _ in range(200))]
    miss = 1 - conf
    print(f'a perfectly calibrated model with the product stack\'s confidences: ECE on {per_split} images '
          f'{np.mean(sim):.3f} on average (95th percentile {np.percentile(sim, 95):.3f}); '
          f'wrong answers below 70 %: {miss[conf < 0.7].sum() / miss.sum():.0%}')
    per = [expected_calibration_error(*calibrated(d, 0)) for d in data]
    print(f'the product stack\'s ECE split by split: mean {np.mean(per):.3f}, range {min(per):.3f}-{max(per):.3f}')
