"""The classification TrainingEngine: backbone embeddings (ONNX Runtime, cached per image), a head fitted
by the training recipe, temperature calibration on out-of-fold logits, evaluation on the TEST set and a
self-contained artifact that a fresh process loads to identical predictions."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop import __version__
from visionloop.core.entities import TaskType
from visionloop.core.ports import EVALUATED_PREFIX, ProgressFn, TrainedModel, TrainingExample, TrainingSpec
from visionloop.core.records.evaluation import Interval
from visionloop.engines.artifact import PARAMS_FILE, WEIGHTS_FILE, EmbedFn, FittedClassifier
from visionloop.engines.backbones import Backbone
from visionloop.engines.calibration import (
    Calibrator,
    expected_calibration_error,
    reliability_table,
    top_label_confidence,
)
from visionloop.engines.embeddings import EmbeddingCache, embed_with_cache
from visionloop.engines.evaluation_summary import build_summary
from visionloop.engines.metrics import choose_thresholds, evaluate_classification, indicator_matrix
from visionloop.engines.recipe import VIEWS, TrainingRecipe
from visionloop.engines.review_guide import review_guide
from visionloop.engines.selection import fit_classifier, refit_with
from visionloop.errors import InvalidInput, StorageError

FloatArray = npt.NDArray[np.float64]
ARTIFACT_FORMAT = 2
DEFAULT_THRESHOLD = 0.5  # a label whose threshold cannot be chosen (no training image ranked it)
MIN_THRESHOLD_POSITIVES = 10  # out-of-fold images a label needs for thresholds chosen on them
AUTO_BACKBONE = "auto"  # let the training recipe choose the backbone(s)
READ_SHARE = 0.05  # of the progress bar: reading the training images from the store
# Of a time budget (max_seconds), the share reading the images and fitting may take: the rest is left to
# the evaluation on TEST and to learning the TEST images (grocery, best mode: 27 s after a 600 s search).
SEARCH_SHARE = 0.9
EXPERT_HYPERPARAMS = (
    "backbones",
    "views",
    "predict_views",
    "l2",
    "l2_grid",
    "folds",
    "search_views",
    "search_backbones",
    "search_framing",
    "scene_folds",
    "scene_estimate",
    "calibrate_on_scenes",
    "patch_scores",
    "patch_size",
    "patch_bank",
    "force_patch_scores",
    "cascade",
    "finetune",
    "force_finetune",
    "finetune_blocks",
    "epochs",
    "lr",
)
#: Handled by the engine rather than the recipe: fit the kept head again on TRAIN + TEST once TEST has
#: been evaluated (default: when TEST was split off TRAIN automatically; see TrainingSpec.test_split_off).
REFIT_HYPERPARAM = "refit_on_test"


class ClassificationEngine:
    """Implements core.ports.TrainingEngine for single- and multi-label classification."""

    def __init__(self, cache_dir: str | os.PathLike[str], num_threads: int | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.num_threads = num_threads
        self._cache: EmbeddingCache | None = None
        self._lock = threading.Lock()

    def embeddings(self) -> EmbeddingCache:
        with self._lock:
            if self._cache is None:
                self._cache = EmbeddingCache(self.cache_dir / "embeddings.sqlite")
            return self._cache

    # --- training ----------------------------------------------------------------------------------

    def _embed_fn(self) -> EmbedFn:
        """The recipe's embedding step, through the embedding cache (keyed by the bytes' SHA-256)."""
        cache = self.embeddings()

        def embed(backbone: Backbone, images: Sequence[bytes], flip: bool) -> npt.NDArray[np.float32]:
            items = [(hashlib.sha256(d).hexdigest(), _constant(d)) for d in images]
            return embed_with_cache(backbone, cache, items, flip=flip)

        return embed

    def recipe_for(self, spec: TrainingSpec) -> TrainingRecipe:
        """The training recipe: the mode's defaults, the chosen backbone, an expert's hyper-parameters."""
        extra: dict[str, Any] = dict(spec.hyperparams)
        extra.pop(REFIT_HYPERPARAM, None)
        unknown = sorted(set(extra) - set(EXPERT_HYPERPARAMS))
        if unknown:
            known = ", ".join((*EXPERT_HYPERPARAMS, REFIT_HYPERPARAM))
            raise InvalidInput(f"unknown hyper-parameters: {', '.join(unknown)}; known: {known}")
        for key in ("backbones", "views", "predict_views", "l2_grid"):
            if key in extra:
                value = extra[key]
                extra[key] = tuple(value) if isinstance(value, list | tuple) else (value,)
        if spec.backbone != AUTO_BACKBONE and "backbones" not in extra:
            extra["backbones"] = (spec.backbone,)
        threads = self.num_threads or os.cpu_count() or 1
        return TrainingRecipe(
            mode=spec.mode, seed=spec.seed, max_seconds=spec.max_seconds, num_threads=threads, **extra
        ).resolved()

    def train(
        self, spec: TrainingSpec, load_image: Callable[[str], bytes], progress: ProgressFn
    ) -> TrainedModel:
        started = time.monotonic()
        multi = spec.task is TaskType.MULTI_LABEL
        index = {label: i for i, label in enumerate(spec.labels)}
        recipe = self.recipe_for(spec)
        refit = _refit_on_test(spec)
        embed = self._embed_fn()
        train_images = _read(spec.train, load_image, lambda f, stage: progress(READ_SHARE * f, stage))
        if recipe.max_seconds is not None:  # the search's share of the budget, less the reading
            left = SEARCH_SHARE * recipe.max_seconds - (time.monotonic() - started)
            recipe = dataclasses.replace(recipe, max_seconds=max(1.0, left))
        y_train = [[index[label] for label in ex.labels] for ex in spec.train]
        y_test = [[index[label] for label in ex.labels] for ex in spec.test]
        clf = fit_classifier(
            train_images,
            y_train,
            len(spec.labels),
            multi_label=multi,
            recipe=recipe,
            progress=lambda f, stage: progress(READ_SHARE + (0.8 - READ_SHARE) * f, stage),
            embed=embed,
            cache_dir=self.cache_dir / "onnx",
            groups=[ex.group for ex in spec.train],
        )
        if not refit:  # kept for learning the TEST images too, rather than read from the store again
            del train_images
        progress(0.8, "calibrating")
        calib_logits = clf.holdout_logits_
        calib_truth = _targets(clf.holdout_labels_, len(spec.labels), multi)
        scene_logits = clf.scene_holdout_logits_ if clf.kind_ == "linear" else None
        on_scenes = scene_logits is not None
        if scene_logits is not None:
            # the same images predicted by heads that never saw their scene: confidences for new photos
            calib_logits = np.vstack([calib_logits, scene_logits[clf.holdout_index_]])
            calib_truth = np.concatenate([calib_truth, calib_truth])
        calibrator = Calibrator("sigmoid" if multi else "softmax").fit(calib_logits, calib_truth)
        # Assumed thresholds: chosen on the calibrated out-of-fold predictions of the training images
        # (grouped folds), so the TEST figures below are measured at thresholds TEST did not choose.
        # With fewer than MIN_THRESHOLD_POSITIVES out-of-fold images of a label, those predictions come
        # from models trained on a handful of images and the thresholds they give are noise (8 logo
        # photos: 0.23 and 0.77 for two labels, and a right top label missed its threshold): then the
        # thresholds are tuned on TEST as Rekognition does, and the evaluation says so.
        # A single-label model's thresholds are chosen among the images where each label came top.
        oof_truth = indicator_matrix(
            [set(y) for y in clf.holdout_labels_] if multi else [y[0] for y in clf.holdout_labels_],
            len(spec.labels),
            multi,
        )
        cv_thresholds: list[float] | None = None
        # What a min_confidence review rule catches, measured on the predictions the calibrator was fitted
        # on: the grouped folds' and, when they could be learned, the held-out scenes' (new photos are
        # answered less surely than the grouped folds say: on grocery-produce's later session the
        # grouped folds' suggestion caught 57 % of the wrong answers instead of 80 %).
        guide_probs = calibrator.transform(calib_logits)
        guide_top = np.argmax(guide_probs, axis=1)
        rows = np.arange(len(guide_top))
        guide_right = calib_truth[rows, guide_top] > 0 if multi else guide_top == calib_truth
        guide = review_guide(guide_probs[rows, guide_top], guide_right)
        if guide is not None:
            guide["basis"] = "cross-validation and new scenes" if on_scenes else "cross-validation"
        if oof_truth.sum(axis=0).min() >= MIN_THRESHOLD_POSITIVES:
            oof_probs = calibrator.transform(clf.holdout_logits_)
            chosen = choose_thresholds(oof_probs, oof_truth, top_label_only=not multi)
            cv_thresholds = [DEFAULT_THRESHOLD if t is None else t for t in chosen]

        progress(0.85, "evaluating on the TEST dataset")
        evaluate_started = time.monotonic()
        test_images = [load_image(ex.content_hash) for ex in spec.test]
        probs = calibrator.transform(clf.decision_function(test_images, embed))
        truth: list[Any] = [set(y) for y in y_test] if multi else [y[0] for y in y_test]
        evaluation = evaluate_classification(
            truth,
            probs,
            spec.labels,
            multi_label=multi,
            image_ids=[ex.content_hash for ex in spec.test],
            thresholds=cv_thresholds,
            groups=[ex.group or ex.content_hash for ex in spec.test],
            seed=spec.seed,
        )
        evaluation = dataclasses.replace(
            evaluation,
            warnings=tuple(dict.fromkeys([*spec.grouping_warnings, *clf.warnings_, *evaluation.warnings])),
        )
        if multi:
            conf = probs.ravel()
            correct = _targets(y_test, len(spec.labels), True).ravel().astype(bool)
        else:
            conf, correct = top_label_confidence(probs, np.array([y[0] for y in y_test]))
        ece = expected_calibration_error(conf, correct)
        reliability = reliability_table(conf, correct)
        new_photos = new_photos_range(
            evaluation.macro_f1_interval, clf.scene_cv_macro_f1_, clf.scenes_learnable_
        )
        summary = build_summary(
            evaluation,
            project_version_arn=spec.version_arn,
            n_training_images=len(spec.train),
            calibration_error=ece,
            reliability=reliability,
            new_scenes_f1=clf.scene_cv_macro_f1_,
            new_photos_f1=new_photos,
            review_guide=guide,
        )
        # The version serves a head that has also learned the TEST images when TEST was split off TRAIN
        # automatically (the user gave them all to train on): a quarter more photos, +0.005 to +0.059
        # macro F1 on photos the product never saw in six benchmark runs (docs/training.md). The
        # evaluation above is of the head before, on images it had not seen.
        refitted = False
        evaluated: dict[str, bytes] = {}
        if refit and clf.kind_ == "linear":
            evaluated = _classifier_files(clf)
            progress(0.95, "learning the TEST images too")
            refitted = refit_with(clf, [*train_images, *test_images], y_train + y_test, embed)
            del train_images
        thresholds = evaluation.thresholds(default=DEFAULT_THRESHOLD)
        classifier = clf.get_params()
        params = {
            # what cross-validation kept (best mode searches backbones; oblong images, the framing)
            "backbones": list(clf.recipe.backbones or ()),
            "framing": "whole image" if any(VIEWS[v].whole for v in clf.recipe.views or ()) else "centre",
            "classifier": classifier,
            "calibration": calibrator.to_dict(),
            # out-of-fold predictions the calibrator was fitted on: grouped folds, and held-out scenes
            "calibrated_on": ["grouped folds", "new scenes"] if on_scenes else ["grouped folds"],
            "mode": spec.mode,
            "seed": spec.seed,
            "timings": {
                "embed_seconds": round(clf.timings_.get("embed_seconds", 0.0), 3),
                "fit_seconds": round(clf.timings_.get("fit_seconds", 0.0), 3),
                "finetune_seconds": round(clf.timings_.get("finetune_seconds", 0.0), 3),
                "patch_seconds": round(clf.timings_.get("patch_seconds", 0.0), 3),
                "evaluate_seconds": round(time.monotonic() - evaluate_started, 3),
                "total_seconds": round(time.monotonic() - started, 3),
                "images_embedded": len(spec.train) + len(spec.test),
            },
            "library_versions": _library_versions(),
            "refit_on_test": refitted,
            "trained_on_images": len(spec.train) + (len(spec.test) if refitted else 0),
        }
        model = {
            "format": ARTIFACT_FORMAT,
            "labels": list(spec.labels),
            "multi_label": multi,
            "calibration": calibrator.to_dict(),
            "thresholds": thresholds,
        }
        files = _classifier_files(clf)
        model["classifier_files"] = list(files)
        if refitted:  # the head as evaluated, for comparisons on images neither version has seen
            files.update({EVALUATED_PREFIX + name: data for name, data in evaluated.items()})
        files["model.json"] = json.dumps(model, indent=2).encode()
        evaluation_dict = evaluation.to_dict()
        evaluation_dict["calibration"] = {"ece": ece, "reliability": [b.to_dict() for b in reliability]}
        # what to expect on photos of new places or days: cross-validation holding out whole scenes
        evaluation_dict["new_scenes_macro_f1"] = clf.scene_cv_macro_f1_
        evaluation_dict["new_photos_macro_f1"] = new_photos
        evaluation_dict["review_guide"] = guide
        progress(1.0, "done")
        return TrainedModel(
            files=files,
            f1=float(evaluation.macro_f1 or 0.0),
            thresholds=thresholds,
            evaluation=evaluation_dict,
            summary=summary,
            params=params,
        )

    # --- loading -----------------------------------------------------------------------------------

    def load(self, files: Mapping[str, bytes]) -> LoadedClassifier:
        try:
            model = json.loads(files["model.json"])
            # what FittedClassifier.save wrote: weights.npz (linear head) or model.onnx (fine-tuned)
            names = model.get("classifier_files", [PARAMS_FILE, WEIGHTS_FILE])
            parts = {name: files[name] for name in names}
        except (KeyError, TypeError, ValueError) as e:
            raise StorageError(f"the model artifact is incomplete or unreadable: {e}") from None
        if model.get("format") != ARTIFACT_FORMAT:
            raise StorageError(f"unsupported model artifact format {model.get('format')!r}; train again")
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in parts.items():
                (Path(tmp) / name).write_bytes(data)
            clf = FittedClassifier.load(tmp, cache_dir=self.cache_dir / "onnx", num_threads=self.num_threads)
        return LoadedClassifier(
            tuple(model["labels"]),
            clf,
            Calibrator.from_dict(model["calibration"]),
            bool(model["multi_label"]),
        )


class LoadedClassifier:
    """A trained version ready to predict (implements core.ports.LoadedModel)."""

    def __init__(
        self, labels: tuple[str, ...], classifier: FittedClassifier, calibrator: Calibrator, multi: bool
    ) -> None:
        self.labels = labels
        self.classifier = classifier
        self.calibrator = calibrator
        self.multi_label = multi

    def predict_proba(self, images: Sequence[bytes]) -> FloatArray:
        if not images:
            return np.zeros((0, len(self.labels)))
        return self.calibrator.transform(self.classifier.decision_function(images))

    def predict(self, images: Sequence[bytes]) -> list[list[float]]:
        return [[float(p) for p in row] for row in self.predict_proba(images)]


def new_photos_range(
    test_interval: Interval | None, new_scenes_f1: float | None, scenes_learnable: bool | None
) -> dict[str, Any] | None:
    """The macro F1 to expect on new photos, as a range: from the F1 on new scenes (cross-validation
    holding out whole scenes, pessimistic when new photos look like the training ones) to the upper end
    of TEST's interval (TEST photos come from the training photos' sessions) when the scenes could be
    learned; else TEST's interval alone. On photos the product never saw the range held the measured F1
    on all three benchmarks (docs/training.md); None without a TEST interval."""
    if test_interval is None:
        return None
    lower, upper = test_interval.lower, test_interval.upper
    if scenes_learnable and new_scenes_f1 is not None:
        return {"lower": min(new_scenes_f1, lower), "upper": upper, "basis": "new scenes to TEST"}
    return {"lower": lower, "upper": upper, "basis": "TEST"}


def _classifier_files(clf: FittedClassifier) -> dict[str, bytes]:
    """What ``clf.save`` writes, file name → bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        return {name: (Path(tmp) / name).read_bytes() for name in clf.save(tmp)}


def _refit_on_test(spec: TrainingSpec) -> bool:
    """Whether to fit the kept head again on TRAIN + TEST after evaluating it on TEST: an expert's
    ``refit_on_test``, else whether TEST was split off TRAIN automatically."""
    value = spec.hyperparams.get(REFIT_HYPERPARAM, spec.test_split_off)
    if not isinstance(value, bool):
        raise InvalidInput(f"{REFIT_HYPERPARAM} must be true or false, got {value!r}")
    return value


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _targets(y: Sequence[Sequence[int]] | npt.NDArray[Any], n_labels: int, multi: bool) -> npt.NDArray[Any]:
    if not multi:
        return np.array([row[0] for row in y], dtype=np.int64)
    out = np.zeros((len(y), n_labels), dtype=np.float64)
    for i, row in enumerate(y):
        out[i, list(row)] = 1.0
    return out


def _library_versions() -> dict[str, str]:
    import onnxruntime
    import sklearn

    return {
        "visionloop": __version__,
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
        "scikit-learn": sklearn.__version__,
    }


def npz_bytes(**arrays: npt.NDArray[Any]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def check_hyperparams(given: Mapping[str, object], allowed: Mapping[str, type]) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise InvalidInput(
            f"unknown hyper-parameters: {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        )


def _read(
    examples: Sequence[TrainingExample], load_image: Callable[[str], bytes], report: ProgressFn
) -> list[bytes]:
    """The examples' images, reporting how many are read about every 5 % (a remote store takes time)."""
    out = []
    every = max(1, len(examples) // 20)
    report(0.0, f"reading images (0 of {len(examples)})")
    for i, ex in enumerate(examples, 1):
        out.append(load_image(ex.content_hash))
        if i % every == 0 or i == len(examples):
            report(i / len(examples), f"reading images ({i} of {len(examples)})")
    return out
