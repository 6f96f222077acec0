"""Model selection for the training recipe: stratified group k-fold cross-validation on the training
images and the choices made with it (the linear head's L2 strength, the backbones and the views, the
estimate on held-out scenes, whether the fine-tuned network replaces the linear head), and
:func:`fit_classifier`, which runs them and returns a :class:`~visionloop.engines.artifact.FittedClassifier`.
The recipe is in :mod:`visionloop.engines.recipe`.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from visionloop.core.ports import SCENE_KEY_PREFIX
from visionloop.core.scoring import f1
from visionloop.engines.artifact import (
    ONNX_BATCH,
    EmbedFn,
    FittedClassifier,
    FloatArray,
    ProgressFn,
    concat_views,
    logits_to_proba,
    sure_enough,
)
from visionloop.engines.heads import LinearHead, torch_threads
from visionloop.engines.metrics import label_scores
from visionloop.engines.patches import PATCH_BATCH, PatchBanks, patch_maps
from visionloop.engines.preprocess import image_size
from visionloop.engines.recipe import CASCADE_VIEWS, VIEWS, TrainingRecipe, mostly_square, whole_framed
from visionloop.engines.scenes import scene_groups
from visionloop.errors import InvalidInput

T = TypeVar("T")
R = TypeVar("R")

#: A costlier candidate (more backbones, more views) must beat the cheaper one's out-of-fold macro F1 by
#: more than this: smaller differences are noise (on magnetic-tile, Lite2 won the CV by 0.007 over Lite0
#: and scored 0.08 lower on new tiles).
CHEAPER_WINS_WITHIN = 0.01
#: Out-of-scene predictions calibrate confidences only when they beat a model that learned nothing
#: (_chance_macro_f1) by this much: on magnetic-tile, whose clusters are lightings and defect types rather
#: than places, heads that never saw a cluster scored 0.38 on it (guessing: 0.48) while new tiles scored
#: 0.73, and calibrating on them made every confidence too low (held-out ECE 0.28 instead of 0.07).
SCENES_BEAT_CHANCE_BY = 0.1
#: Patch scores are cross-validated for at most this many labels (a bank per label: the distances cost
#: grows with the labels, and they were measured to help on a surface against its defects) and at most
#: this many training images (their patches are held in memory: 0.9 GB for 910 images at 448 px).
PATCH_MAX_LABELS = 4
PATCH_MAX_IMAGES = 2500
#: ... and with at least this many (unless forced): with fewer, five folds of a handful of images each
#: cannot tell whether the stack wins, and the two minutes they cost would double a small training.
PATCH_MIN_IMAGES = 100
#: The stacker's L2 strength (logistic regression on a handful of standardised columns).
STACKER_L2 = 3e-3
#: The cascade's thresholds (softmax top probability of the first views): the lowest that never changed
#: an answer of the grouped folds is kept (_choose_cascade; docs/serving.md, "The cascade").
CASCADE_GRID = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))


@dataclass
class _Deadline:
    end: float | None

    @classmethod
    def after(cls, seconds: float | None) -> _Deadline:
        return cls(None if seconds is None else time.monotonic() + seconds)

    def passed(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end


def _targets(labels: Sequence[Sequence[int]], n_labels: int, multi_label: bool) -> npt.NDArray[Any]:
    if not isinstance(n_labels, int) or n_labels < 1:
        raise InvalidInput(f"n_labels must be a positive integer, got {n_labels!r}")
    rows = [list(row) for row in labels]
    for i, row in enumerate(rows):
        if not all(isinstance(j, int | np.integer) and 0 <= j < n_labels for j in row):
            raise InvalidInput(f"image {i}: label indices must be integers in [0, {n_labels})")
        if not multi_label and len(row) != 1:
            raise InvalidInput(f"image {i}: a single-label image needs exactly one label, got {len(row)}")
    if multi_label:
        out = np.zeros((len(rows), n_labels), dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, row] = 1
        return out
    return np.array([row[0] for row in rows], dtype=np.int64)


def _chance_macro_f1(target: npt.NDArray[Any], clf: FittedClassifier) -> float:
    """The macro F1 of a model that learned nothing: the better of always answering the most frequent
    label (multi-label: every label on more than half of the images) and guessing (a label drawn
    uniformly; multi-label: each label on with probability ½), in expectation."""
    n = len(target)
    if clf.multi_label:
        freq = target.astype(float).mean(axis=0)
        constant = np.tile(np.where(freq > 0.5, 1.0, -1.0), (n, 1))
        guess_rate = 0.5
    else:
        counts = np.bincount(target, minlength=clf.n_labels)
        freq = counts / n
        constant = np.zeros((n, clf.n_labels))
        constant[:, counts.argmax()] = 1.0
        guess_rate = 1.0 / clf.n_labels
    # a guess is right as often as the label occurs (precision) and names it at guess_rate (recall)
    guess = float(np.mean([f1(float(p), guess_rate) for p in freq[freq > 0]]))
    return max(_macro_f1(constant, target, clf.multi_label), guess)


def _macro_f1(logits: FloatArray, target: npt.NDArray[Any], multi_label: bool) -> float:
    """Macro F1 over the labels present in ``target`` (arg-max, or logit > 0 per label)."""
    n_labels = logits.shape[1]
    if multi_label:
        pred, truth = logits > 0, target.astype(bool)
    else:
        pred = np.eye(n_labels, dtype=bool)[logits.argmax(1)]
        truth = np.eye(n_labels, dtype=bool)[target]
    per_label = label_scores(truth, pred)[2]
    present = truth.sum(0) > 0
    return float(per_label[present].mean()) if present.any() else 0.0


def _folds(
    target: npt.NDArray[Any],
    k: int,
    seed: int,
    multi_label: bool,
    groups: Sequence[str] | None = None,
) -> list[npt.NDArray[np.int64]]:
    """Validation indices of each fold: every group on one side (each image alone without groups),
    stratified by label as far as the groups allow (sklearn's StratifiedGroupKFold, shuffled by
    ``seed``; a multi-label image is stratified by its rarest label). With fewer groups than ``k``,
    one fold per group."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold  # a second to import: not on load

    n = len(target)
    keys = list(groups) if groups is not None else [str(i) for i in range(n)]
    codes = np.unique(np.array(keys, dtype=object), return_inverse=True)[1].ravel()
    k = min(k, int(codes.max()) + 1)
    if k < 2:
        return [np.arange(n, dtype=np.int64)]
    strata = np.array(_strata(target, multi_label)) if multi_label else target
    if np.all(np.unique(strata, return_counts=True)[1] < k):
        # sklearn refuses when every label has fewer images than folds: then folds of groups alone
        splitter: GroupKFold | StratifiedGroupKFold = GroupKFold(k, shuffle=True, random_state=seed)
    else:
        splitter = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a label with fewer images than folds is in as many as it can be
        warnings.simplefilter("ignore", UserWarning)
        return [val.astype(np.int64) for _, val in splitter.split(np.zeros(n), strata, codes) if len(val)]


def fit_classifier(
    images: Sequence[bytes],
    labels: Sequence[Sequence[int]],
    n_labels: int,
    *,
    multi_label: bool = False,
    recipe: TrainingRecipe | None = None,
    progress: ProgressFn | None = None,
    embed: EmbedFn | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    groups: Sequence[str | None] | None = None,
) -> FittedClassifier:
    """Train a classifier on encoded images.

    ``labels[i]`` lists the label indices of image ``i`` (exactly one for single-label).
    ``groups[i]`` names the group of similar photos image ``i`` belongs to (None: alone); every
    cross-validation fold keeps a group on one side, so the choices made by cross-validation and the
    out-of-fold logits (calibration, thresholds) are not flattered by near-duplicates. With the
    recipe's ``scene_folds`` the groups of each label are first clustered into scenes
    (:func:`~visionloop.engines.scenes.scene_groups`) and folds hold out whole scenes.
    ``embed`` replaces ``backbone.embed`` for the frozen views (e.g. to read and fill an embedding
    cache; fine-tuning computes its own activations); ``cache_dir`` is where the backbones' ONNX
    exports are cached (default: the registry's). ``progress(fraction, stage)`` is called as the
    work advances. The recipe's ``max_seconds`` covers embedding and fitting: searches and
    fine-tuning stop early to honour it (embedding itself is not cut short, and one linear head is
    always fitted).
    """
    started = time.monotonic()
    r = (recipe or TrainingRecipe()).resolved()
    assert r.views is not None and r.predict_views is not None and r.folds is not None
    assert r.backbones is not None
    target = _targets(labels, n_labels, multi_label)
    if len(images) != len(target):
        raise InvalidInput(f"{len(images)} images but {len(target)} label lists")
    if len(target) < 2:
        raise InvalidInput("at least two training images are needed")
    if groups is not None and len(groups) != len(target):
        raise InvalidInput(f"{len(images)} images but {len(groups)} groups")
    report = progress or (lambda fraction, stage: None)
    deadline = _Deadline.after(r.max_seconds)
    clf = FittedClassifier(r, n_labels, multi_label, cache_dir)
    share = 0.3 if r.finetune else 0.6
    probe = _framing_probe(r, images)
    first = (r.backbones[0],)
    report(0.0, f"embedding images (0 of {len(images)})")
    acts: dict[str, npt.NDArray[np.float16]] = {}
    if r.finetune:
        acts, by_view = _activations(clf, images, _all_views(r), lambda f, s: report(share * f, s))
        found = {(r.backbones[0], view): x for view, x in by_view.items()}
    elif probe is not None:
        # oblong images: the first backbone's prediction views, centred and of the whole image, first;
        # the other views and backbones are embedded in the framing cross-validation keeps
        probe_views = [*probe.centred, *probe.whole]
        found = clf.embeddings(images, first, probe_views, embed, lambda f, s: report(0.4 * share * f, s))
    else:
        found = clf.embeddings(images, r.backbones, _all_views(r), embed, lambda f, s: report(share * f, s))
    clf.timings_["embed_seconds"] = time.monotonic() - started

    fit_started = time.monotonic()
    # Folds keep each group of similar photos on one side; with scene_folds, each label's groups are
    # first clustered into scenes by what they look like (engines.scenes) and folds hold out whole scenes.
    fold_groups = [g if g is not None else f"image:{i}" for i, g in enumerate(groups or [None] * len(target))]
    if r.scene_folds:
        fold_groups = scene_groups(
            found[r.backbones[0], r.predict_views[0]], _strata(target, multi_label), groups, seed=r.seed
        )
    if len(set(fold_groups)) < 2:
        clf.warnings_.append(
            "all training images form one group of similar photos: cross-validation had to split it, "
            "so the choices it made and the calibration may be optimistic"
        )
        fold_groups = [str(i) for i in range(len(target))]
    folds = _folds(target, r.folds, r.seed, multi_label, fold_groups)
    clf.n_groups_ = len(set(fold_groups))
    searched: dict[Candidate, _Search] = {}

    def cross_validate(candidate: Candidate, part: ProgressFn) -> _Search:
        if candidate not in searched:
            names, views, predict_views = candidate
            val_views = [concat_views(found, names, v) for v in predict_views]
            train_views = [concat_views(found, names, v) for v in views]
            result = _search_l2(train_views, val_views, target, folds, clf, deadline, part)
            key = ",".join(views)
            clf.view_scores_[key] = max(clf.view_scores_.get(key, 0.0), result.best)
            clf.backbone_scores_["+".join(names)] = max(
                clf.backbone_scores_.get("+".join(names), 0.0), result.best
            )
            searched[candidate] = result
        return searched[candidate]

    if probe is not None:
        centred = cross_validate(
            (first, probe.centred, probe.centred), _part(report, 0.4 * share, 0.45 * share)
        )
        whole = cross_validate((first, probe.whole, probe.whole), _part(report, 0.45 * share, 0.5 * share))
        if whole.best > centred.best + CHEAPER_WINS_WITHIN:
            r = clf.recipe = dataclasses.replace(r, views=probe.whole_train, predict_views=probe.whole)
        embed_started = time.monotonic()
        # the probe's views are embedded; the rest of every backbone's, a part of the progress bar each
        to_embed = {name: [v for v in _all_views(r) if (name, v) not in found] for name in r.backbones or ()}
        to_embed = {name: todo for name, todo in to_embed.items() if todo}
        for i, (name, todo) in enumerate(to_embed.items()):
            low, high = (0.5 + 0.5 * i / len(to_embed)) * share, (0.5 + 0.5 * (i + 1) / len(to_embed)) * share
            found.update(clf.embeddings(images, (name,), todo, embed, _part(report, low, high)))
        embedding = time.monotonic() - embed_started
        clf.timings_["embed_seconds"] += embedding
        fit_started += embedding  # fit_seconds counts fitting only
    assert r.backbones is not None and r.views is not None and r.predict_views is not None
    patches = None
    if r.patch_scores and not r.finetune:
        patch_started = time.monotonic()
        patches = _patch_scores(clf, images, target, folds, deadline, _part(report, share, share + 0.05))
        clf.timings_["patch_seconds"] = time.monotonic() - patch_started
        fit_started += clf.timings_["patch_seconds"]  # fit_seconds counts fitting only
    candidates = _candidates(r)
    search: _Search | None = None
    chosen = candidates[0]
    for ci, candidate in enumerate(candidates):
        if search is not None and deadline.passed():
            clf.stopped_early_ = True
            break
        # after the patch scores' share; ends at share + 0.1 exactly, where the head's fit reports
        part = _part(
            report, share + 0.05 * (1 + ci / len(candidates)), share + 0.05 * (1 + (ci + 1) / len(candidates))
        )
        result = cross_validate(candidate, part)
        if search is None or result.best > search.best + CHEAPER_WINS_WITHIN:
            search, chosen = result, candidate
    assert search is not None
    names, views, predict_views = chosen
    if chosen != (tuple(r.backbones), tuple(r.views), tuple(r.predict_views)):
        r = clf.recipe = dataclasses.replace(r, backbones=names, views=views, predict_views=predict_views)
    clf._backbones = {k: bb for k, bb in clf._backbones.items() if k.split("|")[0] in names}
    clf._bases = {name: bb for name, bb in clf._bases.items() if name in names}
    train_views = [concat_views(found, names, v) for v in views]
    report(share + 0.1, "fitting the linear head")
    clf.head_ = _fit_head(train_views, target, clf, search)
    clf.kind_ = "linear"
    clf.timings_["fit_seconds"] = time.monotonic() - fit_started
    scene_first: FloatArray | None = None
    if r.scene_estimate and r.predict_views and not deadline.passed():
        scene_started = time.monotonic()
        report(share + 0.12, "cross-validating on new scenes")
        val_views = [concat_views(found, names, v) for v in r.predict_views]
        scene = _scene_estimate(
            found[names[0], r.predict_views[0]], train_views, val_views, target, clf, search.l2
        )
        if scene is not None:
            clf.scene_cv_macro_f1_ = scene[0]
            learnable = scene[0] >= _chance_macro_f1(target, clf) + SCENES_BEAT_CHANCE_BY
            clf.scenes_learnable_ = learnable
            clf.scene_holdout_logits_ = scene[1] if r.calibrate_on_scenes and learnable else None
            scene_first = scene[2]
        clf.timings_["scene_estimate_seconds"] = time.monotonic() - scene_started
    if patches is not None:
        _maybe_stack(clf, patches, target, folds, search)
    if r.finetune:
        ft_started = time.monotonic()
        _maybe_finetune(clf, acts, target, folds, search, deadline, _part(report, share + 0.12, 0.99))
        clf.timings_["finetune_seconds"] = time.monotonic() - ft_started
    if r.cascade:
        _choose_cascade(clf, search, scene_first)
    report(1.0, "done")
    return clf


def _choose_cascade(clf: FittedClassifier, search: _Search, scene_first: FloatArray | None) -> None:
    """Keep a cascade (``clf.cascade_``) for a single-label linear head without patch scores: the lowest
    threshold of CASCADE_GRID at which the first CASCADE_VIEWS views' answer, wherever their softmax top
    probability reaches it, is the answer of all the prediction views on every image of the grouped
    folds (out of fold). The out-of-fold logits the calibrator, the thresholds and the review guide are
    fitted on (the grouped folds', and the held-out scenes' when the calibrator uses them) become the
    cascade's, as served. (Held-out scenes are not asked never to change: on grocery-produce they would
    have set 0.98–0.99, two views answering a third of a later session's photos, where 0.8–0.92 answered
    60–70 % of them at the same macro F1.)"""
    if clf.kind_ != "linear" or clf.patches_ is not None or clf.multi_label or search.first is None:
        return
    if clf.holdout_logits_ is not search.holdout or search.holdout is None:
        return  # the out-of-fold logits are another model's
    top = logits_to_proba(search.first, False).max(axis=1)
    changed = search.first.argmax(axis=1) != search.holdout.argmax(axis=1)
    worst = float(top[changed].max()) if changed.any() else 0.0
    threshold = next((t for t in CASCADE_GRID if t > worst), None)
    if threshold is None:
        clf.cascade_report_ = {"kept": False, "worst_changed_top_probability": round(worst, 4)}
        return

    def served(f: FloatArray, a: FloatArray) -> FloatArray:
        return np.where(sure_enough(f, threshold)[:, None], f, a)

    clf.cascade_ = threshold
    clf.cascade_report_ = {
        "views": list((clf.recipe.predict_views or ())[:CASCADE_VIEWS]),
        "answered_by_first_views_cv": round(float(np.mean(top >= threshold)), 4),
    }
    clf.holdout_logits_ = served(search.first, search.holdout)
    if clf.scene_holdout_logits_ is not None and scene_first is not None:
        clf.scene_holdout_logits_ = served(scene_first, clf.scene_holdout_logits_)


def refit_with(
    clf: FittedClassifier,
    images: Sequence[bytes],
    labels: Sequence[Sequence[int]],
    embed: EmbedFn | None = None,
) -> bool:
    """Fit the kept linear head again on ``images`` (the training images and more, e.g. the TEST images
    once they have been evaluated), with everything cross-validation chose kept as it is: backbones,
    views, L2 strength; the out-of-fold logits (calibration, thresholds) stay those of the first fit.
    Returns False, changing nothing, for a fine-tuned network (its fit is too costly to repeat)."""
    if clf.kind_ != "linear" or clf.l2_ is None:
        return False
    r = clf.recipe
    assert r.backbones is not None and r.views is not None
    target = _targets(labels, clf.n_labels, clf.multi_label)
    if len(images) != len(target):
        raise InvalidInput(f"{len(images)} images but {len(target)} label lists")
    found = clf.embeddings(images, r.backbones, r.views, embed)
    views = [concat_views(found, r.backbones, v) for v in r.views]
    clf.head_ = _make_head(clf, clf.l2_).fit(*_stack(views, target, np.arange(len(target))), init=clf.head_)
    return True


def _scene_estimate(
    embeddings: FloatArray,
    train_views: Sequence[FloatArray],
    val_views: Sequence[FloatArray],
    target: npt.NDArray[Any],
    clf: FittedClassifier,
    l2: float,
) -> tuple[float, FloatArray, FloatArray] | None:
    """Out-of-fold macro F1 (and the logits, and those of the first CASCADE_VIEWS views) when each fold
    holds out whole *scenes*: each label's images clustered by what they look like (k-means on the
    embeddings, engines.scenes), ignoring groups. A model judged on scenes it has not seen scored on
    grocery-produce what it scored on photos of a later session (0.86 vs 0.87); when new photos look
    like the training ones (one camera, one lighting) it is pessimistic.
    None when no label has enough images for scenes."""
    scenes = scene_groups(embeddings, _strata(target, clf.multi_label), None, seed=clf.recipe.seed)
    if not any(key.startswith(SCENE_KEY_PREFIX) for key in scenes):
        return None
    folds = _folds(target, clf.recipe.folds or 5, clf.recipe.seed, clf.multi_label, scenes)
    if len(folds) < 2:
        return None
    n = len(target)
    oof = np.zeros((n, clf.n_labels))
    first = np.zeros((n, clf.n_labels))

    def fit(val: npt.NDArray[np.int64]) -> LinearHead:
        return _make_head(clf, l2).fit(*_stack(train_views, target, np.setdiff1d(np.arange(n), val)))

    for val, head in zip(folds, _in_parallel(fit, folds, _workers(clf)), strict=True):
        per_view = [head.decision_function(v[val]) for v in val_views]
        oof[val] = np.mean(per_view, axis=0)
        first[val] = np.mean(per_view[:CASCADE_VIEWS], axis=0)
    return _macro_f1(oof, target, clf.multi_label), oof, first


Candidate = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # backbones, train views, predict views


def _candidates(r: TrainingRecipe) -> list[Candidate]:
    """(backbones, training views, prediction views) to cross-validate, the cheapest first: a costlier
    one must win by more than CHEAPER_WINS_WITHIN. With ``search_views`` the whole-image views alone
    (the image and its mirror, for training and prediction) compete with the recipe's views: tiles
    help with produce on shelves and small defects, not with one centred logo."""
    assert r.backbones is not None and r.views is not None and r.predict_views is not None
    backbone_sets = [tuple(r.backbones)]
    if r.search_backbones and len(r.backbones) > 1:
        backbone_sets = [(name,) for name in r.backbones] + [tuple(r.backbones)]
    full = (tuple(r.views), tuple(r.predict_views))
    view_sets = [full]
    image = tuple(v for v in r.predict_views if VIEWS[v].region is None and VIEWS[v].zoom == 1.0)
    if r.search_views and image and (image, image) != full:
        view_sets = [(image, image), full]
    return [(names, train, predict) for names in backbone_sets for train, predict in view_sets]


def _all_views(r: TrainingRecipe) -> list[str]:
    """Every view some candidate trains or predicts on."""
    return list(dict.fromkeys(v for _, train, predict in _candidates(r) for v in (*train, *predict)))


@dataclass(frozen=True)
class _FramingProbe:
    centred: tuple[str, ...]  # the recipe's prediction views
    whole: tuple[str, ...]  # the same of the whole image
    whole_train: tuple[str, ...]  # the recipe's training views of the whole image


def _framing_probe(r: TrainingRecipe, images: Sequence[bytes]) -> _FramingProbe | None:
    """The prediction views centred and of the whole image, to cross-validate on the first backbone
    before anything else, when the recipe searches framing and at least OBLONG_SHARE of the images are
    oblong (their centre square leaves part of them unseen); None otherwise. Not with fine-tuning."""
    assert r.views is not None and r.predict_views is not None
    if not r.search_framing or r.finetune:
        return None
    whole_train, whole_predict = whole_framed(r.views), whole_framed(r.predict_views)
    if whole_train is None or whole_predict is None:
        return None
    if mostly_square([image_size(b) for b in images]):
        return None
    return _FramingProbe(tuple(r.predict_views), whole_predict, whole_train)


def _strata(target: npt.NDArray[Any], multi_label: bool) -> list[str]:
    """Each image's stratum for scene clustering: its label, or its rarest label (multi-label)."""
    if not multi_label:
        return [str(int(t)) for t in target]
    counts = target.sum(0)
    out = []
    for row in target:
        present = np.flatnonzero(row)
        out.append(str(int(present[np.argmin(counts[present])])) if len(present) else "none")
    return out


def _part(report: ProgressFn, start: float, end: float) -> ProgressFn:
    return lambda fraction, stage: report(start + (end - start) * fraction, stage)


def _activations(
    clf: FittedClassifier, images: Sequence[bytes], views: Sequence[str], report: ProgressFn
) -> tuple[dict[str, npt.NDArray[np.float16]], dict[str, FloatArray]]:
    """Per view: activations before the last blocks (float16) and the frozen embedding, in one pass."""
    from visionloop.engines.finetune import prefix_module
    from visionloop.engines.onnx_runtime import OnnxSession, cached_onnx, export_onnx

    r = clf.recipe
    assert r.backbones is not None and r.finetune_blocks is not None
    name, n_blocks = r.backbones[0], r.finetune_blocks
    base = clf._view_backbone(name, views[0])
    key = f"{name}-{base.spec.version}-prefix{n_blocks}"
    path = cached_onnx(
        base.cache_dir,
        key,
        lambda: export_onnx(
            prefix_module(base.torch_module(), n_blocks), base.spec.input_size, ["activations", "embedding"]
        ),
    )
    session = OnnxSession(path, r.num_threads)
    acts: dict[str, npt.NDArray[np.float16]] = {}
    feats: dict[str, FloatArray] = {}
    for vi, view in enumerate(views):
        bb = clf._view_backbone(name, view)
        a_parts, e_parts = [], []
        for start in range(0, len(images), ONNX_BATCH):
            out = session.run(bb.preprocess(images[start : start + ONNX_BATCH], flip=VIEWS[view].flip))
            a_parts.append(out["activations"].astype(np.float16))
            e_parts.append(out["embedding"].astype(np.float64))
            seen = min(len(images), start + ONNX_BATCH) / len(images)
            where = f"{min(len(images), start + ONNX_BATCH)} of {len(images)}"
            report((vi + seen) / len(views), f"embedding images ({where}, pass {vi + 1} of {len(views)})")
        acts[view], feats[view] = np.concatenate(a_parts), np.concatenate(e_parts)
    return acts, feats


@dataclass
class _Search:
    l2: float
    scores: dict[float, float] = field(default_factory=dict)
    holdout: FloatArray | None = None
    holdout_index: npt.NDArray[np.int64] | None = None
    first: FloatArray | None = None  # the holdout images' logits from the first CASCADE_VIEWS views

    @property
    def best(self) -> float:
        """The out-of-fold macro F1 of the chosen L2 strength."""
        return self.scores[self.l2]


def _make_head(clf: FittedClassifier, l2: float) -> LinearHead:
    return LinearHead(l2, n_labels=clf.n_labels, multi_label=clf.multi_label)


def _workers(clf: FittedClassifier) -> int:
    """Cross-validation folds fitted at once: one thread each (on 2 cores, 5 folds took 4.4 s instead of
    7.5 s with the same weights, bit for bit)."""
    return max(1, clf.recipe.num_threads or 1)


def _in_parallel(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[fn(item) for item in items]``, up to ``workers`` at a time in threads (torch and NumPy release
    the GIL in their kernels), each head fitted with one torch thread."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with torch_threads(1), ThreadPoolExecutor(min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def _stack(
    views: Sequence[FloatArray], target: npt.NDArray[Any], idx: npt.NDArray[Any]
) -> tuple[FloatArray, Any]:
    x = np.concatenate([v[idx] for v in views])
    y = np.concatenate([target[idx]] * len(views))
    return x, y


def _search_l2(
    train_views: Sequence[FloatArray],
    val_views: Sequence[FloatArray],
    target: npt.NDArray[Any],
    folds: Sequence[npt.NDArray[np.int64]],
    clf: FittedClassifier,
    deadline: _Deadline,
    report: ProgressFn,
) -> _Search:
    """Cross-validate each candidate L2 strength; keep the best (ties → the stronger penalty)."""
    r = clf.recipe
    assert r.l2_grid is not None
    grid = (r.l2,) if r.l2 is not None else tuple(sorted(set(r.l2_grid), reverse=True))
    n = len(target)
    best: _Search | None = None
    scores: dict[float, float] = {}
    previous: dict[int, LinearHead] = {}  # warm starts along the path, per fold
    workers = _workers(clf)
    cascade = len(val_views) > CASCADE_VIEWS
    for gi, l2 in enumerate(grid):
        oof = np.zeros((n, clf.n_labels))
        first = np.zeros((n, clf.n_labels))  # the first CASCADE_VIEWS views' mean (the cascade)
        done: list[npt.NDArray[np.int64]] = []
        for start in range(0, len(folds), workers):
            if deadline.passed() and (best is not None or done):
                break
            batch = list(range(start, min(len(folds), start + workers)))

            def fit(fi: int, l2: float = l2) -> LinearHead:
                train = np.setdiff1d(np.arange(n), folds[fi])
                return _make_head(clf, l2).fit(*_stack(train_views, target, train), init=previous.get(fi))

            for fi, head in zip(batch, _in_parallel(fit, batch, workers), strict=True):
                val = folds[fi]
                previous[fi] = head
                per_view = [head.decision_function(v[val]) for v in val_views]
                oof[val] = np.mean(per_view, axis=0)
                if cascade:
                    first[val] = np.mean(per_view[:CASCADE_VIEWS], axis=0)
                done.append(val)
                fits, total = gi * len(folds) + fi + 1, len(grid) * len(folds)
                report(
                    fits / total,
                    f"cross-validating (fold {fi + 1} of {len(folds)}, try {gi + 1} of {len(grid)})",
                )
        if len(done) < len(folds):
            clf.stopped_early_ = True
            if best is not None:
                break
        seen = np.sort(np.concatenate(done))
        score = _macro_f1(oof[seen], target[seen], clf.multi_label)
        scores[l2] = score
        if best is None or score > scores[best.l2]:
            best = _Search(l2, holdout=oof[seen], holdout_index=seen, first=first[seen] if cascade else None)
        if clf.stopped_early_:
            break
    assert best is not None
    best.scores = scores
    return best


def _set_holdout(
    clf: FittedClassifier, logits: FloatArray, index: npt.NDArray[np.int64], target: npt.NDArray[Any]
) -> None:
    clf.holdout_logits_ = logits
    clf.holdout_index_ = index
    rows = target[index]
    clf.holdout_labels_ = (
        [np.flatnonzero(row).tolist() for row in rows] if clf.multi_label else [[int(t)] for t in rows]
    )


def _fit_head(
    views: Sequence[FloatArray], target: npt.NDArray[Any], clf: FittedClassifier, search: _Search
) -> LinearHead:
    clf.l2_ = search.l2
    clf.cv_scores_ = search.scores
    assert search.holdout is not None and search.holdout_index is not None
    _set_holdout(clf, search.holdout, search.holdout_index, target)
    return _make_head(clf, search.l2).fit(*_stack(views, target, np.arange(len(target))))


@dataclass
class _PatchScores:
    """Out-of-fold patch scores of the training images (each fold's against banks of the others'
    patches), the score that stands in where a fold had no image of a label, and the banks of all
    training images (kept if the stack is)."""

    scores: FloatArray
    fill: FloatArray
    banks: PatchBanks


def _patch_scores(
    clf: FittedClassifier,
    images: Sequence[bytes],
    target: npt.NDArray[Any],
    folds: Sequence[npt.NDArray[np.int64]],
    deadline: _Deadline,
    report: ProgressFn,
) -> _PatchScores | None:
    """Patch scores for :func:`_maybe_stack`, computed before the backbones and views are searched (they
    do not depend on them, and the search stops at the deadline while these would not be tried at
    all); None, with ``patch_report_`` saying why, when they cannot be had."""
    r = clf.recipe
    info: dict[str, Any] = {"kept": False}
    clf.patch_report_ = info
    n = len(target)
    if clf.n_labels > PATCH_MAX_LABELS:
        info["reason"] = f"more than {PATCH_MAX_LABELS} labels"
        return None
    if n > PATCH_MAX_IMAGES:
        info["reason"] = f"more than {PATCH_MAX_IMAGES} training images"
        return None
    if n < PATCH_MIN_IMAGES and not r.force_patch_scores:
        info["reason"] = f"fewer than {PATCH_MIN_IMAGES} training images"
        return None
    if len(folds) < 2:
        info["reason"] = "no cross-validation to judge them on"
        return None
    report(0.0, f"patch scores (0 of {n} images)")
    pyramid = clf.pyramid()
    started = time.monotonic()
    parts = []
    step = 4 * PATCH_BATCH
    for start in range(0, n, step):
        parts.append(patch_maps(pyramid, images[start : start + step], r.patch_size))
        done = min(n, start + step)
        report(0.5 * done / n, f"patch scores ({done} of {n} images)")
        remaining = _remaining(deadline)
        # the maps of the rest, and scoring every image about as long again
        if remaining is not None and (time.monotonic() - started) * (2 * n / done - 1) > remaining:
            clf.stopped_early_ = True
            info["reason"] = "not enough time for patch scores"
            return None
    maps = np.concatenate(parts)
    del parts
    member = target.astype(bool) if clf.multi_label else np.eye(clf.n_labels, dtype=bool)[target]

    def banks_of(idx: npt.NDArray[np.int64]) -> PatchBanks:
        return PatchBanks.build(
            maps, [idx[member[idx, k]] for k in range(clf.n_labels)], r.patch_size, r.patch_bank, r.seed
        )

    scores = np.full((n, clf.n_labels), np.nan)
    for fi, val in enumerate(folds):
        scores[val] = banks_of(np.setdiff1d(np.arange(n), val)).scores(maps[val])
        report(0.5 + 0.45 * (fi + 1) / len(folds), f"patch scores (fold {fi + 1} of {len(folds)})")
        if deadline.passed():
            clf.stopped_early_ = True
            info["reason"] = "not enough time for patch scores"
            return None
    fill = np.nan_to_num(np.nanmean(np.where(np.isnan(scores).all(0), 0.0, scores), axis=0))
    scores = np.where(np.isnan(scores), fill[None, :], scores)
    banks = banks_of(np.arange(n, dtype=np.int64))
    report(1.0, "patch scores")
    return _PatchScores(scores, fill, banks)


def _maybe_stack(
    clf: FittedClassifier,
    patches: _PatchScores,
    target: npt.NDArray[Any],
    folds: Sequence[npt.NDArray[np.int64]],
    search: _Search,
) -> None:
    """Cross-validate the kept linear head's out-of-fold logits stacked with the patch scores (a
    logistic regression on both, judged on each fold after fitting on the others). Kept only if its
    out-of-fold macro F1 beats the linear head's on the same images by more than CHEAPER_WINS_WITHIN
    (or the recipe forces it); ``patch_report_`` says which and why."""
    r = clf.recipe
    info = clf.patch_report_
    assert search.holdout is not None and search.holdout_index is not None
    seen = search.holdout_index
    features = np.concatenate([search.holdout, patches.scores[seen]], axis=1)
    position = {int(i): k for k, i in enumerate(seen)}
    fold_rows = [
        np.array([position[int(i)] for i in val if int(i) in position], dtype=np.int64) for val in folds
    ]
    fold_rows = [rows for rows in fold_rows if len(rows)]
    if len(fold_rows) < 2:  # the search stopped after one fold: nothing to fit the stacker on
        info["reason"] = "no cross-validation to judge them on"
        return
    stacked = np.zeros((len(seen), clf.n_labels))
    for rows in fold_rows:
        rest = np.setdiff1d(np.arange(len(seen)), rows)
        head = _make_head(clf, STACKER_L2).fit(features[rest], target[seen][rest])
        stacked[rows] = head.decision_function(features[rows])
    score_stack = _macro_f1(stacked, target[seen], clf.multi_label)
    score_linear = _macro_f1(search.holdout, target[seen], clf.multi_label)
    info.update({"cv_macro_f1": round(score_stack, 4), "linear_cv_macro_f1": round(score_linear, 4)})
    wins = score_stack > score_linear + CHEAPER_WINS_WITHIN
    if not wins and not r.force_patch_scores:
        info["reason"] = "the linear head alone was as good on validation"
        return
    clf.patches_ = patches.banks
    clf.stacker_ = _make_head(clf, STACKER_L2).fit(features, target[seen])
    clf.patch_fill_ = patches.fill
    why = "better out-of-fold macro F1" if wins else "forced by the recipe"
    info.update({"kept": True, "reason": why, "size": r.patch_size, "bank": r.patch_bank})
    _set_holdout(clf, stacked, seen, target)
    # the out-of-scene logits are the linear head's alone: calibrating the stack on them would mix scales
    clf.scene_holdout_logits_ = None


# Fixed costs of fine-tuning on top of the training epochs (the ONNX export and its checks), seconds.
_EXPORT_SECONDS = 30.0


def _maybe_finetune(
    clf: FittedClassifier,
    acts: Mapping[str, npt.NDArray[np.float16]],
    target: npt.NDArray[Any],
    folds: Sequence[npt.NDArray[np.int64]],
    search: _Search,
    deadline: _Deadline,
    report: ProgressFn,
) -> None:
    """Cross-validate fine-tuning on the linear head's folds; keep it only if its out-of-fold macro F1
    beats the linear head's on the same images, and only if the final fit fits in the budget."""
    from visionloop.engines.finetune import TailFinetuner

    r = clf.recipe
    assert r.views is not None and r.predict_views is not None and r.backbones is not None
    base = clf._view_backbone(r.backbones[0], r.views[0])
    module = base.torch_module()
    n = len(target)
    train_views = [acts[v] for v in r.views]
    val_views = [acts[v] for v in r.predict_views]

    def tuner() -> TailFinetuner:
        return TailFinetuner(
            r.finetune_blocks or 1,
            r.epochs or 1,
            r.lr or 3e-4,
            n_labels=clf.n_labels,
            multi_label=clf.multi_label,
            seed=r.seed,
            num_threads=r.num_threads,
        )

    oof = np.zeros((n, clf.n_labels))
    done: list[npt.NDArray[np.int64]] = []
    per_sample: float | None = None
    steps = len(folds) + 1
    report_info: dict[str, Any] = {"folds_done": 0, "kept": False}
    for fi, val in enumerate(folds):
        train = np.setdiff1d(np.arange(n), val)
        remaining = _remaining(deadline)
        if per_sample is not None and remaining is not None:
            needed = per_sample * (r.epochs or 1) * (len(train) + n) + _EXPORT_SECONDS
            if needed > remaining:
                break
        report(fi / steps, f"fine-tuning (fold {fi + 1} of {len(folds)})")
        model = tuner().fit(module, [v[train] for v in train_views], target[train], deadline.passed)
        if model.epochs_run_ < (r.epochs or 1):
            break  # the deadline passed during the fold
        per_sample = model.seconds_per_sample_
        oof[val] = model.decision_function([v[val] for v in val_views])
        done.append(val)
    report_info["folds_done"] = len(done)
    if len(done) < len(folds):
        clf.stopped_early_ = True
    if len(done) < 2:
        report_info["reason"] = "not enough time to cross-validate fine-tuning"
        clf.finetune_report_ = report_info
        return
    seen = np.sort(np.concatenate(done))
    assert search.holdout is not None and search.holdout_index is not None
    linear_oof = np.zeros((n, clf.n_labels))
    linear_oof[search.holdout_index] = search.holdout
    covered = np.isin(seen, search.holdout_index)
    seen = seen[covered]
    score_ft = _macro_f1(oof[seen], target[seen], clf.multi_label)
    score_linear = _macro_f1(linear_oof[seen], target[seen], clf.multi_label)
    report_info.update({"cv_macro_f1": round(score_ft, 4), "linear_cv_macro_f1": round(score_linear, 4)})
    if score_ft <= score_linear and not r.force_finetune:
        report_info["reason"] = "the linear head was as good on validation"
        clf.finetune_report_ = report_info
        return
    remaining = _remaining(deadline)
    assert per_sample is not None
    if remaining is not None and per_sample * (r.epochs or 1) * n + _EXPORT_SECONDS > remaining:
        clf.stopped_early_ = True
        report_info["reason"] = "not enough time left for the final fine-tuning"
        clf.finetune_report_ = report_info
        return
    report(len(folds) / steps, "fine-tuning on all training images")
    model = tuner().fit(module, train_views, target, deadline.passed)
    if model.epochs_run_ < (r.epochs or 1):
        clf.stopped_early_ = True
        report_info["reason"] = "the deadline passed during the final fine-tuning"
        clf.finetune_report_ = report_info
        return
    report(0.97, "exporting the fine-tuned network")
    from visionloop.engines.onnx_runtime import export_onnx

    clf.onnx_ = export_onnx(model.full_module(module), base.spec.input_size, ["logits"])
    clf.kind_ = "finetuned"
    clf._session = None
    why = "better out-of-fold macro F1" if score_ft > score_linear else "forced by the recipe"
    report_info.update({"kept": True, "reason": why, **model.get_params()})
    clf.finetune_report_ = report_info
    _set_holdout(clf, oof[seen], seen, target)


def _remaining(deadline: _Deadline) -> float | None:
    return None if deadline.end is None else deadline.end - time.monotonic()
