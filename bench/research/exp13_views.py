"""Held-out sessions: views and backbones on frozen features, trained on grocery-produce's train_* photos,
measured on its val_* photos (tables in README.md, "Held-out sessions"). Needs the features of
exp11_heldout_features.py and exp12_crop_features.py (base and "more") under $RCACHE."""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from heldout_common import *
def run(train_F, test_F, tag, C=0.1, subsets=('b20', 'all')):
    for subset in subsets:
        items, tr, te = grocery(subset)
        labs = sorted({items[i][0] for i in tr}); li = {l: k for k, l in enumerate(labs)}
        y = np.array([li.get(l, -1) for l, _ in items])
        predict, m = fit_lr([f[tr] for f in train_F], y[tr], C)
        p = predict([f[te] for f in test_F]).argmax(1)
        print(tag, subset, 'C', C, 'val macroF1 %.3f acc %.3f' % (mf1(y[te], p), (p == y[te]).mean()), flush=True)
G = 'grocery-produce'; N = 'efficientnet-lite2'
if __name__ == '__main__':
    base = load(G, N, ['full', 'full-flip'])
    tiles = load(G, N, ['crop-tl', 'crop-tr', 'crop-bl', 'crop-br'])
    c50 = load(G, N, ['crop-c50'])[0]; c75 = load(G, N, ['crop-c75'])[0]
    t3 = load(G, N, ['crop-t3', 'crop-r3'])
    run(base + tiles, base, 'train full+flip+4tiles, test full+flip')
    run(base + tiles + [c50], base + tiles + [c50], 'train/test full+flip+4tiles+c50')
    run(base + [c75], base, 'train full+flip+c75, test full+flip')
    run(base + t3 + [c75], base + t3 + [c75], 'train/test full+flip+t3r3+c75')
    # patch max + mean concat
    tmax = np.max(np.stack(tiles), 0); tmean = np.mean(np.stack(tiles), 0)
    run([np.hstack([base[0], tmean])], [np.hstack([base[0], tmean])], 'concat full|tilemean')
    run([np.hstack([base[0], tmax])], [np.hstack([base[0], tmax])], 'concat full|tilemax')
    run([np.mean(np.stack(base + tiles + [c50]), 0)], [np.mean(np.stack(base + tiles + [c50]), 0)], 'avg-embedding of 7 views')
    L0 = 'efficientnet-lite0'
    seven = load(G, L0, ['full', 'full-flip', 'crop-tl', 'crop-tr', 'crop-bl', 'crop-br', 'crop-c50'])
    flips = load(G, L0, ['crop-tlf', 'crop-trf', 'crop-blf', 'crop-brf', 'crop-c50f'])
    grid = load(G, L0, [f'crop-g{i}{j}' for i in range(3) for j in range(3)])
    lite2 = load(G, N, ['full', 'full-flip', 'crop-tl', 'crop-tr', 'crop-bl', 'crop-br', 'crop-c50'])
    run(seven, seven, 'lite0 7 views')
    run(seven, [seven[0]] + seven[2:6], 'lite0 train 7 test full+4 tiles')
    run([np.hstack([a, b]) for a, b in zip(seven, lite2)], [np.hstack([a, b]) for a, b in zip(seven, lite2)], 'lite0|lite2 7 views')
    run(seven + flips, seven, 'lite0 train 12 test 7')
    run(seven + grid, seven + grid, 'lite0 16 views')
