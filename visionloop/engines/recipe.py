"""The default training recipe for custom image classification: what runs when a user presses *train*.

Recipe (chosen on the grocery-produce benchmark, see ``bench/research/README.md``)::

    images ──► frozen backbone(s), ONNX Runtime, one pass per view ──► embeddings (cached by the caller)
           ──► logistic-regression head (softmax, or one sigmoid per label), every view a training sample
           ──► L2 strength chosen by stratified k-fold cross-validation on the training images only
           ──► prediction: logits averaged over the same views

``fast`` (default) uses EfficientNet-Lite2 on the whole image and its mirror image; ``best`` adds
EfficientNet-Lite0 (the two embeddings concatenated) and zoomed-in views, a larger search grid and
more folds. The user never picks hyper-parameters; an expert may pass any field of
:class:`TrainingRecipe` that is ``None`` by default.

The out-of-fold logits of the chosen setting (``holdout_logits_``) are what a calibrator should be
fitted on: they come from heads that never saw those images.

torch and onnxruntime are imported lazily (by the backbone and the head), so importing this module
is cheap.
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

from visionloop.engines.heads import LinearHead
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
PARAMS_FILE = "classifier.json"

#: A view is a way of showing an image to the backbone: how much of it (``zoom`` = 1 keeps the
#: whole image, resized so its short side is the input size, then centre-cropped; 0.875 is the
#: usual ImageNet crop) and whether it is mirrored.
VIEWS: dict[str, tuple[float, bool]] = {
    "full": (1.0, False),
    "full-flip": (1.0, True),
    "crop": (0.875, False),
    "crop-flip": (0.875, True),
    "zoom": (0.75, False),
    "zoom-flip": (0.75, True),
}

_MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "fast": {
        "backbones": ("efficientnet-lite2",),
        "views": ("full", "full-flip"),
        "l2_grid": (3e-4, 1e-3, 3e-3, 1e-2),
        "folds": 5,
    },
    "best": {
        "backbones": ("efficientnet-lite2", "efficientnet-lite0"),
        "views": ("full", "full-flip", "zoom", "zoom-flip"),
        "l2_grid": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
        "folds": 5,
    },
}


@dataclass(frozen=True)
class TrainingRecipe:
    """How to train a classifier. ``None`` fields are chosen automatically (by ``mode`` or by CV).

    - ``mode``: ``"fast"`` (default, about a minute for 600 images on 2 cores) or ``"best"``.
    - ``backbones``: registered backbone names whose embeddings are concatenated.
    - ``views``: names from :data:`VIEWS`; each is a training sample and test logits are averaged.
    - ``l2``: the head's L2 strength; ``None`` picks it from ``l2_grid`` by cross-validation.
    - ``folds``: cross-validation folds (also what ``holdout_logits_`` come from).
    - ``max_seconds``: the budget for the whole fit; the search stops early to honour it.
    """

    mode: str = "fast"
    seed: int = 0
    max_seconds: float | None = None
    backbones: tuple[str, ...] | None = None
    views: tuple[str, ...] | None = None
    l2: float | None = None
    l2_grid: tuple[float, ...] | None = None
    folds: int | None = None
    num_threads: int = 2

    def resolved(self) -> TrainingRecipe:
        """This recipe with every ``None`` replaced by the mode's default (validated)."""
        if self.mode not in MODES:
            raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        defaults = _MODE_DEFAULTS[self.mode]
        r = dataclasses.replace(
            self,
            backbones=tuple(self.backbones) if self.backbones is not None else defaults["backbones"],
            views=tuple(self.views) if self.views is not None else defaults["views"],
            l2_grid=tuple(self.l2_grid) if self.l2_grid is not None else defaults["l2_grid"],
            folds=self.folds if self.folds is not None else defaults["folds"],
        )
        r._validate()
        return r

    def _validate(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise InvalidInput(f"seed must be an integer, got {self.seed!r}")
        if self.max_seconds is not None and not (
            isinstance(self.max_seconds, int | float)
            and math.isfinite(self.max_seconds)
            and self.max_seconds > 0
        ):
            raise InvalidInput(f"max_seconds must be a positive number, got {self.max_seconds!r}")
        if not self.backbones or not all(isinstance(b, str) and b for b in self.backbones):
            raise InvalidInput("backbones must be a non-empty list of backbone names")
        if not self.views:
            raise InvalidInput("views must not be empty")
        unknown = [v for v in self.views if v not in VIEWS]
        if unknown:
            raise InvalidInput(f"unknown views {unknown}; known: {', '.join(VIEWS)}")
        if len(set(self.views)) != len(self.views):
            raise InvalidInput("views must not repeat")
        for name, value in [("l2", self.l2), *[("l2_grid", v) for v in self.l2_grid or ()]]:
            if value is not None and not (
                isinstance(value, int | float) and math.isfinite(value) and value >= 0
            ):
                raise InvalidInput(f"{name} must be a non-negative number, got {value!r}")
        if self.l2 is None and not self.l2_grid:
            raise InvalidInput("l2_grid must not be empty when l2 is not given")
        if not isinstance(self.folds, int) or isinstance(self.folds, bool) or self.folds < 2:
            raise InvalidInput(f"folds must be an integer ≥ 2, got {self.folds!r}")
        if not isinstance(self.num_threads, int) or self.num_threads < 1:
            raise InvalidInput(f"num_threads must be a positive integer, got {self.num_threads!r}")

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


def _folds(target: npt.NDArray[Any], k: int, seed: int, multi_label: bool) -> list[npt.NDArray[np.int64]]:
    """Validation indices of each fold: stratified for single-label (as far as label counts allow)."""
    n = len(target)
    k = min(k, n)
    rng = np.random.default_rng(seed)
    assign = np.empty(n, dtype=np.int64)
    if multi_label:
        order = rng.permutation(n)
        assign[order] = np.arange(n) % k
    else:
        # Deal each label's shuffled images round-robin, continuing where the previous label stopped.
        start = 0
        for label in np.unique(target):
            idx = rng.permutation(np.flatnonzero(target == label))
            assign[idx] = (start + np.arange(len(idx))) % k
            start += len(idx)
    return [np.flatnonzero(assign == f) for f in range(k) if (assign == f).any()]


class FittedClassifier:
    """A trained classifier: backbones, views and a linear head on their embeddings.

    Created by :func:`fit_classifier` or :meth:`load`. ``predict_proba`` gives softmax (single-label)
    or per-label sigmoid (multi-label) probabilities, uncalibrated.
    """

    def __init__(
        self,
        recipe: TrainingRecipe,
        n_labels: int,
        multi_label: bool,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.recipe = recipe
        self.cache_dir = cache_dir
        self.n_labels = n_labels
        self.multi_label = multi_label
        self.head_: LinearHead | None = None
        self.l2_: float | None = None
        self.cv_scores_: dict[float, float] = {}
        self.holdout_logits_: FloatArray = np.zeros((0, n_labels))
        self.holdout_labels_: list[list[int]] = []
        self.holdout_index_: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.timings_: dict[str, float] = {}
        self.stopped_early_: bool = False
        self._backbones: dict[str, Backbone] = {}

    # --- features --------------------------------------------------------------------------------

    def _view_backbone(self, name: str, view: str) -> Backbone:
        key = f"{name}|{view}"
        if key not in self._backbones:
            self._backbones[key] = view_backbone(
                name, view, num_threads=self.recipe.num_threads, cache_dir=self.cache_dir
            )
        return self._backbones[key]

    def features(
        self, images: Sequence[bytes], embed: EmbedFn | None = None, progress: ProgressFn | None = None
    ) -> list[FloatArray]:
        """One ``(n, dim)`` float64 array per view: the recipe's backbones' embeddings concatenated."""
        r = self.recipe
        assert r.views is not None and r.backbones is not None
        run = embed or _plain_embed
        out = []
        total = len(r.views) * len(r.backbones)
        done = 0
        for view in r.views:
            parts = []
            for name in r.backbones:
                bb = self._view_backbone(name, view)
                parts.append(np.asarray(run(bb, images, VIEWS[view][1]), dtype=np.float64))
                done += 1
                if progress is not None:
                    progress(done / total, f"embedding images ({name}, {view})")
            out.append(np.concatenate(parts, axis=1))
        return out

    # --- prediction ------------------------------------------------------------------------------

    def decision_function_features(self, views: Sequence[FloatArray]) -> FloatArray:
        """Logits from precomputed view features (as returned by :meth:`features`)."""
        if self.head_ is None:
            raise NotFitted("the classifier is used before fit")
        logits: FloatArray = np.mean([self.head_.decision_function(v) for v in views], axis=0)
        return logits

    def decision_function(self, images: Sequence[bytes], embed: EmbedFn | None = None) -> FloatArray:
        """Logits ``(n, n_labels)`` for encoded images."""
        if self.head_ is None:
            raise NotFitted("the classifier is used before fit")
        if len(images) == 0:
            return np.zeros((0, self.n_labels))
        return self.decision_function_features(self.features(images, embed))

    def predict_proba(self, images: Sequence[bytes], embed: EmbedFn | None = None) -> FloatArray:
        """Probabilities ``(n, n_labels)``: softmax, or one sigmoid per label for multi-label."""
        return logits_to_proba(self.decision_function(images, embed), self.multi_label)

    # --- persistence -----------------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The resolved recipe and the hyper-parameters chosen for it (JSON-serialisable)."""
        return {
            "recipe": self.recipe.to_dict(),
            "n_labels": self.n_labels,
            "multi_label": self.multi_label,
            "head": self.head_.get_params() if self.head_ is not None else None,
            "l2": self.l2_,
            "cv_macro_f1": {f"{k:g}": round(v, 4) for k, v in self.cv_scores_.items()},
            "stopped_early": self.stopped_early_,
            "timings": {k: round(v, 2) for k, v in self.timings_.items()},
            "backbone_fingerprints": {
                key: bb.spec.fingerprint for key, bb in sorted(self._backbones.items())
            },
        }

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write ``classifier.json`` and ``weights.npz`` (its SHA-256 recorded in the json)."""
        if self.head_ is None:
            raise NotFitted("the classifier is saved before fit")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        weights = _npz_bytes(self.head_.state())
        (d / WEIGHTS_FILE).write_bytes(weights)
        meta = {
            "format": FORMAT,
            "params": self.get_params(),
            "weights_sha256": hashlib.sha256(weights).hexdigest(),
        }
        (d / PARAMS_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None
    ) -> FittedClassifier:
        """Read a classifier written by :meth:`save`; StorageError if missing, altered or incompatible.

        ``cache_dir`` is the backbones' ONNX cache (default: the backbone registry's)."""
        d = Path(directory)
        try:
            meta = json.loads((d / PARAMS_FILE).read_text(encoding="utf-8"))
            weights = (d / WEIGHTS_FILE).read_bytes()
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read the classifier in {d}: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise StorageError(f"unsupported classifier format {meta.get('format')!r}")
        if hashlib.sha256(weights).hexdigest() != meta.get("weights_sha256"):
            raise StorageError(f"{d / WEIGHTS_FILE} does not match its checksum")
        params = meta["params"]
        recipe = TrainingRecipe.from_dict(params["recipe"]).resolved()
        clf = cls(recipe, int(params["n_labels"]), bool(params["multi_label"]), cache_dir)
        with np.load(io.BytesIO(weights)) as z:
            arrays = {k: z[k] for k in z.files}
        clf.head_ = LinearHead.from_state(params["head"], arrays)
        clf.l2_ = params["l2"]
        clf.cv_scores_ = {float(k): float(v) for k, v in params["cv_macro_f1"].items()}
        clf.timings_ = dict(params["timings"])
        clf.stopped_early_ = bool(params["stopped_early"])
        for key, fingerprint in params["backbone_fingerprints"].items():
            name, view = key.split("|")
            bb = clf._view_backbone(name, view)
            if bb.spec.fingerprint != fingerprint:
                raise StorageError(
                    f"backbone {name} ({view}) changed since the classifier was trained: train again"
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
) -> Backbone:
    """The registered backbone ``name`` with its preprocessing set for ``view`` (zoom; flip is separate).

    The preprocessing is part of the backbone fingerprint, so cached embeddings of different views
    never mix; the ONNX model is shared.
    """
    from visionloop.engines.backbones import Backbone
    from visionloop.engines.registry import create_backbone

    base = create_backbone(name, num_threads=num_threads, cache_dir=cache_dir)
    zoom, _ = VIEWS[view]
    p = base.spec.preprocessing
    size = p.input_size
    pre = dataclasses.replace(p, resize_size=max(size, round(size / zoom)), resize_mode="shorter")
    spec = dataclasses.replace(base.spec, preprocessing=pre)
    return Backbone(
        spec,
        base.torch_module,
        cache_dir=base.cache_dir,
        num_threads=base.num_threads,
        class_names=base.class_names,
    )


def _plain_embed(backbone: Backbone, images: Sequence[bytes], flip: bool) -> npt.NDArray[np.float32]:
    return backbone.embed(images, flip=flip)


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
) -> FittedClassifier:
    """Train a classifier on encoded images.

    ``labels[i]`` lists the label indices of image ``i`` (exactly one for single-label).
    ``embed`` replaces ``backbone.embed`` (e.g. to read and fill an embedding cache);
    ``cache_dir`` is where the backbones' ONNX exports are cached (default: the registry's).
    ``progress(fraction, stage)`` is called as the work advances. The recipe's ``max_seconds``
    covers embedding and fitting; the hyper-parameter search stops early to honour it (embedding
    itself cannot be cut short, and one final fit always runs).
    """
    started = time.monotonic()
    r = (recipe or TrainingRecipe()).resolved()
    target = _targets(labels, n_labels, multi_label)
    if len(images) != len(target):
        raise InvalidInput(f"{len(images)} images but {len(target)} label lists")
    if len(target) < 2:
        raise InvalidInput("at least two training images are needed")
    report = progress or (lambda fraction, stage: None)
    deadline = _Deadline.after(r.max_seconds)
    clf = FittedClassifier(r, n_labels, multi_label, cache_dir)

    report(0.0, "embedding images")
    views = clf.features(images, embed, lambda f, s: report(0.6 * f, s))
    clf.timings_["embed_seconds"] = time.monotonic() - started

    fit_started = time.monotonic()
    search = _search_l2(views, target, clf, deadline, lambda f, s: report(0.6 + 0.35 * f, s))
    report(0.95, "fitting the final head")
    clf.head_ = _fit_head(views, target, clf, search)
    clf.timings_["fit_seconds"] = time.monotonic() - fit_started
    report(1.0, "done")
    return clf


@dataclass
class _Search:
    l2: float
    scores: dict[float, float] = field(default_factory=dict)
    holdout: FloatArray | None = None
    holdout_index: npt.NDArray[np.int64] | None = None


def _make_head(clf: FittedClassifier, l2: float) -> LinearHead:
    return LinearHead(l2, n_labels=clf.n_labels, multi_label=clf.multi_label)


def _stack(
    views: Sequence[FloatArray], target: npt.NDArray[Any], idx: npt.NDArray[Any]
) -> tuple[FloatArray, Any]:
    x = np.concatenate([v[idx] for v in views])
    y = np.concatenate([target[idx]] * len(views))
    return x, y


def _search_l2(
    views: Sequence[FloatArray],
    target: npt.NDArray[Any],
    clf: FittedClassifier,
    deadline: _Deadline,
    report: ProgressFn,
) -> _Search:
    """Cross-validate each candidate L2 strength; keep the best (ties → the stronger penalty)."""
    r = clf.recipe
    assert r.folds is not None and r.l2_grid is not None
    grid = (r.l2,) if r.l2 is not None else tuple(sorted(set(r.l2_grid), reverse=True))
    folds = _folds(target, r.folds, r.seed, clf.multi_label)
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
            head = _make_head(clf, l2).fit(*_stack(views, target, train), init=previous.get(fi))
            previous[fi] = head
            oof[val] = np.mean([head.decision_function(v[val]) for v in views], axis=0)
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


def _fit_head(
    views: Sequence[FloatArray], target: npt.NDArray[Any], clf: FittedClassifier, search: _Search
) -> LinearHead:
    clf.l2_ = search.l2
    clf.cv_scores_ = search.scores
    assert search.holdout is not None and search.holdout_index is not None
    clf.holdout_logits_ = search.holdout
    clf.holdout_index_ = search.holdout_index
    rows = target[search.holdout_index]
    clf.holdout_labels_ = (
        [np.flatnonzero(row).tolist() for row in rows] if clf.multi_label else [[int(t)] for t in rows]
    )
    return _make_head(clf, search.l2).fit(*_stack(views, target, np.arange(len(target))))


def _npz_bytes(arrays: Mapping[str, npt.NDArray[Any]]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()
