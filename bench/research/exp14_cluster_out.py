import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from heldout_common import *
from sklearn.cluster import KMeans
G = 'grocery-produce'; N = 'efficientnet-lite0'
V = load(G, N, ['full', 'full-flip', 'crop-tl', 'crop-tr', 'crop-bl', 'crop-br', 'crop-c50'])
for subset in ('b20', 'all'):
    items, tr, te = grocery(subset)
    labs = sorted({items[i][0] for i in tr}); li = {l: k for k, l in enumerate(labs)}
    y = np.array([li.get(l, -1) for l, _ in items])
    predict, m = fit_lr([f[tr] for f in V], y[tr], 0.1)
    p = predict([f[te] for f in V]).argmax(1)
    print(subset, 'val', round(mf1(y[te], p), 3))
    for k in (3, 5):
        # cluster each label's train images into k visual clusters
        fold = np.empty(len(items), int)
        X = V[0] / np.linalg.norm(V[0], axis=1, keepdims=True)
        for l in labs:
            idx = np.array([i for i in tr if items[i][0] == l])
            km = KMeans(k, n_init=4, random_state=0).fit(X[idx])
            # order clusters randomly then assign cluster c -> fold c
            fold[idx] = km.labels_
        preds = np.empty(len(items), int)
        for f in range(k):
            vt = tr[fold[tr] == f]; tt = tr[fold[tr] != f]
            pr, _ = fit_lr([v[tt] for v in V], y[tt], 0.1)
            preds[vt] = pr([v[vt] for v in V]).argmax(1)
        print(subset, f'cluster-out CV k={k}', round(mf1(y[tr], preds[tr]), 3))
