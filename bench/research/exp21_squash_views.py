"""Views of the whole image, not of its centre square.

Every view of the recipe resizes the short side and centre-crops a square, and the tiles are quarters of
that square: on a magnetic-tile crop of aspect 2.4 (a third of the photos) 58 % of the image, where a
defect may be, is never seen. Here the same seven views are taken of the whole image squashed to a
square ("squash"): the quarters then cover every pixel. Logistic regression on standardised features
(C 0.03 / 0.1), views as training samples, logits averaged over the prediction views; macro F1 (arg-max)
on magnetic-tile's held-out tiles (seed 0) and grocery's later session.

Run: RCACHE=/tmp/vl_research python bench/research/exp21_squash_views.py
"""
import dataclasses, os, sys, time, numpy as np
from pathlib import Path
sys.path.insert(0, os.path.dirname(__file__))
from exp11_heldout_features import CACHE, feats, listing
from exp20_subclasses import NET, VIEWS, fit_predict
from heldout_common import grocery, magnetic, mf1
from visionloop.engines.recipe import VIEWS as VIEW_DEFS, view_backbone


def squash_feats(ds, view):
    f = Path(f'{CACHE}/{ds}_{NET}_squash_{view}.npy')
    if f.exists():
        return np.load(f)
    bb = view_backbone(NET, view, num_threads=2, cache_dir=f'{CACHE}/onnx')
    p = bb.spec.preprocessing
    bb = bb.with_preprocessing(dataclasses.replace(p, resize_mode='squash', resize_size=p.input_size))
    t = time.time()
    e = bb.embed([p.read_bytes() for _, p in listing(ds)], flip=VIEW_DEFS[view].flip)
    print(ds, 'squash', view, e.shape, f'{time.time() - t:.1f}s', flush=True)
    np.save(f, e)
    return e


def run(name, ds, y, tr, te):
    crop = [feats(ds, NET, v) for v in VIEWS]
    squash = [squash_feats(ds, v) for v in VIEWS]
    for C in (0.03, 0.1):
        row = []
        for what, Fs in (('crop', crop), ('squash', squash), ('both', crop + squash)):
            cl, P = fit_predict([F[tr] for F in Fs], y[tr], [F[te] for F in Fs], C=C)
            row.append(f'{what} {mf1(y[te], cl[P.argmax(1)]):.3f} (acc {np.mean(cl[P.argmax(1)] == y[te]):.3f})')
        print(name, f'C={C}', ' | '.join(row), flush=True)


if __name__ == '__main__':
    for seed in (0, 1, 2):
        items, y, tr, te, g = magnetic(seed)
        run(f'magnetic seed {seed}', 'magnetic-tile', y, tr, te)
    for sub in ('b20', 'all'):
        items, tr, te = grocery(sub)
        labs = sorted({l for l, _ in items}); y = np.array([labs.index(l) for l, _ in items])
        run('grocery-' + sub, 'grocery-produce', y, tr, te)
