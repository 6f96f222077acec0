"""Patch scores at a higher resolution than the product's 448 px.

exp23 found the patch score's held-out macro F1 rising with the resolution the tile is squashed to
(0.764 at 224 px, 0.790 at 320, 0.818 at 448; three splits), though most magnetic-tile crops are only
about 285 x 323 px: a defect magnified covers more of the network's patches. Here the product's stack
(exp26: linear logit + the largest distance to a bank of 2,000 patches per label, C = 1, the head
refitted on TRAIN + TEST) with the patches at SIZE px (640 by default: 80 x 80 patches, about twice
448's cost) against the same stack at 448 px (exp26's cache), on exp25's splits.

Run: SIZE=640 SPLITS=3 RCACHE=/tmp/vl_research python bench/research/exp34_patch_resolution.py
"""
import os, sys, time, numpy as np
from pathlib import Path
sys.path.insert(0, os.path.dirname(__file__))
SIZE = int(os.environ.get('SIZE', 640))
SPLITS = int(os.environ.get('SPLITS', 3))
sys.argv = [sys.argv[0], str(SIZE)]
import exp23_patch_knn  # noqa: E402  (reads SIZE from sys.argv once)
from exp11_heldout_features import CACHE  # noqa: E402
from exp20_subclasses import VIEWS  # noqa: E402
from exp21_squash_views import squash_feats  # noqa: E402
from exp23_patch_knn import patches, FOLDS  # noqa: E402
from exp25_refit_many_splits import splits  # noqa: E402
from exp26_stackers import bank_scores, compute, print_paired, stack  # noqa: E402
from heldout_common import mf1  # noqa: E402

assert exp23_patch_knn.SIZE == SIZE


def scores_at_size(seed, P):
    f = Path(f'{CACHE}/exp34_{SIZE}_{seed}.npz')
    if f.exists():
        return dict(np.load(f))
    t0 = time.time()
    y, train, test, he, fold = splits(seed)
    s_oof = np.zeros((len(train), 2, 5))
    for k in range(FOLDS):
        inner, val = train[fold != k], train[fold == k]
        s_oof[fold == k] = bank_scores(P, y, inner, val, seed)
    out = dict(s_oof=s_oof, s=bank_scores(P, y, train, np.concatenate([test, he]), seed))
    np.savez(f, **out)
    print(f'split {seed}: patch scores at {SIZE} px in {time.time() - t0:.0f}s', flush=True)
    return out


if __name__ == '__main__':
    F = [squash_feats('magnetic-tile', v) for v in VIEWS]
    P = patches()
    res = {}
    for seed in range(SPLITS):
        d = compute(seed, None, F)  # exp26's cache: linear logits and the 448 px scores
        e = scores_at_size(seed, P)
        nt = len(d['y_test'])
        lin, oof, yt, ye = d['lin_t'][nt:], d['oof'], d['y_train'], d['y_he']
        var = {
            'stack 448 (product)': stack(np.column_stack([oof, d['s_oof'][:, :, 0]]), yt, np.column_stack([lin, d['s'][nt:, :, 0]])),
            f'stack {SIZE}': stack(np.column_stack([oof, e['s_oof'][:, :, 0]]), yt, np.column_stack([lin, e['s'][nt:, :, 0]])),
            f'stack {SIZE}, top 5': stack(np.column_stack([oof, e['s_oof'][:, :, 2]]), yt, np.column_stack([lin, e['s'][nt:, :, 2]])),
            f'stack 448 + {SIZE}': stack(np.column_stack([oof, d['s_oof'][:, :, 0], e['s_oof'][:, :, 0]]), yt,
                                         np.column_stack([lin, d['s'][nt:, :, 0], e['s'][nt:, :, 0]])),
            f'scores {SIZE} alone': stack(e['s_oof'][:, :, 0], yt, e['s'][nt:, :, 0]),
        }
        for name, z in var.items():
            res.setdefault(name, []).append(mf1(ye, (z > 0).astype(int)))
        print(f'split {seed}: ' + ' | '.join(f'{k} {v[-1]:.3f}' for k, v in res.items()), flush=True)
    print_paired(res, 'stack 448 (product)')
