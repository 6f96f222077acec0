import os, random, re, sys, numpy as np
from pathlib import Path
sys.path.insert(0, os.path.dirname(__file__))
from exp11_heldout_features import CACHE, listing
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.metrics import f1_score

def grocery(subset):
    items = listing('grocery-produce')
    labels = [l for l, _ in items]; names = [p.name for _, p in items]
    is_val = np.array([n.startswith('val_') for n in names])
    idx_by = {}
    for i, l in enumerate(labels):
        if not is_val[i]: idx_by.setdefault(l, []).append(i)
    val_labels = {labels[i] for i in np.flatnonzero(is_val)}
    if subset == 'b20':
        cand = sorted([l for l in idx_by if l in val_labels], key=lambda l: (-len(idx_by[l]), l))[:20]
        tr = []
        for l in sorted(cand):
            tr += random.Random(0).sample(idx_by[l], min(31, len(idx_by[l])))
        te = [i for i in np.flatnonzero(is_val) if labels[i] in cand]
    else:
        tr = [i for i in range(len(items)) if not is_val[i]]
        te = list(np.flatnonzero(is_val))
    return items, np.array(sorted(tr)), np.array(te)

def tile_groups(items, gap=200):
    g = {}
    by = {}
    for i, (l, p) in enumerate(items):
        pre = re.sub(r'\d+', '#', re.sub(r'\d+$', '', p.stem)); num = int(re.findall(r'\d+', p.stem)[-1])
        by.setdefault((l, pre), []).append((num, i))
    k = 0
    for key, lst in by.items():
        lst.sort(); prev = None
        for num, i in lst:
            if prev is None or num - prev > gap: k += 1
            g[i] = k; prev = num
    return np.array([g[i] for i in range(len(items))])

def magnetic(seed=0):
    items = listing('magnetic-tile')
    y = np.array([0 if l == 'Free' else 1 for l, _ in items])
    g = tile_groups(items)
    rng = random.Random(seed); te = []
    for lab in (0, 1):
        gs = sorted(set(g[y == lab])); rng.shuffle(gs)
        pick = set(gs[:max(1, round(0.2 * len(gs)))])
        te += [i for i in range(len(items)) if y[i] == lab and g[i] in pick]
    te = np.array(sorted(te)); tr = np.setdiff1d(np.arange(len(items)), te)
    return items, y, tr, te, g

def load(ds, name, views):
    return [np.load(f'{CACHE}/{ds}_{name}_{v}.npy').astype(np.float64) for v in views]

def fit_lr(Xs, y, C=0.1):
    X = np.concatenate(Xs); Y = np.concatenate([y] * len(Xs))
    sc = StandardScaler().fit(X)
    m = LogisticRegression(C=C, max_iter=3000).fit(sc.transform(X), Y)
    return lambda Vs: np.mean([m.decision_function(sc.transform(V)) if m.decision_function(sc.transform(V)).ndim == 2 else np.stack([-m.decision_function(sc.transform(V)), m.decision_function(sc.transform(V))], 1) for V in Vs], 0), m

def mf1(y, pred):
    return f1_score(y, pred, average='macro')
