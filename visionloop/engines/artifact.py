"""The fitted classifier: its features, its predictions and its files (``classifier.json`` and the
weights), as :func:`~visionloop.engines.selection.fit_classifier` leaves it or :meth:`FittedClassifier.load`
reads it back. The recipe it was trained with is in :mod:`visionloop.engines.recipe`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from visionloop.engines.heads import LinearHead
from visionloop.engines.patches import PatchBanks, feature_pyramid, patch_maps
from visionloop.engines.recipe import CASCADE_VIEWS, VIEWS, TrainingRecipe, view_backbone
from visionloop.errors import NotFitted, StorageError

if TYPE_CHECKING:
    from visionloop.engines.backbones import Backbone
    from visionloop.engines.detection.features import FeaturePyramid

FloatArray = npt.NDArray[np.float64]
ProgressFn = Callable[[float, str], None]
#: ``embed(backbone, images, flip)`` → float32 ``(len(images), dim)``; lets a caller add a cache.
EmbedFn = Callable[["Backbone", Sequence[bytes], bool], npt.NDArray[np.float32]]

FORMAT = 1
WEIGHTS_FILE = "weights.npz"
ONNX_FILE = "model.onnx"
PARAMS_FILE = "classifier.json"
ONNX_BATCH = 32  # images per ONNX Runtime batch (also fine-tuning's activations, engines.selection)
PROGRESS_CHUNK = 4 * ONNX_BATCH  # images embedded between two progress reports while training


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
        # whether heads that never saw a scene beat a model that learned nothing on it (None: not measured)
        self.scenes_learnable_: bool | None = None
        # out-of-fold logits on held-out scenes (calibrate_on_scenes; not saved)
        self.scene_holdout_logits_: FloatArray | None = None
        self.warnings_: list[str] = []
        self.finetune_report_: dict[str, Any] = {}
        # patch scores stacked on the linear head (engines.patches), when cross-validation kept them
        self.patches_: PatchBanks | None = None
        self.stacker_: LinearHead | None = None
        self.patch_fill_: FloatArray | None = None  # a label's score where its bank is empty
        self.patch_report_: dict[str, Any] = {}
        # the first CASCADE_VIEWS prediction views answer alone at this softmax top probability or above
        # (recipe ``cascade``; None: every image is seen in every prediction view)
        self.cascade_: float | None = None
        self.cascade_report_: dict[str, Any] = {}
        self.holdout_logits_: FloatArray = np.zeros((0, n_labels))
        self.holdout_labels_: list[list[int]] = []
        self.holdout_index_: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.timings_: dict[str, float] = {}
        self.stopped_early_: bool = False
        self._backbones: dict[str, Backbone] = {}
        self._bases: dict[str, Backbone] = {}
        self._session: Any = None
        self._pyramid: FeaturePyramid | None = None

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
        """``(n, dim)`` float64 embeddings per (backbone, view). With ``progress``, the images go through
        in chunks of PROGRESS_CHUNK and each chunk is reported (images embedded of all to embed), so a
        long embedding moves the progress bar as it goes rather than once per view."""
        run = embed or _plain_embed
        out: dict[tuple[str, str], FloatArray] = {}
        passes = len(views) * len(names)
        total = passes * len(images)
        step = PROGRESS_CHUNK if progress is not None else max(1, len(images))
        for view in views:
            for name in names:
                first_use = name not in self._bases
                bb = self._view_backbone(name, view)
                if progress is not None and first_use:
                    # the network's session is made on first use (exported and cached the first time,
                    # which takes a while): a stage of its own, not counted as images embedded
                    done = len(out) * len(images) / max(1, total)
                    progress(done, f"loading the network ({name})")
                    bb.warm_up()  # the runtime is made now, not during the first chunk
                    progress(done, f"embedding images (0 of {len(images)})")
                parts = []
                for start in range(0, len(images), step):
                    chunk = images[start : start + step]
                    parts.append(np.asarray(run(bb, chunk, VIEWS[view].flip), dtype=np.float64))
                    if progress is not None:
                        done = len(out) * len(images) + start + len(chunk)
                        where = f"{start + len(chunk)} of {len(images)}"
                        if passes > 1:  # each view of each backbone is one pass over the images
                            where += f", pass {len(out) + 1} of {passes}"
                        progress(done / total, f"embedding images ({where})")
                if not parts:  # no image: the embedding function's own (0, dim) answer
                    parts.append(np.asarray(run(bb, images, VIEWS[view].flip), dtype=np.float64))
                out[name, view] = parts[0] if len(parts) == 1 else np.concatenate(parts)
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
        return {view: concat_views(found, r.backbones, view) for view in wanted}

    def _embed_views(
        self, images: Sequence[bytes], name: str, views: Sequence[str]
    ) -> dict[tuple[str, str], FloatArray]:
        """Embeddings of every view by one backbone, each image decoded once for all of them (the same
        pixels, hence the same embeddings, as embedding view by view)."""
        from visionloop.engines.preprocess import preprocess_views_batch
        from visionloop.engines.quantized import QuantizedBackbone

        bbs = [self._view_backbone(name, view) for view in views]
        spec = [(bb.spec.preprocessing, VIEWS[view].flip) for bb, view in zip(bbs, views, strict=True)]
        parts: list[list[FloatArray]] = [[] for _ in views]
        pool = bbs[0].decode_pool()
        step = max(1, ONNX_BATCH // len(views))
        # an INT8 network reads quantized pixels: uint8 codes instead of float images, same embeddings
        pixels = bbs[0].pixel_input() if isinstance(bbs[0], QuantizedBackbone) else None
        tables = None if pixels is None else [pixels.table(p) for p, _ in spec]
        forward = bbs[0].forward if pixels is None else pixels.forward
        for start in range(0, len(images), step):
            chunk = images[start : start + step]
            batch = preprocess_views_batch(chunk, spec, pool, offset=start, tables=tables)
            # every view of these images in one network call: one batch of views x images
            embedding, _ = forward(batch.reshape(-1, *batch.shape[2:]))
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
        if self.cascade_ is not None and self.patches_ is None:
            return self._cascade_logits(images, embed)
        feats = self.features(images, embed)
        logits: FloatArray = np.mean([head.decision_function(v) for v in feats.values()], axis=0)
        if self.patches_ is not None:
            logits = self.stacked_logits(logits, self.patch_scores(images))
        return logits

    def first_view_logits(self, images: Sequence[bytes], embed: EmbedFn | None = None) -> list[FloatArray]:
        """The linear head's logits on each of the first CASCADE_VIEWS prediction views (the cascade's
        first stage: their mean answers where it is sure enough)."""
        assert self.head_ is not None and self.recipe.predict_views is not None
        views = self.recipe.predict_views[:CASCADE_VIEWS]
        return [self.head_.decision_function(v) for v in self.features(images, embed, views=views).values()]

    def _cascade_logits(self, images: Sequence[bytes], embed: EmbedFn | None) -> FloatArray:
        """The linear head's logits in two stages: the mean over the first CASCADE_VIEWS prediction
        views where they are sure enough (:func:`sure_enough`), the mean over every prediction view
        elsewhere (the other views embedded for those images only)."""
        assert self.head_ is not None and self.cascade_ is not None
        views = self.recipe.predict_views
        assert views is not None
        first = self.first_view_logits(images, embed)
        logits: FloatArray = np.mean(first, axis=0)
        unsure = np.flatnonzero(~sure_enough(logits, self.cascade_))
        if len(unsure) and len(views) > CASCADE_VIEWS:
            rest = self.features([images[int(i)] for i in unsure], embed, views=views[CASCADE_VIEWS:])
            total = np.sum([f[unsure] for f in first], axis=0)
            total += np.sum([self.head_.decision_function(v) for v in rest.values()], axis=0)
            logits[unsure] = total / len(views)
        return logits

    def pyramid(self) -> FeaturePyramid:
        """The feature pyramid patch scores are computed with (made on first use)."""
        if self._pyramid is None:
            self._pyramid = feature_pyramid(self.recipe.num_threads, self.cache_dir)
        return self._pyramid

    def pyramid_version(self) -> str:
        """The version of the weights the patch scores' network has (a cheap look, no network made)."""
        from visionloop.engines.backbones import efficientnet_lite0

        return str(efficientnet_lite0(cache_dir=self.cache_dir).spec.version)

    def patch_scores(self, images: Sequence[bytes]) -> FloatArray:
        """``(n, n_labels)`` patch scores of encoded images against the kept banks."""
        assert self.patches_ is not None
        return self.patches_.scores(patch_maps(self.pyramid(), images, self.patches_.size))

    def stacked_logits(self, logits: FloatArray, scores: FloatArray) -> FloatArray:
        """The stacker's logits from the linear head's and the patch scores (an empty bank's score
        replaced by ``patch_fill_``)."""
        assert self.stacker_ is not None and self.patch_fill_ is not None
        scores = np.where(np.isnan(scores), self.patch_fill_[None, :], scores)
        out: FloatArray = self.stacker_.decision_function(np.concatenate([logits, scores], axis=1))
        return out

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
            for start in range(0, len(images), ONNX_BATCH):
                batch = bb.preprocess(images[start : start + ONNX_BATCH], flip=VIEWS[view].flip)
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
            "scenes_learnable": self.scenes_learnable_,
            "warnings": list(self.warnings_),
            "finetune": self.finetune_report_,
            "patch_scores": self.patch_report_,
            "patches": None
            if self.patches_ is None or self.stacker_ is None
            else {
                "size": self.patches_.size,
                "stacker": self.stacker_.get_params(),
                "pyramid_version": self.pyramid_version(),
            },
            "cascade": {**self.cascade_report_, "min_top_probability": self.cascade_}
            if self.cascade_ is not None or self.cascade_report_
            else None,
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
            arrays = dict(self.head_.state())
            if self.patches_ is not None:
                assert self.stacker_ is not None and self.patch_fill_ is not None
                arrays.update(self.patches_.state(_BANK_PREFIX))
                arrays.update({_STACKER_PREFIX + k: v for k, v in self.stacker_.state().items()})
                arrays[_FILL_KEY] = self.patch_fill_
            name, data = WEIGHTS_FILE, _npz_bytes(arrays)
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
        cls,
        directory: str | os.PathLike[str],
        cache_dir: str | os.PathLike[str] | None = None,
        num_threads: int | None = None,
    ) -> FittedClassifier:
        """Read a classifier written by :meth:`save`; StorageError if missing, altered or incompatible.

        ``cache_dir`` is the backbones' ONNX cache (default: the backbone registry's). ``num_threads``:
        the CPU threads this process predicts with (default: those it was trained with). An inference
        unit passes its share of the cores: trained with 2 threads, two units on two cores would
        otherwise run four network threads and four decoding threads, and lose CPU to switching."""
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
        if num_threads is not None:
            recipe = dataclasses.replace(recipe, num_threads=num_threads)
        clf = cls(recipe, int(params["n_labels"]), bool(params["multi_label"]), cache_dir)
        clf.kind_ = params["kind"]
        if clf.kind_ == "finetuned":
            clf.onnx_ = data
        else:
            with np.load(io.BytesIO(data)) as z:
                arrays = {k: z[k] for k in z.files}
            clf.head_ = LinearHead.from_state(params["head"], arrays)
            patches = params.get("patches")
            if patches is not None:
                if patches.get("pyramid_version") != clf.pyramid_version():
                    raise StorageError(
                        "the patch scores' backbone changed since the classifier was trained: train again"
                    )
                clf.patches_ = PatchBanks.from_state(int(patches["size"]), clf.n_labels, arrays, _BANK_PREFIX)
                stacker = {
                    k.removeprefix(_STACKER_PREFIX): v
                    for k, v in arrays.items()
                    if k.startswith(_STACKER_PREFIX)
                }
                clf.stacker_ = LinearHead.from_state(patches["stacker"], stacker)
                clf.patch_fill_ = np.asarray(arrays[_FILL_KEY], dtype=np.float64)
        clf.l2_ = params["l2"]
        clf.cv_scores_ = {float(k): float(v) for k, v in params["cv_macro_f1"].items()}
        clf.view_scores_ = {str(k): float(v) for k, v in params.get("views_cv_macro_f1", {}).items()}
        clf.backbone_scores_ = {str(k): float(v) for k, v in params.get("backbones_cv_macro_f1", {}).items()}
        clf.n_groups_ = params.get("cv_groups")
        clf.scene_cv_macro_f1_ = params.get("scene_cv_macro_f1")
        clf.scenes_learnable_ = params.get("scenes_learnable")
        clf.warnings_ = [str(w) for w in params.get("warnings", [])]
        clf.finetune_report_ = dict(params["finetune"])
        clf.patch_report_ = dict(params.get("patch_scores") or {})
        cascade = params.get("cascade")  # absent before the cascade: every view, as trained
        if cascade is not None:
            clf.cascade_ = (
                None if cascade.get("min_top_probability") is None else float(cascade["min_top_probability"])
            )
            clf.cascade_report_ = {k: v for k, v in cascade.items() if k != "min_top_probability"}
        clf.timings_ = dict(params["timings"])
        clf.stopped_early_ = bool(params["stopped_early"])
        for key, fingerprint in params["backbone_fingerprints"].items():
            backbone, view = key.split("|")
            if clf._view_backbone(backbone, view).spec.fingerprint != fingerprint:
                raise StorageError(
                    f"backbone {backbone} ({view}) changed since the classifier was trained: train again"
                )
        return clf


_BANK_PREFIX = "patch_bank_"
_STACKER_PREFIX = "stacker_"
_FILL_KEY = "patch_fill"


def logits_to_proba(logits: FloatArray, multi_label: bool) -> FloatArray:
    """Softmax over labels, or an independent sigmoid per label."""
    if multi_label:
        out: FloatArray = 1.0 / (1.0 + np.exp(-logits))
        return out
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    out = z / z.sum(axis=1, keepdims=True)
    return out


def sure_enough(logits: FloatArray, threshold: float) -> npt.NDArray[np.bool_]:
    """The cascade's rule: where the first views' softmax top probability reaches ``threshold``."""
    sure: npt.NDArray[np.bool_] = logits_to_proba(logits, False).max(axis=1) >= threshold
    return sure


def concat_views(found: Mapping[tuple[str, str], FloatArray], names: Sequence[str], view: str) -> FloatArray:
    """One view's embeddings by each of ``names``, side by side: ``(n, sum of their dims)``."""
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


def _npz_bytes(arrays: Mapping[str, npt.NDArray[Any]]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()
