"""The default training recipe for custom image classification: what runs when a user presses *train*.

Chosen on the grocery-produce benchmark (``bench/research/README.md``)::

    fast (default)  images ──► EfficientNet-Lite2 (ONNX Runtime) on the whole image and its mirror image
                           ──► embeddings (cached by the caller through ``embed``)
                           ──► logistic-regression head, both views as training samples, its L2 strength
                               chosen by stratified k-fold cross-validation on the training images only
                           ──► prediction: logits averaged over the two views

    best            images ──► Lite2 stem + blocks[:-1] (ONNX Runtime), once per image and per view
                               (whole, mirrored, zoomed 4/3, zoomed and mirrored) ──► cached activations
                           ──► fine-tune the last block + head conv + classifier on them (finetune.py),
                               cross-validated on the same folds as the frozen-feature head; whichever
                               has the better out-of-fold macro F1 is kept (the other is discarded)
                           ──► prediction: the fine-tuned network exported to ONNX, two views averaged

The user never picks hyper-parameters; an expert may set any :class:`TrainingRecipe` field that is
``None`` by default. ``holdout_logits_`` are the out-of-fold logits of the kept model: fit a calibrator
on them (they come from models that never saw those images).

torch and onnxruntime are imported lazily (by the backbone, the head and the fine-tuner), so importing
this module is cheap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from visionloop.core.ports import SCENE_KEY_PREFIX
from visionloop.engines.heads import LinearHead
from visionloop.engines.scenes import scene_groups
from visionloop.errors import InvalidInput, NotFitted, StorageError

if TYPE_CHECKING:
    from visionloop.engines.backbones import Backbone

FloatArray = npt.NDArray[np.float64]
ProgressFn = Callable[[float, str], None]
#: ``embed(backbone, images, flip)`` → float32 ``(len(images), dim)``; lets a caller add a cache.
EmbedFn = Callable[["Backbone", Sequence[bytes], bool], npt.NDArray[np.float32]]

MODES = ("fast", "best")
FORMAT = 1
WEIGHTS_FILE = "weights.npz"
ONNX_FILE = "model.onnx"
_CHUNK = 32  # images per ONNX Runtime batch
#: A costlier candidate (more backbones, more views) must beat the cheaper one's out-of-fold macro F1 by
#: more than this: smaller differences are noise (on magnetic-tile, Lite2 won the CV by 0.007 over Lite0
#: and scored 0.08 lower on new tiles).
CHEAPER_WINS_WITHIN = 0.01
#: Out-of-scene predictions calibrate confidences only when they beat a model that learned nothing
#: (_chance_macro_f1) by this much: on magnetic-tile, whose clusters are lightings and defect types rather
#: than places, heads that never saw a cluster scored 0.38 on it (guessing: 0.48) while new tiles scored
#: 0.73, and calibrating on them made every confidence too low (held-out ECE 0.28 instead of 0.07).
SCENES_BEAT_CHANCE_BY = 0.1
PARAMS_FILE = "classifier.json"


@dataclass(frozen=True)
class View:
    """A way of showing an image to the backbone.

    ``zoom`` = 1 keeps the whole image, resized so its short side is the input size, then centre-cropped
    (0.875 is the usual ImageNet crop); ``flip`` mirrors it; ``region`` (left, top, right, bottom as
    fractions of that square) shows one part of it closer: a tile.
    """

    zoom: float = 1.0
    flip: bool = False
    region: tuple[float, float, float, float] | None = None


VIEWS: dict[str, View] = {
    "full": View(),
    "full-flip": View(flip=True),
    "crop": View(0.875),
    "crop-flip": View(0.875, True),
    "zoom": View(0.75),
    "zoom-flip": View(0.75, True),
    "tile-tl": View(region=(0.0, 0.0, 0.5, 0.5)),
    "tile-tr": View(region=(0.5, 0.0, 1.0, 0.5)),
    "tile-bl": View(region=(0.0, 0.5, 0.5, 1.0)),
    "tile-br": View(region=(0.5, 0.5, 1.0, 1.0)),
    "tile-centre": View(region=(0.25, 0.25, 0.75, 0.75)),
    "tile-tl-flip": View(flip=True, region=(0.0, 0.0, 0.5, 0.5)),
    "tile-tr-flip": View(flip=True, region=(0.5, 0.0, 1.0, 0.5)),
    "tile-bl-flip": View(flip=True, region=(0.0, 0.5, 0.5, 1.0)),
    "tile-br-flip": View(flip=True, region=(0.5, 0.5, 1.0, 1.0)),
    "tile-centre-flip": View(flip=True, region=(0.25, 0.25, 0.75, 0.75)),
}
#: The whole image, its mirror image, its four quarters and its centre, each seen by the backbone at
#: its input size: on photos of a later session of grocery-produce, a linear head on these seven views
#: (trained on all of them, logits averaged over all of them) reached macro F1 0.87 where the whole
#: image and its mirror gave 0.78 (bench/research/README.md, "Held-out sessions").
TILE_VIEWS = ("full", "full-flip", "tile-tl", "tile-tr", "tile-bl", "tile-br", "tile-centre")
#: best mode also trains on the mirrored tiles (twelve training samples per image, seven to predict).
MIRRORED_TILE_VIEWS = (
    *TILE_VIEWS,
    "tile-tl-flip",
    "tile-tr-flip",
    "tile-bl-flip",
    "tile-br-flip",
    "tile-centre-flip",
)

_MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "fast": {
        # INT8 Lite0 (engines/quantized.py): the same held-out F1 as fp32 Lite0 on the seven views at half
        # the CPU an image (bench/research/README.md, "INT8"), so the default model serves twice as fast
        "backbones": ("efficientnet-lite0-int8",),
        "views": TILE_VIEWS,
        "predict_views": TILE_VIEWS,
        "l2_grid": (1e-3, 3e-3, 1e-2),
        "folds": 5,
        "finetune": False,
        "search_views": False,
        "search_backbones": False,
        "max_seconds": None,
    },
    "best": {
        "backbones": ("efficientnet-lite0", "efficientnet-lite2"),
        "views": MIRRORED_TILE_VIEWS,
        "predict_views": TILE_VIEWS,
        "l2_grid": (3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
        "folds": 5,
        "finetune": False,
        "search_views": True,
        "search_backbones": True,
        "max_seconds": 600.0,
    },
}
FINETUNE_BACKBONE = "efficientnet-lite0"
_FINETUNE_DEFAULTS: dict[str, Any] = {"finetune_blocks": 1, "epochs": 8, "lr": 3e-4}


@dataclass(frozen=True)
class TrainingRecipe:
    """How to train a classifier. ``None`` fields are chosen automatically (by ``mode`` or by CV).

    - ``mode``: ``"fast"`` (default; EfficientNet-Lite0 on seven views, about a minute for 600 images on
      2 cores) or ``"best"`` (Lite0, Lite2 and both together cross-validated, several minutes, at most
      ``max_seconds``, 600 unless given).
    - ``max_seconds``: the budget for the whole fit; searches and fine-tuning stop early to honour it.
    - ``backbones``: registered backbone names whose embeddings are concatenated (one to fine-tune);
      ``search_backbones``: cross-validate each of them alone and all of them together, keep the best
      (a costlier set must win by more than :data:`CHEAPER_WINS_WITHIN`).
    - ``views``: names from :data:`VIEWS`, each a training sample (augmentation);
      ``predict_views``: the views whose logits are averaged at prediction (and for validation).
    - ``l2`` / ``l2_grid``: the linear head's L2 strength, or the candidates cross-validation picks from.
    - ``folds``: cross-validation folds (also what ``holdout_logits_`` come from).
    - ``search_views``: also cross-validate training on ``predict_views`` alone, and keep the extra
      (augmentation) views only if they win: zoomed views help on produce but cut off the defects at
      a tile's edge (``best`` does this unless an expert gives ``views``).
    - ``scene_folds``: cross-validation folds hold out whole scenes (each label's groups clustered by
      what they look like) instead of groups: choices and calibration for photos of new places or days,
      pessimistic when new photos look like the training ones (see engines/scenes.py).
    - ``scene_estimate``: also measure the kept head's out-of-fold macro F1 with folds that hold out
      whole scenes (``scene_cv_macro_f1_``): what to expect on photos of new places or days.
    - ``calibrate_on_scenes``: keep those out-of-scene logits (``scene_holdout_logits_``) so the
      confidence calibrator is fitted on them too, not only on the grouped folds' (needs
      ``scene_estimate``): confidences for photos of new places or days.
    - ``finetune``: fine-tune the backbone's last blocks (kept only if it wins on validation, or
      always with ``force_finetune``); ``finetune_blocks``, ``epochs``, ``lr``: how.
    """

    mode: str = "fast"
    seed: int = 0
    max_seconds: float | None = None
    backbones: tuple[str, ...] | None = None
    views: tuple[str, ...] | None = None
    predict_views: tuple[str, ...] | None = None
    l2: float | None = None
    l2_grid: tuple[float, ...] | None = None
    folds: int | None = None
    search_views: bool | None = None
    search_backbones: bool | None = None
    scene_folds: bool = False
    scene_estimate: bool = True
    calibrate_on_scenes: bool = True
    finetune: bool | None = None
    finetune_blocks: int | None = None
    epochs: int | None = None
    lr: float | None = None
    force_finetune: bool = False
    num_threads: int = 2

    def resolved(self) -> TrainingRecipe:
        """This recipe with every ``None`` replaced by the mode's default (validated)."""
        if self.mode not in MODES:
            raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        chosen: dict[str, Any] = {}
        if self.views is not None and self.search_views is None:
            chosen["search_views"] = False  # an expert's views are used as given
        if self.backbones is not None and self.search_backbones is None:
            chosen["search_backbones"] = False  # an expert's backbones are used as given
        if self.finetune and self.backbones is None:
            # fine-tuning trains one network, in fp32: Lite0 (an INT8 graph cannot be fine-tuned)
            chosen["backbones"] = (FINETUNE_BACKBONE,)
            chosen["search_backbones"] = False
        for name, default in {**_MODE_DEFAULTS[self.mode], **_FINETUNE_DEFAULTS}.items():
            if name in chosen:
                continue
            value = getattr(self, name)
            chosen[name] = default if value is None else tuple(value) if isinstance(value, list) else value
        r = dataclasses.replace(self, **chosen)
        r._validate()
        return r

    def _validate(self) -> None:
        def number(name: str, value: Any, low: float = 0.0, strict: bool = False) -> None:
            ok = (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and (value > low if strict else value >= low)
            )
            if not ok:
                raise InvalidInput(
                    f"{name} must be a {'positive' if strict else 'non-negative'} number, got {value!r}"
                )

        def integer(name: str, value: Any, low: int) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InvalidInput(f"{name} must be an integer ≥ {low}, got {value!r}")

        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise InvalidInput(f"seed must be an integer, got {self.seed!r}")
        if self.max_seconds is not None:
            number("max_seconds", self.max_seconds, strict=True)
        if not self.backbones or not all(isinstance(b, str) and b for b in self.backbones):
            raise InvalidInput("backbones must be a non-empty list of backbone names")
        for name in ("views", "predict_views"):
            views = getattr(self, name)
            if not views:
                raise InvalidInput(f"{name} must not be empty")
            unknown = [v for v in views if v not in VIEWS]
            if unknown:
                raise InvalidInput(f"unknown {name} {unknown}; known: {', '.join(VIEWS)}")
            if len(set(views)) != len(views):
                raise InvalidInput(f"{name} must not repeat")
        if self.l2 is not None:
            number("l2", self.l2)
        for value in self.l2_grid or ():
            number("l2_grid", value)
        if self.l2 is None and not self.l2_grid:
            raise InvalidInput("l2_grid must not be empty when l2 is not given")
        integer("folds", self.folds, 2)
        integer("num_threads", self.num_threads, 1)
        flags = (
            "finetune",
            "force_finetune",
            "search_views",
            "search_backbones",
            "scene_folds",
            "scene_estimate",
            "calibrate_on_scenes",
        )
        for flag in flags:
            if not isinstance(getattr(self, flag), bool):
                raise InvalidInput(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        integer("finetune_blocks", self.finetune_blocks, 1)
        integer("epochs", self.epochs, 1)
        number("lr", self.lr, strict=True)
        if self.finetune and len(self.backbones) != 1:
            raise InvalidInput("fine-tuning needs exactly one backbone: give backbones with one name")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingRecipe:
        """Build from a mapping (e.g. expert hyper-parameters); unknown keys raise InvalidInput."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InvalidInput(
                f"unknown hyper-parameters: {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)


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
    present = freq > 0
    guess = float(np.mean(2 * freq[present] * guess_rate / (freq[present] + guess_rate)))
    return max(_macro_f1(constant, target, clf.multi_label), guess)


def _macro_f1(logits: FloatArray, target: npt.NDArray[Any], multi_label: bool) -> float:
    """Macro F1 over the labels present in ``target`` (arg-max, or logit > 0 per label)."""
    n_labels = logits.shape[1]
    if multi_label:
        pred, truth = logits > 0, target.astype(bool)
    else:
        pred = np.eye(n_labels, dtype=bool)[logits.argmax(1)]
        truth = np.eye(n_labels, dtype=bool)[target]
    tp = (pred & truth).sum(0)
    denom = pred.sum(0) + truth.sum(0)
    present = truth.sum(0) > 0
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return float(f1[present].mean()) if present.any() else 0.0


def _folds(
    target: npt.NDArray[Any],
    k: int,
    seed: int,
    multi_label: bool,
    groups: Sequence[str] | None = None,
) -> list[npt.NDArray[np.int64]]:
    """Validation indices of each fold: every group on one side (each image alone without groups),
    stratified by label as far as the groups allow.

    Groups are dealt largest first (ties in a seeded random order) to the fold that so far holds the
    smallest share of the group's labels, then the fewest images (a stratified group k-fold)."""
    n = len(target)
    keys = list(groups) if groups is not None else [str(i) for i in range(n)]
    names, index = np.unique(np.array(keys, dtype=object), return_inverse=True)
    n_groups = len(names)
    k = max(1, min(k, n_groups))
    onehot = target.astype(np.float64) if multi_label else np.eye(int(target.max()) + 1)[target]
    counts = np.zeros((n_groups, onehot.shape[1]))
    np.add.at(counts, index, onehot)
    sizes = np.bincount(index, minlength=n_groups)
    totals = np.maximum(counts.sum(0), 1.0)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_groups)
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_counts = np.zeros((k, onehot.shape[1]))
    fold_sizes = np.zeros(k)
    assign = np.empty(n_groups, dtype=np.int64)
    for g in order:
        present = counts[g] > 0
        share = (fold_counts[:, present] / totals[present]).sum(1) if present.any() else np.zeros(k)
        f = int(np.lexsort((fold_sizes, share))[0])
        assign[g] = f
        fold_counts[f] += counts[g]
        fold_sizes[f] += sizes[g]
    per_image = assign[index]
    return [np.flatnonzero(per_image == f) for f in range(k) if (per_image == f).any()]


class FittedClassifier:
    """A trained classifier: a linear head on frozen backbone views, or a fine-tuned network.

    Created by :func:`fit_classifier` or :meth:`load`. ``predict_proba`` gives softmax (single-label)
    or per-label sigmoid (multi-label) probabilities, uncalibrated. ``kind_`` says which model won:
    ``"linear"`` or ``"finetuned"``.
    """

    def __init__(
        self,
        recipe: TrainingRecipe,
        n_labels: int,
        multi_label: bool,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.recipe = recipe
        self.n_labels = n_labels
        self.multi_label = multi_label
        self.cache_dir = cache_dir
        self.kind_: str | None = None
        self.head_: LinearHead | None = None
        self.onnx_: bytes | None = None
        self.l2_: float | None = None
        self.cv_scores_: dict[float, float] = {}
        self.view_scores_: dict[str, float] = {}  # best out-of-fold macro F1 per candidate view set
        self.backbone_scores_: dict[str, float] = {}  # best out-of-fold macro F1 per backbone set
        self.n_groups_: int | None = None  # groups of similar photos the folds kept together
        self.scene_cv_macro_f1_: float | None = None  # out-of-fold macro F1 on held-out scenes
        # out-of-fold logits on held-out scenes (calibrate_on_scenes; not saved)
        self.scene_holdout_logits_: FloatArray | None = None
        self.warnings_: list[str] = []
        self.finetune_report_: dict[str, Any] = {}
        self.holdout_logits_: FloatArray = np.zeros((0, n_labels))
        self.holdout_labels_: list[list[int]] = []
        self.holdout_index_: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.timings_: dict[str, float] = {}
        self.stopped_early_: bool = False
        self._backbones: dict[str, Backbone] = {}
        self._bases: dict[str, Backbone] = {}
        self._session: Any = None

    # --- features --------------------------------------------------------------------------------

    def _view_backbone(self, name: str, view: str) -> Backbone:
        key = f"{name}|{view}"
        if key not in self._backbones:
            if name not in self._bases:  # one runtime per backbone, shared by its views
                from visionloop.engines.registry import create_backbone

                self._bases[name] = create_backbone(
                    name, num_threads=self.recipe.num_threads, cache_dir=self.cache_dir
                )
            self._backbones[key] = view_backbone(name, view, base=self._bases[name])
        return self._backbones[key]

    def embeddings(
        self,
        images: Sequence[bytes],
        names: Sequence[str],
        views: Sequence[str],
        embed: EmbedFn | None = None,
        progress: ProgressFn | None = None,
    ) -> dict[tuple[str, str], FloatArray]:
        """``(n, dim)`` float64 embeddings per (backbone, view)."""
        run = embed or _plain_embed
        out: dict[tuple[str, str], FloatArray] = {}
        total = len(views) * len(names)
        for view in views:
            for name in names:
                bb = self._view_backbone(name, view)
                out[name, view] = np.asarray(run(bb, images, VIEWS[view].flip), dtype=np.float64)
                if progress is not None:
                    progress(len(out) / total, f"embedding images ({name}, {view})")
        return out

    def features(
        self,
        images: Sequence[bytes],
        embed: EmbedFn | None = None,
        progress: ProgressFn | None = None,
        views: Sequence[str] | None = None,
    ) -> dict[str, FloatArray]:
        """Per view (default: the prediction views), ``(n, dim)`` float64 embeddings of the recipe's
        backbones, concatenated."""
        r = self.recipe
        assert r.backbones is not None and r.predict_views is not None
        wanted = list(views if views is not None else r.predict_views)
        if embed is None and progress is None:  # predicting: decode each image once for all its views
            found = {}
            for name in r.backbones:
                found.update(self._embed_views(images, name, wanted))
        else:
            found = self.embeddings(images, r.backbones, wanted, embed, progress)
        return {view: _concat(found, r.backbones, view) for view in wanted}

    def _embed_views(
        self, images: Sequence[bytes], name: str, views: Sequence[str]
    ) -> dict[tuple[str, str], FloatArray]:
        """Embeddings of every view by one backbone, each image decoded once for all of them (the same
        pixels, hence the same embeddings, as embedding view by view)."""
        from visionloop.engines.preprocess import preprocess_views_batch

        bbs = [self._view_backbone(name, view) for view in views]
        spec = [(bb.spec.preprocessing, VIEWS[view].flip) for bb, view in zip(bbs, views, strict=True)]
        parts: list[list[FloatArray]] = [[] for _ in views]
        pool = bbs[0].decode_pool()
        step = max(1, _CHUNK // len(views))
        for start in range(0, len(images), step):
            batch = preprocess_views_batch(images[start : start + step], spec, pool, offset=start)
            # every view of these images in one network call: one batch of views x images
            embedding, _ = bbs[0].forward(batch.reshape(-1, *batch.shape[2:]))
            embedding = np.asarray(embedding, dtype=np.float64).reshape(len(views), batch.shape[1], -1)
            for k in range(len(views)):
                parts[k].append(embedding[k])
        return {(name, view): np.concatenate(parts[k]) for k, view in enumerate(views)}

    # --- prediction ------------------------------------------------------------------------------

    def decision_function(self, images: Sequence[bytes], embed: EmbedFn | None = None) -> FloatArray:
        """Logits ``(n, n_labels)`` for encoded images, averaged over the prediction views."""
        if self.kind_ is None:
            raise NotFitted("the classifier is used before fit")
        if len(images) == 0:
            return np.zeros((0, self.n_labels))
        if self.kind_ == "finetuned":
            return self._finetuned_logits(images)
        assert self.head_ is not None
        head = self.head_
        feats = self.features(images, embed)
        logits: FloatArray = np.mean([head.decision_function(v) for v in feats.values()], axis=0)
        return logits

    def predict_proba(self, images: Sequence[bytes], embed: EmbedFn | None = None) -> FloatArray:
        """Probabilities ``(n, n_labels)``: softmax, or one sigmoid per label for multi-label."""
        return logits_to_proba(self.decision_function(images, embed), self.multi_label)

    def _finetuned_logits(self, images: Sequence[bytes]) -> FloatArray:
        r = self.recipe
        assert r.backbones is not None and r.predict_views is not None and self.onnx_ is not None
        if self._session is None:
            self._session = _ort_session(self.onnx_, r.num_threads)
        outs = []
        for view in r.predict_views:
            bb = self._view_backbone(r.backbones[0], view)
            parts = []
            for start in range(0, len(images), _CHUNK):
                batch = bb.preprocess(images[start : start + _CHUNK], flip=VIEWS[view].flip)
                parts.append(self._session.run(None, {"images": batch})[0].astype(np.float64))
            outs.append(np.concatenate(parts))
        logits: FloatArray = np.mean(outs, axis=0)
        return logits

    # --- persistence -----------------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The resolved recipe and what was chosen for it (JSON-serialisable)."""
        return {
            "recipe": self.recipe.to_dict(),
            "n_labels": self.n_labels,
            "multi_label": self.multi_label,
            "kind": self.kind_,
            "head": self.head_.get_params() if self.head_ is not None else None,
            "l2": self.l2_,
            "cv_macro_f1": {f"{k:g}": round(v, 4) for k, v in self.cv_scores_.items()},
            "views_cv_macro_f1": {k: round(v, 4) for k, v in self.view_scores_.items()},
            "backbones_cv_macro_f1": {k: round(v, 4) for k, v in self.backbone_scores_.items()},
            "cv_groups": self.n_groups_,
            "scene_cv_macro_f1": None
            if self.scene_cv_macro_f1_ is None
            else round(self.scene_cv_macro_f1_, 4),
            "warnings": list(self.warnings_),
            "finetune": self.finetune_report_,
            "stopped_early": self.stopped_early_,
            "timings": {k: round(v, 2) for k, v in self.timings_.items()},
            "backbone_fingerprints": {
                key: bb.spec.fingerprint for key, bb in sorted(self._backbones.items())
            },
        }

    def save(self, directory: str | os.PathLike[str]) -> list[str]:
        """Write ``classifier.json`` and the weights (``weights.npz`` for a linear head, ``model.onnx``
        for a fine-tuned network), their SHA-256 recorded in the json; returns the file names written
        (all of them are needed by :meth:`load`)."""
        if self.kind_ is None:
            raise NotFitted("the classifier is saved before fit")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if self.kind_ == "finetuned":
            assert self.onnx_ is not None
            name, data = ONNX_FILE, self.onnx_
        else:
            assert self.head_ is not None
            name, data = WEIGHTS_FILE, _npz_bytes(self.head_.state())
        (d / name).write_bytes(data)
        meta = {
            "format": FORMAT,
            "params": self.get_params(),
            "weights_file": name,
            "weights_sha256": hashlib.sha256(data).hexdigest(),
        }
        (d / PARAMS_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
        return [PARAMS_FILE, name]

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None
    ) -> FittedClassifier:
        """Read a classifier written by :meth:`save`; StorageError if missing, altered or incompatible.

        ``cache_dir`` is the backbones' ONNX cache (default: the backbone registry's)."""
        d = Path(directory)
        try:
            meta = json.loads((d / PARAMS_FILE).read_text(encoding="utf-8"))
            name = meta.get("weights_file")
            if name not in (WEIGHTS_FILE, ONNX_FILE):
                raise ValueError(f"unexpected weights file {name!r}")
            data = (d / name).read_bytes()
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read the classifier in {d}: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise StorageError(f"unsupported classifier format {meta.get('format')!r}")
        if hashlib.sha256(data).hexdigest() != meta.get("weights_sha256"):
            raise StorageError(f"{d / name} does not match its checksum")
        params = meta["params"]
        recipe = TrainingRecipe.from_dict(params["recipe"]).resolved()
        clf = cls(recipe, int(params["n_labels"]), bool(params["multi_label"]), cache_dir)
        clf.kind_ = params["kind"]
        if clf.kind_ == "finetuned":
            clf.onnx_ = data
        else:
            with np.load(io.BytesIO(data)) as z:
                arrays = {k: z[k] for k in z.files}
            clf.head_ = LinearHead.from_state(params["head"], arrays)
        clf.l2_ = params["l2"]
        clf.cv_scores_ = {float(k): float(v) for k, v in params["cv_macro_f1"].items()}
        clf.view_scores_ = {str(k): float(v) for k, v in params.get("views_cv_macro_f1", {}).items()}
        clf.backbone_scores_ = {str(k): float(v) for k, v in params.get("backbones_cv_macro_f1", {}).items()}
        clf.n_groups_ = params.get("cv_groups")
        clf.scene_cv_macro_f1_ = params.get("scene_cv_macro_f1")
        clf.warnings_ = [str(w) for w in params.get("warnings", [])]
        clf.finetune_report_ = dict(params["finetune"])
        clf.timings_ = dict(params["timings"])
        clf.stopped_early_ = bool(params["stopped_early"])
        for key, fingerprint in params["backbone_fingerprints"].items():
            backbone, view = key.split("|")
            if clf._view_backbone(backbone, view).spec.fingerprint != fingerprint:
                raise StorageError(
                    f"backbone {backbone} ({view}) changed since the classifier was trained: train again"
                )
        return clf


def logits_to_proba(logits: FloatArray, multi_label: bool) -> FloatArray:
    """Softmax over labels, or an independent sigmoid per label."""
    if multi_label:
        out: FloatArray = 1.0 / (1.0 + np.exp(-logits))
        return out
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    out = z / z.sum(axis=1, keepdims=True)
    return out


def view_backbone(
    name: str,
    view: str,
    num_threads: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    base: Backbone | None = None,
) -> Backbone:
    """The registered backbone ``name`` with its preprocessing set for ``view`` (zoom; flip is separate).

    The preprocessing is part of the backbone fingerprint, so cached embeddings of different views
    never mix; the ONNX model is shared.
    """
    if base is None:
        from visionloop.engines.registry import create_backbone

        base = create_backbone(name, num_threads=num_threads, cache_dir=cache_dir)
    v = VIEWS[view]
    p = base.spec.preprocessing
    size = p.input_size
    pre = dataclasses.replace(
        p, resize_size=max(size, round(size / v.zoom)), resize_mode="shorter", region=v.region
    )
    return base.with_preprocessing(pre)


def _concat(found: Mapping[tuple[str, str], FloatArray], names: Sequence[str], view: str) -> FloatArray:
    return np.concatenate([found[name, view] for name in names], axis=1)


def _plain_embed(backbone: Backbone, images: Sequence[bytes], flip: bool) -> npt.NDArray[np.float32]:
    return backbone.embed(images, flip=flip)


def _ort_session(model: bytes, num_threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


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
    all_views = list(dict.fromkeys([*r.views, *r.predict_views]))
    share = 0.3 if r.finetune else 0.6

    report(0.0, "embedding images")
    acts: dict[str, npt.NDArray[np.float16]] = {}
    if r.finetune:
        acts, by_view = _activations(clf, images, all_views, lambda f, s: report(share * f, s))
        found = {(r.backbones[0], view): x for view, x in by_view.items()}
    else:
        found = clf.embeddings(images, r.backbones, all_views, embed, lambda f, s: report(share * f, s))
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
    candidates = _candidates(r)
    search: _Search | None = None
    chosen = candidates[0]
    for ci, (names, views, predict_views) in enumerate(candidates):
        if search is not None and deadline.passed():
            clf.stopped_early_ = True
            break
        part = _part(report, share + 0.1 * ci / len(candidates), share + 0.1 * (ci + 1) / len(candidates))
        val_views = [_concat(found, names, v) for v in predict_views]
        train_views = [_concat(found, names, v) for v in views]
        result = _search_l2(train_views, val_views, target, folds, clf, deadline, part)
        clf.view_scores_[",".join(views)] = max(clf.view_scores_.get(",".join(views), 0.0), result.best)
        clf.backbone_scores_["+".join(names)] = max(
            clf.backbone_scores_.get("+".join(names), 0.0), result.best
        )
        if search is None or result.best > search.best + CHEAPER_WINS_WITHIN:
            search, chosen = result, (names, views, predict_views)
    assert search is not None
    names, views, predict_views = chosen
    if chosen != (tuple(r.backbones), tuple(r.views), tuple(r.predict_views)):
        r = clf.recipe = dataclasses.replace(r, backbones=names, views=views, predict_views=predict_views)
    clf._backbones = {k: bb for k, bb in clf._backbones.items() if k.split("|")[0] in names}
    clf._bases = {name: bb for name, bb in clf._bases.items() if name in names}
    train_views = [_concat(found, names, v) for v in views]
    report(share + 0.1, "fitting the linear head")
    clf.head_ = _fit_head(train_views, target, clf, search)
    clf.kind_ = "linear"
    clf.timings_["fit_seconds"] = time.monotonic() - fit_started
    if r.scene_estimate and r.predict_views and not deadline.passed():
        scene_started = time.monotonic()
        report(share + 0.12, "cross-validating on new scenes")
        val_views = [_concat(found, names, v) for v in r.predict_views]
        scene = _scene_estimate(
            found[names[0], r.predict_views[0]], train_views, val_views, target, clf, search.l2
        )
        if scene is not None:
            clf.scene_cv_macro_f1_ = scene[0]
            learnable = scene[0] >= _chance_macro_f1(target, clf) + SCENES_BEAT_CHANCE_BY
            clf.scene_holdout_logits_ = scene[1] if r.calibrate_on_scenes and learnable else None
        clf.timings_["scene_estimate_seconds"] = time.monotonic() - scene_started
    if r.finetune:
        ft_started = time.monotonic()
        _maybe_finetune(clf, acts, target, folds, search, deadline, _part(report, share + 0.1, 0.99))
        clf.timings_["finetune_seconds"] = time.monotonic() - ft_started
    report(1.0, "done")
    return clf


def _scene_estimate(
    embeddings: FloatArray,
    train_views: Sequence[FloatArray],
    val_views: Sequence[FloatArray],
    target: npt.NDArray[Any],
    clf: FittedClassifier,
    l2: float,
) -> tuple[float, FloatArray] | None:
    """Out-of-fold macro F1 (and the logits) when each fold holds out whole *scenes*: each label's images
    clustered by what they look like (k-means on the embeddings, engines.scenes), ignoring groups. A
    model judged on scenes it has not seen scored on grocery-produce what it scored on photos of a later
    session (0.86 vs 0.87); when new photos look like the training ones (one camera, one lighting) it
    is pessimistic.
    None when no label has enough images for scenes."""
    scenes = scene_groups(embeddings, _strata(target, clf.multi_label), None, seed=clf.recipe.seed)
    if not any(key.startswith(SCENE_KEY_PREFIX) for key in scenes):
        return None
    folds = _folds(target, clf.recipe.folds or 5, clf.recipe.seed, clf.multi_label, scenes)
    if len(folds) < 2:
        return None
    n = len(target)
    oof = np.zeros((n, clf.n_labels))
    for val in folds:
        train = np.setdiff1d(np.arange(n), val)
        head = _make_head(clf, l2).fit(*_stack(train_views, target, train))
        oof[val] = np.mean([head.decision_function(v[val]) for v in val_views], axis=0)
    return _macro_f1(oof, target, clf.multi_label), oof


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
    whole = tuple(v for v in r.predict_views if VIEWS[v].region is None and VIEWS[v].zoom == 1.0)
    if r.search_views and whole and (whole, whole) != full:
        view_sets = [(whole, whole), full]
    return [(names, train, predict) for names in backbone_sets for train, predict in view_sets]


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
        for start in range(0, len(images), _CHUNK):
            out = session.run(bb.preprocess(images[start : start + _CHUNK], flip=VIEWS[view].flip))
            a_parts.append(out["activations"].astype(np.float16))
            e_parts.append(out["embedding"].astype(np.float64))
            seen = min(len(images), start + _CHUNK) / len(images)
            report((vi + seen) / len(views), f"embedding images ({name}, {view})")
        acts[view], feats[view] = np.concatenate(a_parts), np.concatenate(e_parts)
    return acts, feats


@dataclass
class _Search:
    l2: float
    scores: dict[float, float] = field(default_factory=dict)
    holdout: FloatArray | None = None
    holdout_index: npt.NDArray[np.int64] | None = None

    @property
    def best(self) -> float:
        """The out-of-fold macro F1 of the chosen L2 strength."""
        return self.scores[self.l2]


def _make_head(clf: FittedClassifier, l2: float) -> LinearHead:
    return LinearHead(l2, n_labels=clf.n_labels, multi_label=clf.multi_label)


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
    for gi, l2 in enumerate(grid):
        oof = np.zeros((n, clf.n_labels))
        done: list[npt.NDArray[np.int64]] = []
        for fi, val in enumerate(folds):
            if deadline.passed() and (best is not None or done):
                break
            train = np.setdiff1d(np.arange(n), val)
            head = _make_head(clf, l2).fit(*_stack(train_views, target, train), init=previous.get(fi))
            previous[fi] = head
            oof[val] = np.mean([head.decision_function(v[val]) for v in val_views], axis=0)
            done.append(val)
            report((gi * len(folds) + fi + 1) / (len(grid) * len(folds)), f"cross-validating (l2={l2:g})")
        if len(done) < len(folds):
            clf.stopped_early_ = True
            if best is not None:
                break
        seen = np.sort(np.concatenate(done))
        score = _macro_f1(oof[seen], target[seen], clf.multi_label)
        scores[l2] = score
        if best is None or score > scores[best.l2]:
            best = _Search(l2, holdout=oof[seen], holdout_index=seen)
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
        report(fi / steps, f"fine-tuning, fold {fi + 1} of {len(folds)}")
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


def _npz_bytes(arrays: Mapping[str, npt.NDArray[Any]]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()
