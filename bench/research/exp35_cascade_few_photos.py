"""Does the cascade's threshold rule hold with few training photos?

The cascade (exp29; the product's `selection._choose_cascade`) keeps the lowest threshold of 0.50, 0.51
... 0.99 at which the first two views' answer, where their softmax top probability reaches it, never
changed an out-of-fold answer of the seven views. With few photos that is thin evidence: the serve
benchmark's 5-label model (16 photos a label) kept 0.50, so two views answer every image, and two views
alone scored 0.04-0.05 below seven on grocery's later session (exp29). Here: DRAWS random sets of K
grocery-produce labels (among those with `val_*` photos), 16 random `train_*` photos each; the rule
applied on 5 out-of-fold folds; held-out macro F1 (arg-max) on every `val_*` photo of those labels with
seven views, two views, and the cascade at the chosen threshold. Cached INT8 Lite0 features (exp11),
logistic regression on standardised features at C (0.03 as in exp29; 0.3 for heads as sharp as the
product's, whose L2 is cross-validated).

Run: RCACHE=/tmp/vl_research python bench/research/exp35_cascade_few_photos.py
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from exp11_heldout_features import feats, listing
from exp20_subclasses import NET, VIEWS
from exp29_cascade import per_view_logits, softmax, FIRST
from heldout_common import mf1

GRID = np.round(np.arange(0.50, 0.995, 0.01), 2)
DRAWS = int(os.environ.get('DRAWS', 10))
PER_LABEL = 16


def cascade(L, tau):
    first, full = L[:FIRST].mean(0), L.mean(0)
    early = softmax(first).max(1) >= tau
    return np.where(early[:, None], first, full).argmax(1), early


def choose(Fs, y, tr, C, seed):
    fold = np.random.default_rng(seed).permutation(len(tr)) % 5
    L = np.zeros((len(Fs), len(tr), len(np.unique(y[tr]))))
    for k in range(5):
        a, b = tr[fold != k], tr[fold == k]
        _, L[:, fold == k] = per_view_logits([F[a] for F in Fs], y[a], [F[b] for F in Fs], C)
    full = L.mean(0).argmax(1)
    for tau in GRID:
        if (cascade(L, tau)[0] == full).all():
            return float(tau)
    return None


if __name__ == '__main__':
    items = listing('grocery-produce')
    labels = np.array([lab for lab, _ in items])
    is_val = np.array([p.name.startswith('val_') for _, p in items])
    with_val = sorted({lab for lab in labels[is_val] if (labels[~is_val] == lab).sum() >= PER_LABEL})
    Fs = [feats('grocery-produce', NET, v) for v in VIEWS]
    for K in (3, 5, 10, 20):
        for C in (0.03, 0.3):
            rows = []
            for draw in range(DRAWS):
                rng = np.random.default_rng(100 * K + draw)
                labs = sorted(rng.choice(with_val, K, replace=False))
                y = np.array([labs.index(lab) if lab in labs else -1 for lab in labels])
                tr = np.concatenate([rng.choice(np.flatnonzero((y == k) & ~is_val), PER_LABEL, replace=False) for k in range(K)])
                te = np.flatnonzero((y >= 0) & is_val)
                _, L = per_view_logits([F[tr] for F in Fs], y[tr], [F[te] for F in Fs], C)
                tau = choose(Fs, y, tr, C, draw)
                seven, two = mf1(y[te], L.mean(0).argmax(1)), mf1(y[te], L[:FIRST].mean(0).argmax(1))
                if tau is None:
                    casc, early = seven, 0.0
                else:
                    p, e = cascade(L, tau)
                    casc, early = mf1(y[te], p), e.mean()
                rows.append((seven, two, casc, early, np.nan if tau is None else tau, len(te)))
            r = np.array(rows)
            d = r[:, 2] - r[:, 0]
            print(f'K {K:2d} C {C}: seven {r[:, 0].mean():.3f}, two {r[:, 1].mean():.3f}, cascade {r[:, 2].mean():.3f} '
                  f'(vs seven {d.mean():+.3f}, se {d.std(ddof=1) / np.sqrt(len(d)):.3f}, worse in {(d < 0).sum()} of {len(d)}, '
                  f'worst {d.min():+.3f}); threshold {np.nanmin(r[:, 4]):.2f}-{np.nanmax(r[:, 4]):.2f} '
                  f'(none {np.isnan(r[:, 4]).sum()}), early {r[:, 3].mean():.0%}, {r[:, 5].mean():.0f} held-out photos a draw',
                  flush=True)
