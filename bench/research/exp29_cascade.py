"""A cascade at prediction: two views first, the other five only when the two are unsure.

The default model predicts on seven views (seven passes of INT8 Lite0 an image), which caps
DetectCustomLabels at ~48 images/s on a VNNI CPU and ~19 on one without. Here the head trained on the
seven views (logistic regression on standardised features, C 0.03) first averages its logits over the
whole image and its mirror; when the softmax's top probability is at least tau the answer stands,
otherwise the five other views are embedded and the seven averaged. Held-out macro F1 at arg-max and the
share of images answered after two views, for several tau; tau is also chosen on the training photos
(out-of-fold, 5 folds) as the lowest at which the cascade's answer agrees with the seven views' on at
least 99.5 % of the images.

Run: RCACHE=/tmp/vl_research python bench/research/exp29_cascade.py
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from exp11_heldout_features import feats
from exp20_subclasses import NET, VIEWS
from exp21_squash_views import squash_feats
from heldout_common import grocery, magnetic, mf1
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

TAUS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.01)
FIRST = 2  # VIEWS[:2] = whole image, mirror


def per_view_logits(Xs_tr, y_tr, Xs_te, C=0.03):
    sc = StandardScaler().fit(np.concatenate(Xs_tr))
    m = LogisticRegression(C=C, max_iter=3000).fit(sc.transform(np.concatenate(Xs_tr)), np.concatenate([y_tr] * len(Xs_tr)))
    out = []
    for V in Xs_te:
        z = m.decision_function(sc.transform(V))
        out.append(np.stack([-z / 2, z / 2], 1) if z.ndim == 1 else z)
    return m.classes_, np.stack(out)  # (views, n, labels)


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def cascade(L, tau):
    first, full = L[:FIRST].mean(0), L.mean(0)
    early = softmax(first).max(1) >= tau
    return np.where(early[:, None], first, full).argmax(1), early


def choose_tau(Fs, y, tr, seed=0, agree=0.995):
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(tr)) % 5
    L = np.zeros((len(Fs), len(tr), len(np.unique(y[tr]))))
    for k in range(5):
        a, b = tr[fold != k], tr[fold == k]
        _, L[:, fold == k] = per_view_logits([F[a] for F in Fs], y[a], [F[b] for F in Fs])
    full = L.mean(0).argmax(1)
    for tau in TAUS:
        if np.mean(cascade(L, tau)[0] == full) >= agree:
            return tau
    return TAUS[-1]


def run(name, Fs, y, tr, te):
    cl, L = per_view_logits([F[tr] for F in Fs], y[tr], [F[te] for F in Fs])
    row = [f'seven {mf1(y[te], cl[L.mean(0).argmax(1)]):.3f}', f'two {mf1(y[te], cl[L[:FIRST].mean(0).argmax(1)]):.3f}']
    for tau in TAUS[:-1]:
        p, early = cascade(L, tau)
        row.append(f'tau {tau}: {mf1(y[te], cl[p]):.3f} ({early.mean():.0%} early)')
    tau = choose_tau(Fs, y, tr)
    p, early = cascade(L, tau)
    row.append(f'chosen {tau}: {mf1(y[te], cl[p]):.3f} ({early.mean():.0%} early)')
    print(name, ' | '.join(row), flush=True)
    return mf1(y[te], cl[L.mean(0).argmax(1)]), mf1(y[te], cl[p]), early.mean()


if __name__ == '__main__':
    for sub in ('b20', 'all'):
        items, tr, te = grocery(sub)
        labs = sorted({l for l, _ in items}); y = np.array([labs.index(l) for l, _ in items])
        run('grocery-' + sub, [feats('grocery-produce', NET, v) for v in VIEWS], y, tr, te)
    Fs = [squash_feats('magnetic-tile', v) for v in VIEWS]
    res = []
    for seed in range(12):
        items, y, tr, te, g = magnetic(seed)
        res.append(run(f'magnetic {seed}', Fs, y, tr, te))
    r = np.array(res)
    print(f'magnetic mean: seven {r[:, 0].mean():.3f}, cascade (chosen tau) {r[:, 1].mean():.3f}, early {r[:, 2].mean():.0%}')
