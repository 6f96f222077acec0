import sys, time, numpy as np, os
from pathlib import Path
CACHE = os.environ.get('RCACHE', '/tmp/vl_research')  # features, one .npy per data set, backbone and view
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from visionloop.engines.recipe import view_backbone
root = Path(__file__).resolve().parents[3] / 'shared' / 'datasets'
def listing(ds):
    out = []
    for d in sorted((root/ds).iterdir()):
        if d.is_dir():
            for p in sorted(d.iterdir()):
                if p.suffix.lower() in ('.jpg', '.png', '.jpeg'):
                    out.append((d.name, p))
    return out
def feats(ds, name, view):
    f = Path(f'{CACHE}/{ds}_{name}_{view}.npy')
    if f.exists(): return np.load(f)
    items = listing(ds)
    bb = view_backbone(name, view, num_threads=2, cache_dir=f'{CACHE}/onnx')
    imgs = [p.read_bytes() for _, p in items]
    t = time.time()
    e = bb.embed(imgs, flip=view.endswith('flip'))
    print(ds, name, view, e.shape, f'{time.time()-t:.1f}s', flush=True)
    np.save(f, e); return e
if __name__ == '__main__':
    for ds in sys.argv[1].split(','):
        for name in sys.argv[2].split(','):
            for view in sys.argv[3].split(','):
                feats(ds, name, view)
