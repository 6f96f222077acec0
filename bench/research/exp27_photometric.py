"""Photometric normalisation before the backbone: does it take lighting out of magnetic-tile's features?

The frozen ImageNet features do not separate magnetic-tile's defects from its lighting changes
(`exp16`). Here each image is normalised before the product's seven views of the whole image (INT8
Lite0): "grayworld" = each colour channel scaled to the image's mean grey, "clahe" = OpenCV CLAHE on the lightness (clip 2, 8 x 8 tiles), "stretch" = the lightness
standardised per image (mean 128, sd 48), colour kept. Logistic regression on standardised features,
views as training samples, logits averaged over the seven views, fitted on all the training tiles of an
outer split (what the product serves); macro F1 at arg-max on the held-out tiles of SPLITS outer splits
(`heldout_common.magnetic(seed)`), and on grocery's later session (b20, all).

Run: RCACHE=/tmp/vl_research python bench/research/exp27_photometric.py [SPLITS]
"""
import dataclasses, os, sys, time, numpy as np, cv2
from pathlib import Path
sys.path.insert(0, os.path.dirname(__file__))
from exp11_heldout_features import CACHE, listing
from exp20_subclasses import NET, VIEWS, fit_predict
from exp21_squash_views import squash_feats
from heldout_common import grocery, magnetic, mf1
from visionloop.engines.recipe import VIEWS as VIEW_DEFS, view_backbone

SPLITS = int(sys.argv[1]) if len(sys.argv) > 1 else 12


def normalise(data, how):
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    lab = cv2.cvtColor(img, cv2.COLOR_BGR2LAB)
    L = lab[:, :, 0]
    if how == 'grayworld':  # each channel scaled to the image's mean grey (white balance)
        f = img.astype(np.float32)
        m = f.reshape(-1, 3).mean(0)
        f = np.clip(f * (m.mean() / np.maximum(m, 1.0)), 0, 255).astype(np.uint8)
        ok, enc = cv2.imencode('.png', f)
        return enc.tobytes()
    if how == 'clahe':
        L = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(L)
    else:
        f = L.astype(np.float32)
        L = np.clip((f - f.mean()) / max(f.std(), 1.0) * 48 + 128, 0, 255).astype(np.uint8)
    lab[:, :, 0] = L
    ok, enc = cv2.imencode('.png', cv2.cvtColor(lab, cv2.COLOR_LAB2BGR))
    return enc.tobytes()


def norm_feats(ds, how, view, squash):
    f = Path(f'{CACHE}/{ds}_{NET}_{how}{"_squash" if squash else ""}_{view}.npy')
    if f.exists():
        return np.load(f)
    bb = view_backbone(NET, view, num_threads=2, cache_dir=f'{CACHE}/onnx')
    if squash:
        p = bb.spec.preprocessing
        bb = bb.with_preprocessing(dataclasses.replace(p, resize_mode='squash', resize_size=p.input_size))
    t = time.time()
    e = bb.embed([normalise(p.read_bytes(), how) for _, p in listing(ds)], flip=VIEW_DEFS[view].flip)
    print(ds, how, view, e.shape, f'{time.time() - t:.1f}s', flush=True)
    np.save(f, e)
    return e


def score(Fs, y, tr, te, C):
    cl, P = fit_predict([F[tr] for F in Fs], y[tr], [F[te] for F in Fs], C=C)
    return mf1(y[te], cl[P.argmax(1)])


if __name__ == '__main__':
    variants = {'none': [squash_feats('magnetic-tile', v) for v in VIEWS]}
    for how in ('clahe', 'stretch'):
        variants[how] = [norm_feats('magnetic-tile', how, v, True) for v in VIEWS]
    variants['none+clahe'] = variants['none'] + variants['clahe']
    for C in (0.03, 0.1):
        res = {k: [] for k in variants}
        for seed in range(SPLITS):
            items, y, tr, te, g = magnetic(seed)
            for k, Fs in variants.items():
                res[k].append(score(Fs, y, tr, te, C))
        for k, r in res.items():
            print(f'magnetic C={C} {k:11s} mean {np.mean(r):.3f} (se {np.std(r) / np.sqrt(len(r)):.3f})',
                  ' '.join(f'{v:.3f}' for v in r), flush=True)
        for k in variants:
            if k != 'none':
                d = np.array(res[k]) - np.array(res['none'])
                print(f'  {k} - none: {d.mean():+.3f} (se {d.std() / np.sqrt(len(d)):.3f}, wins {np.sum(d > 0)}/{len(d)})')
    from exp11_heldout_features import feats
    for sub in ('b20', 'all'):
        items, tr, te = grocery(sub)
        labs = sorted({l for l, _ in items}); y = np.array([labs.index(l) for l, _ in items])
        base = [feats('grocery-produce', NET, v) for v in VIEWS]
        cl = [norm_feats('grocery-produce', 'clahe', v, False) for v in VIEWS]
        for C in (0.03, 0.1):
            print(f'grocery-{sub} C={C} none {score(base, y, tr, te, C):.3f} clahe {score(cl, y, tr, te, C):.3f}',
                  flush=True)
