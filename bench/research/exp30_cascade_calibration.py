"""One calibrator or one per stage for the cascade's two kinds of logits (grocery, later session).

The cascade (docs/training.md step 4) serves the mean logits of two views where they are sure and of
seven elsewhere, and one temperature is fitted on both kinds of out-of-fold logits (grouped folds and
held-out scenes, as the product). Here: the product's fit_classifier on grocery20's (or all grocery's)
`train_*` photos (no TEST split), its out-of-fold logits captured, and on the `val_*` photos of the
later session the held-out ECE and the share of wrong answers below 70 % with (A) one calibrator on the
cascade's logits (the product), (B) one calibrator per stage (fitted on the out-of-fold images each
stage answered), (C) no cascade (every view; one calibrator on the seven views' logits).

Run: PYTHONPATH=. python bench/research/exp30_cascade_calibration.py grocery20|grocery
"""
import sys, numpy as np
from pathlib import Path
sys.path.insert(0, 'bench')
import visionloop.engines.selection as sel
from heldout import grocery
from visionloop.engines.artifact import logits_to_proba
from visionloop.engines.calibration import Calibrator, expected_calibration_error
from visionloop.engines.recipe import CASCADE_VIEWS, TrainingRecipe

which = sys.argv[1] if len(sys.argv) > 1 else 'grocery20'
train, held, _ = grocery(Path('../shared/datasets'), which == 'grocery20')
labels = sorted(train)
imgs, ys = [], []
for k in labels:
    for p in train[k]:
        imgs.append(p.read_bytes()); ys.append(labels.index(k))
spy = {}
orig = sel._choose_cascade
def capture(clf, search, scene_first):
    spy.update(first=search.first, full=search.holdout, idx=search.holdout_index, sfirst=scene_first,
               sfull=clf.scene_holdout_logits_)
    return orig(clf, search, scene_first)
sel._choose_cascade = capture
clf = sel.fit_classifier(imgs, [[y] for y in ys], len(labels), recipe=TrainingRecipe())
t = clf.cascade_
y = np.array(ys)[spy['idx']]
first = np.vstack([spy['first'], spy['sfirst'][spy['idx']]]) if spy['sfull'] is not None else spy['first']
full = np.vstack([spy['full'], spy['sfull'][spy['idx']]]) if spy['sfull'] is not None else spy['full']
yy = np.concatenate([y, y]) if spy['sfull'] is not None else y
early = logits_to_proba(first, False).max(1) >= t
casc = np.where(early[:, None], first, full)

hy = np.array([labels.index(k) for k in labels for _ in held.get(k, [])])
himgs = [p.read_bytes() for k in labels for p in held.get(k, [])]
per_view = [clf.head_.decision_function(v) for v in clf.features(himgs).values()]
hfirst, hfull = np.mean(per_view[:CASCADE_VIEWS], 0), np.mean(per_view, 0)
hearly = logits_to_proba(hfirst, False).max(1) >= t
hcasc = np.where(hearly[:, None], hfirst, hfull)


def report(name, p):
    conf, ok = p.max(1), p.argmax(1) == hy
    print(f'{name:34s} ECE {expected_calibration_error(conf, ok):.3f}, accuracy {ok.mean():.3f}, mean confidence '
          f'{conf.mean():.3f}, wrong below 70 %: {(conf[~ok] < 0.7).sum()} of {(~ok).sum()}')


print(f'{which}: cascade threshold {t}, {early.mean():.0%} of the out-of-fold and {hearly.mean():.0%} of the held-out images early')
report('A: one calibrator (the product)', Calibrator('softmax').fit(casc, yy).transform(hcasc))
c1, c2 = Calibrator('softmax').fit(first[early], yy[early]), Calibrator('softmax').fit(full[~early], yy[~early])
pb = np.where(hearly[:, None], c1.transform(hfirst), c2.transform(hfull))
report('B: one calibrator per stage', pb)
report('C: no cascade', Calibrator('softmax').fit(full, yy).transform(hfull))
