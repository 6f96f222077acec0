"""Magnetic-tile, split by tile (heldout_common.magnetic): global average vs max vs GeM pooling of
EfficientNet-Lite0's last feature map, at 224 px and at 448 px (a 14×14 map), the image and its mirror
as training samples and averaged at prediction; logistic regression (README.md, "Patch pooling")."""
import os, sys, time, numpy as np, torch
sys.path.insert(0, os.path.dirname(__file__)); sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))
from heldout_common import magnetic, mf1
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from visionloop.engines.registry import create_backbone
from visionloop.engines.preprocess import preprocess_batch
import dataclasses
torch.set_num_threads(2)
CACHE = os.environ.get('RCACHE', '/tmp/vl_research')
items, y, tr, te, g = magnetic()
bb = create_backbone('efficientnet-lite0')
net = bb.torch_module().net.eval()
def maps(size, flip):
    f = f'{CACHE}/magnetic_l0map_{size}_{int(flip)}.npz'
    if os.path.exists(f):
        return dict(np.load(f))
    p = dataclasses.replace(bb.spec.preprocessing, input_size=size, resize_size=round(size * 256 / 224))
    out = {'avg': [], 'max': [], 'gem': []}
    t = time.time()
    for s in range(0, len(items), 32):
        x = preprocess_batch([q.read_bytes() for _, q in items[s:s+32]], p, flip=flip)
        with torch.no_grad():
            m = net.extract_features(torch.from_numpy(x))
        out['avg'].append(m.mean((2, 3)).numpy()); out['max'].append(m.amax((2, 3)).numpy())
        out['gem'].append(m.clamp(min=1e-6).pow(3).mean((2, 3)).pow(1 / 3).numpy())
    out = {k: np.concatenate(v) for k, v in out.items()}
    print('maps', size, flip, f'{time.time()-t:.0f}s', flush=True)
    np.savez(f, **out); return out
def run(F, tag, C=0.1):
    X = np.concatenate([f[tr] for f in F]); Y = np.concatenate([y[tr]] * len(F))
    sc = StandardScaler().fit(X); m = LogisticRegression(C=C, max_iter=5000).fit(sc.transform(X), Y)
    lo = np.mean([m.decision_function(sc.transform(f[te])) for f in F], 0)
    print(f'{tag:40s} C {C}: macro F1 {mf1(y[te], (lo > 0).astype(int)):.3f}', flush=True)
for size in (224, 448):
    a, b = maps(size, False), maps(size, True)
    for k in ('avg', 'max', 'gem'):
        for C in (0.01, 0.1):
            run([a[k], b[k]], f'{size} {k}', C)
    for C in (0.01, 0.1):
        run([np.hstack([a['avg'], a['max']]), np.hstack([b['avg'], b['max']])], f'{size} avg|max', C)
