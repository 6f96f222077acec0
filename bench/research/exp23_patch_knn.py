"""PatchCore-style anomaly scores for magnetic-tile's defects.

A defect is a small local anomaly on a surface that is otherwise like every Free tile; frozen ImageNet
features pooled over the image (mean or max, exp16) do not separate it from lighting changes. PatchCore
(Roth et al. 2022) scores an image by the distance of its most unusual patch to a memory bank of patches
of normal images. Here: EfficientNet-Lite0's maps at strides 8 and 16 (the detection engine's pyramid,
ONNX Runtime), each averaged over 3x3 neighbours, the stride-16 map upsampled to the stride-8 grid and
concatenated; the bank is a greedy k-centre coreset of the patches of the Free training tiles. A training
image is scored against the bank of the other folds (grouped by tile), a held-out image against a bank
of the same size from all Free training tiles. Printed: held-out AUROC of the score, macro F1 at the
threshold chosen on the training tiles' out-of-fold scores, and the same for the product's linear head
(exp21's features) and for a head on both (logistic regression on its out-of-fold logit and the score).

Run: RCACHE=/tmp/vl_research python bench/research/exp23_patch_knn.py [SIZE] [BANK]
"""
import os, sys, time, numpy as np, torch
from pathlib import Path
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler
sys.path.insert(0, os.path.dirname(__file__))
from exp11_heldout_features import CACHE, listing
from exp20_subclasses import VIEWS
from exp21_squash_views import squash_feats
from heldout_common import magnetic, mf1
from visionloop.engines.detection.features import FeaturePyramid

SIZE = int(sys.argv[1]) if len(sys.argv) > 1 else 224
BANK = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
FOLDS = 5
torch.set_num_threads(2)


def patches():
    f = Path(f'{CACHE}/magnetic-tile_patches_{SIZE}.npy')
    if f.exists():
        return np.load(f)
    items = listing('magnetic-tile')
    pyr = FeaturePyramid(num_threads=2)
    out, t = [], time.time()
    for k in range(0, len(items), 16):
        s8, s16, _ = pyr.of_images([p.read_bytes() for _, p in items[k:k + 16]], SIZE)
        a = torch.nn.functional.avg_pool2d(s8, 3, 1, 1)
        b = torch.nn.functional.avg_pool2d(s16, 3, 1, 1)
        b = torch.nn.functional.interpolate(b, size=a.shape[-2:], mode='bilinear', align_corners=False)
        m = torch.cat([a, b], 1)  # N, D, H, W
        out.append(m.flatten(2).transpose(1, 2).numpy().astype(np.float16))
    P = np.concatenate(out)
    print('patches', P.shape, f'{time.time() - t:.0f}s', flush=True)
    np.save(f, P)
    return P


def coreset(X, n, seed=0, pool=40000):
    """Greedy k-centre selection among a random ``pool`` of the patches, on a random 64-d projection
    (as PatchCore does)."""
    rng = np.random.default_rng(seed)
    if len(X) > pool:
        X = X[rng.choice(len(X), pool, replace=False)]
    if len(X) <= n:
        return X
    Xf = X.astype(np.float32)
    proj = Xf @ rng.normal(size=(X.shape[1], 64)).astype(np.float32)
    chosen = [int(rng.integers(len(X)))]
    d = ((proj - proj[chosen[0]]) ** 2).sum(1)
    for _ in range(n - 1):
        i = int(np.argmax(d))
        chosen.append(i)
        np.minimum(d, ((proj - proj[i]) ** 2).sum(1), out=d)
    return X[chosen]


def scores(P, idx, bank):
    """Per image: the largest distance of one of its patches to the nearest patch of the bank."""
    B = bank.astype(np.float32)
    bb = (B * B).sum(1)
    out = []
    for k in range(0, len(idx), 8):
        Q = P[idx[k:k + 8]].astype(np.float32)  # n, patches, D
        n, m, D = Q.shape
        Qf = Q.reshape(-1, D)
        d2 = (Qf * Qf).sum(1)[:, None] + bb[None, :] - 2 * Qf @ B.T
        near = np.sqrt(np.maximum(d2.min(1), 0)).reshape(n, m)
        out.extend(near.max(1))
    return np.array(out)


def lr_logit(Xs_tr, y_tr, Xs_te, C=0.03):
    sc = StandardScaler().fit(np.concatenate(Xs_tr))
    m = LogisticRegression(C=C, max_iter=3000).fit(sc.transform(np.concatenate(Xs_tr)), np.concatenate([y_tr] * len(Xs_tr)))
    return np.mean([m.decision_function(sc.transform(V)) for V in Xs_te], 0)


def best_threshold(s, y):
    cands = np.unique(s)
    f = [mf1(y, (s >= c).astype(int)) for c in cands]
    return cands[int(np.argmax(f))]


def run(seed, P, F):
    items, y, tr, te, g = magnetic(seed)
    rng = np.random.default_rng(seed)
    groups = np.array(sorted(set(g[tr])))
    rng.shuffle(groups)
    fold_of = {gr: k % FOLDS for k, gr in enumerate(groups)}
    fold = np.array([fold_of[g[i]] for i in tr])
    t = time.time()
    s_tr = np.zeros(len(tr)); l_tr = np.zeros(len(tr))
    for k in range(FOLDS):
        inner = tr[fold != k]
        free = inner[y[inner] == 0]
        bank = coreset(P[free].reshape(-1, P.shape[2]), BANK, seed)
        s_tr[fold == k] = scores(P, tr[fold == k], bank)
        l_tr[fold == k] = lr_logit([X[inner] for X in F], y[inner], [X[tr[fold == k]] for X in F])
    bank = coreset(P[tr[y[tr] == 0]].reshape(-1, P.shape[2]), BANK, seed)
    s_te = scores(P, te, bank)
    l_te = lr_logit([X[tr] for X in F], y[tr], [X[te] for X in F])
    yt, ye = y[tr], y[te]
    np.savez(f'{CACHE}/exp23_scores_{SIZE}_{BANK}_{seed}.npz', s_tr=s_tr, s_te=s_te, l_tr=l_tr, l_te=l_te, yt=yt, ye=ye)
    row = [f'seed {seed} ({time.time() - t:.0f}s)']
    for name, a, b in (('patch', s_tr, s_te), ('linear', l_tr, l_te)):
        c = best_threshold(a, yt)
        row.append(f'{name}: AUROC oof {roc_auc_score(yt, a):.3f} held-out {roc_auc_score(ye, b):.3f} F1 {mf1(ye, (b >= c).astype(int)):.3f} (argmax-free thr)')
    row.append(f'linear F1 at 0: {mf1(ye, (l_te >= 0).astype(int)):.3f}')
    Z = np.stack([l_tr, s_tr], 1); sc = StandardScaler().fit(Z)
    st = LogisticRegression(C=1.0).fit(sc.transform(Z), yt)
    zt = st.decision_function(sc.transform(Z)); ze = st.decision_function(sc.transform(np.stack([l_te, s_te], 1)))
    c = best_threshold(zt, yt)
    row.append(f'both: AUROC {roc_auc_score(ye, ze):.3f} F1 {mf1(ye, (ze >= c).astype(int)):.3f} (at 0: {mf1(ye, (ze >= 0).astype(int)):.3f})')
    print(' | '.join(row), flush=True)


if __name__ == '__main__':
    P = patches()
    F = [squash_feats('magnetic-tile', v) for v in VIEWS]
    for seed in (0, 1, 2):
        run(seed, P, F)
