"""The default training recipe for custom image classification: what runs when a user presses *train*.

Chosen on photos of a later session of grocery-produce and on held-out tiles of magnetic-tile
(``bench/research/README.md``, ``bench/heldout.py``)::

    fast (default)  images ──► EfficientNet-Lite0 in INT8 (ONNX Runtime) on seven views: the whole image,
                               its mirror, its four quarters and its centre
                           ──► embeddings (cached by the caller through ``embed``)
                           ──► logistic-regression head, every view a training sample, its L2 strength
                               chosen by cross-validation over groups of similar photos
                           ──► prediction: logits averaged over the seven views

    best            the same with twelve training views (the mirrored quarters and centre too), Lite0,
                    Lite2 and both together, each also against the whole image and its mirror alone;
                    whichever cross-validates best is kept (a costlier candidate must win by more than
                    0.01). Fine-tuning the last block on cached activations is an expert's option.

    both modes      when at least a tenth of the images are oblong, the prediction views are first
                    cross-validated centred and of the whole image squashed to a square (``whole-…``)
                    on the first backbone; the whole image is kept if it wins by more than 0.01
                    (magnetic-tile's long crops: grouped CV 0.704 → 0.798, TEST F1 0.667 → 0.777);
                    with at most four labels and 100 to 2,500 images, patch scores (the distance of an
                    image's most unusual 448-px patch to each label's bank, engines.patches) stacked on
                    the linear head's logits, kept if that cross-validates better by more than 0.01
                    (magnetic-tile's held-out tiles: fast 0.713 → 0.751, best 0.709 → 0.760)

The user never picks hyper-parameters; an expert may set any :class:`TrainingRecipe` field that is
``None`` by default. ``holdout_logits_`` are the out-of-fold logits of the kept model: fit a calibrator
on them (they come from models that never saw those images).

This module holds the recipe itself: the views, each mode's defaults and their validation
(:class:`TrainingRecipe`). Cross-validation and the choices it makes (L2 strength, backbones, views,
the scene estimate, fine-tuning) are in :mod:`visionloop.engines.selection`, with
:func:`~visionloop.engines.selection.fit_classifier`; the fitted model, its prediction and its files
are in :mod:`visionloop.engines.artifact`. Imports point down: selection → artifact → recipe.

torch and onnxruntime are imported lazily (by the backbone, the head and the fine-tuner), so importing
these modules is cheap.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from visionloop.errors import InvalidInput

if TYPE_CHECKING:
    from visionloop.engines.backbones import Backbone

MODES = ("fast", "best")


@dataclass(frozen=True)
class View:
    """A way of showing an image to the backbone.

    ``zoom`` = 1 keeps the image resized so its short side is the input size, then centre-cropped
    (0.875 is the usual ImageNet crop); ``flip`` mirrors it; ``region`` (left, top, right, bottom as
    fractions of that square) shows one part of it closer: a tile. ``whole`` squashes the whole image
    into the square instead of cropping its centre, so no part of an oblong image is left unseen (the
    tiles then cover every pixel).
    """

    zoom: float = 1.0
    flip: bool = False
    region: tuple[float, float, float, float] | None = None
    whole: bool = False


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
#: The same views of the whole image squashed to a square ("whole-…"), for oblong images whose centre
#: square leaves part of them unseen: a third of magnetic-tile's crops are 2.4 times as long as wide.
VIEWS.update(
    {
        "whole": View(whole=True),
        "whole-flip": View(flip=True, whole=True),
        **{
            "whole-" + name.removeprefix("tile-"): dataclasses.replace(view, whole=True)
            for name, view in VIEWS.items()
            if name.startswith("tile-")
        },
    }
)


#: An image is oblong when its centre square leaves more than a tenth of it unseen (4:3 photos leave a
#: quarter); the recipe cross-validates whole-image framing when at least this share of images are.
OBLONG_ASPECT = 1 / 0.9
OBLONG_SHARE = 0.1


def mostly_square(sizes: Sequence[tuple[int, int] | None]) -> bool:
    """Whether fewer than OBLONG_SHARE of these (width, height) are oblong (unreadable sizes count square)."""
    oblong = sum(1 for s in sizes if s is not None and max(s) > OBLONG_ASPECT * max(1, min(s)))
    return oblong < OBLONG_SHARE * len(sizes)


def whole_framed(views: tuple[str, ...]) -> tuple[str, ...] | None:
    """The same views of the whole image (``full`` → ``whole``, ``tile-tl`` → ``whole-tl``), or None when
    one of them has no such twin (a zoom) or all of them already show the whole image."""
    if all(VIEWS[v].whole for v in views):
        return None
    twins = [v if VIEWS[v].whole else v.replace("full", "whole").replace("tile-", "whole-") for v in views]
    return tuple(twins) if all(t in VIEWS and VIEWS[t].whole for t in twins) else None


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
#: A linear head's first two prediction views (the whole image and its mirror) answer alone when they
#: are sure enough (``cascade``); the others are embedded only for the images they are unsure of.
CASCADE_VIEWS = 2

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
        "search_framing": True,
        # magnetic-tile, three held-out splits: 0.751 on average against 0.713 without (engines.patches)
        "patch_scores": True,
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
        "search_framing": True,
        "patch_scores": True,
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
      (a costlier set must win by more than :data:`~visionloop.engines.selection.CHEAPER_WINS_WITHIN`).
    - ``views``: names from :data:`VIEWS`, each a training sample (augmentation);
      ``predict_views``: the views whose logits are averaged at prediction (and for validation).
    - ``l2`` / ``l2_grid``: the linear head's L2 strength, or the candidates cross-validation picks from.
    - ``folds``: cross-validation folds (also what ``holdout_logits_`` come from).
    - ``search_views``: also cross-validate training on ``predict_views`` alone, and keep the extra
      (augmentation) views only if they win: zoomed views help on produce but cut off the defects at
      a tile's edge (``best`` does this unless an expert gives ``views``).
    - ``search_framing``: when at least :data:`OBLONG_SHARE` of the training images are oblong (their
      centre square leaves more than a tenth of them unseen), first cross-validate the first backbone
      on ``predict_views`` against the same views of the whole image squashed to a square
      (``whole-…``); the whole image is kept (for every view and backbone) only if it wins by more
      than ``CHEAPER_WINS_WITHIN`` (a defect at the end of a long crop is outside the centre).
    - ``scene_folds``: cross-validation folds hold out whole scenes (each label's groups clustered by
      what they look like) instead of groups: choices and calibration for photos of new places or days,
      pessimistic when new photos look like the training ones (see engines/scenes.py).
    - ``scene_estimate``: also measure the kept head's out-of-fold macro F1 with folds that hold out
      whole scenes (``scene_cv_macro_f1_``): what to expect on photos of new places or days.
    - ``calibrate_on_scenes``: keep those out-of-scene logits (``scene_holdout_logits_``) so the
      confidence calibrator is fitted on them too, not only on the grouped folds' (needs
      ``scene_estimate``): confidences for photos of new places or days.
    - ``patch_scores``: with at most :data:`~visionloop.engines.selection.PATCH_MAX_LABELS` labels and
      :data:`~visionloop.engines.selection.PATCH_MIN_IMAGES` training images or more, also
      cross-validate the linear head's logits stacked with patch scores (the distance of an image's
      most unusual patch to each label's bank of patches, :mod:`visionloop.engines.patches`); kept only
      if they win by more than ``CHEAPER_WINS_WITHIN`` (both modes do this). ``patch_size``: the pixels
      the patches are seen at; ``patch_bank``: the patches each label's bank keeps;
      ``force_patch_scores``: try them whatever the number of images and keep them whatever
      cross-validation says (an expert's or a test's choice).
    - ``cascade``: predict in two stages when a linear head (no patch scores, single-label) has more
      than :data:`CASCADE_VIEWS` prediction views: the first ``CASCADE_VIEWS`` views answer alone when
      their softmax top probability reaches a threshold, and the other views are embedded only for the
      images below it. The threshold is the lowest (0.50–0.99) at which the first views never changed
      an answer of all the views in cross-validation; none, no cascade. Calibration, thresholds and
      the review guide are then measured on the cascade's out-of-fold answers, as served.
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
    search_framing: bool | None = None
    scene_folds: bool = False
    scene_estimate: bool = True
    calibrate_on_scenes: bool = True
    patch_scores: bool | None = None
    patch_size: int = 448
    patch_bank: int = 2000
    force_patch_scores: bool = False
    cascade: bool = True
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
        if self.views is not None and self.search_framing is None:
            chosen["search_framing"] = False
        if self.backbones is not None and self.search_backbones is None:
            chosen["search_backbones"] = False  # an expert's backbones are used as given
        if self.force_patch_scores and self.patch_scores is None:
            chosen["patch_scores"] = True
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
            "search_framing",
            "scene_folds",
            "scene_estimate",
            "calibrate_on_scenes",
            "patch_scores",
            "force_patch_scores",
            "cascade",
        )
        for flag in flags:
            if not isinstance(getattr(self, flag), bool):
                raise InvalidInput(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        integer("patch_size", self.patch_size, 64)
        if self.patch_size % 32 or self.patch_size > 1024:
            raise InvalidInput(f"patch_size must be a multiple of 32 up to 1024, got {self.patch_size!r}")
        integer("patch_bank", self.patch_bank, 1)
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
    if v.whole:
        pre = dataclasses.replace(p, resize_size=size, resize_mode="squash", region=v.region)
    else:
        pre = dataclasses.replace(
            p, resize_size=max(size, round(size / v.zoom)), resize_mode="shorter", region=v.region
        )
    return base.with_preprocessing(pre)
