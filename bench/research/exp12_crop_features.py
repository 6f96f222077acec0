import os, sys, time, numpy as np
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2])); sys.path.insert(0, os.path.dirname(__file__))
from PIL import Image
import io
from exp11_heldout_features import CACHE, listing
from visionloop.engines.registry import create_backbone
ds, name = sys.argv[1], sys.argv[2]
bb = create_backbone(name, num_threads=2, cache_dir=f'{CACHE}/onnx')
S = bb.spec.input_size
# crop boxes as fractions (l, t, r, b)
BOXES0 = {
 'tl': (0, 0, .5, .5), 'tr': (.5, 0, 1, .5), 'bl': (0, .5, .5, 1), 'br': (.5, .5, 1, 1), 'c50': (.25, .25, .75, .75),
 't3': (0, 0, .667, .667), 'r3': (.333, .333, 1, 1), 'c75': (.125, .125, .875, .875),
}
import itertools
third = {f'g{i}{j}': (j/3, i/3, (j+1)/3, (i+1)/3) for i in range(3) for j in range(3)}
flipped = {k + 'f': v for k, v in BOXES0.items() if k in ('tl', 'tr', 'bl', 'br', 'c50')}
BOXES = {'base': BOXES0, 'more': {**third, **flipped}}[sys.argv[3] if len(sys.argv) > 3 else 'base']
items = listing(ds)
out = {k: [] for k in BOXES}
t = time.time()
for start in range(0, len(items), 32):
    ims = [Image.open(p).convert('RGB') for _, p in items[start:start+32]]
    for k, (l, tp, r, b) in BOXES.items():
        arr = []
        for im in ims:
            w, h = im.size
            c = im.crop((int(l*w), int(tp*h), int(r*w), int(b*h))).resize((S, S), Image.BICUBIC)
            if k.endswith('f'): c = c.transpose(Image.FLIP_LEFT_RIGHT)
            arr.append(np.asarray(c, dtype=np.float32))
        x = ((np.stack(arr) - 127.0) / 128.0).transpose(0, 3, 1, 2)
        e, _ = bb.forward(x)
        out[k].append(e)
for k in BOXES:
    np.save(f'{CACHE}/{ds}_{name}_crop-{k}.npy', np.concatenate(out[k]))
print(ds, name, 'crops', time.time() - t)
