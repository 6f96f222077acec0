"""The classification TrainingEngine: backbone embeddings (ONNX Runtime, cached per image), a head fitted
by the training recipe, temperature calibration on out-of-fold logits, evaluation on the TEST set and a
self-contained artifact that a fresh process loads to identical predictions."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop import __version__
from visionloop.core.entities import TaskType
from visionloop.core.ports import ProgressFn, TrainedModel, TrainingSpec
from visionloop.engines.backbones import Backbone
from visionloop.engines.calibration import (
    Calibrator,
    expected_calibration_error,
    reliability_table,
    top_label_confidence,
)
from visionloop.engines.embeddings import EmbeddingCache, embed_with_cache
from visionloop.engines.evaluation_summary import build_summary
from visionloop.engines.metrics import evaluate_classification
from visionloop.engines.registry import create_backbone
from visionloop.errors import InvalidInput, StorageError

FloatArray = npt.NDArray[np.float64]
ARTIFACT_FORMAT = 1


class ClassificationEngine:
    """Implements core.ports.TrainingEngine for single- and multi-label classification."""

    def __init__(self, cache_dir: str | os.PathLike[str], num_threads: int | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.num_threads = num_threads
        self._backbones: dict[str, Backbone] = {}
        self._cache: EmbeddingCache | None = None
        self._lock = threading.Lock()

    def backbone(self, name: str) -> Backbone:
        with self._lock:
            if name not in self._backbones:
                self._backbones[name] = create_backbone(
                    name, cache_dir=self.cache_dir / "onnx", num_threads=self.num_threads
                )
            return self._backbones[name]

    def embeddings(self) -> EmbeddingCache:
        with self._lock:
            if self._cache is None:
                self._cache = EmbeddingCache(self.cache_dir / "embeddings.sqlite")
            return self._cache

    # --- training ----------------------------------------------------------------------------------

    def train(
        self, spec: TrainingSpec, load_image: Callable[[str], bytes], progress: ProgressFn
    ) -> TrainedModel:
        from visionloop.engines.linear_head import fit_head

        started = time.monotonic()
        multi = spec.task is TaskType.MULTI_LABEL
        index = {label: i for i, label in enumerate(spec.labels)}
        progress(0.0, "loading backbone")
        backbone = self.backbone(spec.backbone)
        n_total = len(spec.train) + len(spec.test)

        def embed(examples: Sequence[Any], offset: int) -> FloatArray:
            items = [(ex.content_hash, _loader(load_image, ex.content_hash)) for ex in examples]
            out = []
            for start in range(0, len(items), 64):
                chunk = items[start : start + 64]
                plain = embed_with_cache(backbone, self.embeddings(), chunk)
                flipped = embed_with_cache(backbone, self.embeddings(), chunk, flip=True)
                out.append((plain + flipped) / 2)
                progress(0.6 * (offset + start + len(chunk)) / n_total, "embedding images")
            return np.concatenate(out).astype(np.float64)

        x_train = embed(spec.train, 0)
        x_test = embed(spec.test, len(spec.train))
        embed_seconds = time.monotonic() - started
        y_train = [[index[label] for label in ex.labels] for ex in spec.train]
        y_test = [[index[label] for label in ex.labels] for ex in spec.test]

        budget = None if spec.max_seconds is None else max(1.0, spec.max_seconds - embed_seconds)
        progress(0.6, "fitting the classifier")
        head = fit_head(
            x_train,
            y_train,
            len(spec.labels),
            multi_label=multi,
            mode=spec.mode,
            seed=spec.seed,
            max_seconds=budget,
            hyperparams=dict(spec.hyperparams),
        )
        fit_seconds = time.monotonic() - started - embed_seconds
        progress(0.85, "calibrating")
        calibrator = Calibrator("sigmoid" if multi else "softmax").fit(
            head.oof_logits_, _targets(head.oof_labels_, len(spec.labels), multi)
        )

        progress(0.9, "evaluating on the TEST dataset")
        evaluate_started = time.monotonic()
        probs = calibrator.transform(head.logits(x_test))
        truth: list[Any] = [set(y) for y in y_test] if multi else [y[0] for y in y_test]
        evaluation = evaluate_classification(
            truth,
            probs,
            spec.labels,
            multi_label=multi,
            image_ids=[ex.content_hash for ex in spec.test],
            seed=spec.seed,
        )
        if multi:
            conf = probs.ravel()
            correct = _targets(y_test, len(spec.labels), True).ravel().astype(bool)
        else:
            conf, correct = top_label_confidence(probs, np.array([y[0] for y in y_test]))
        ece = expected_calibration_error(conf, correct)
        reliability = reliability_table(conf, correct)
        summary = build_summary(
            evaluation,
            project_version_arn=spec.version_arn,
            n_training_images=len(spec.train),
            calibration_error=ece,
            reliability=reliability,
        )
        thresholds = evaluation.thresholds(default=0.5)
        params = {
            "backbone": backbone.spec.name,
            "backbone_fingerprint": backbone.spec.fingerprint,
            "head": head.get_params(),
            "calibration": calibrator.to_dict(),
            "mode": spec.mode,
            "seed": spec.seed,
            "timings": {
                "embed_seconds": round(embed_seconds, 3),
                "fit_seconds": round(fit_seconds, 3),
                "evaluate_seconds": round(time.monotonic() - evaluate_started, 3),
                "total_seconds": round(time.monotonic() - started, 3),
                "images_embedded": n_total,
            },
            "library_versions": _library_versions(),
        }
        model = {
            "format": ARTIFACT_FORMAT,
            "labels": list(spec.labels),
            "multi_label": multi,
            "backbone": backbone.spec.name,
            "backbone_fingerprint": backbone.spec.fingerprint,
            "calibration": calibrator.to_dict(),
            "thresholds": thresholds,
            "params": params,
        }
        files = {"model.json": json.dumps(model, indent=2).encode(), "head.npz": head.to_bytes()}
        evaluation_dict = evaluation.to_dict()
        evaluation_dict["calibration"] = {"ece": ece, "reliability": [b.to_dict() for b in reliability]}
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
        from visionloop.engines.linear_head import load_head

        try:
            model = json.loads(files["model.json"])
            head = load_head(files["head.npz"])
        except (KeyError, ValueError) as e:
            raise StorageError(f"the model artifact is incomplete or unreadable: {e}") from None
        if model.get("format") != ARTIFACT_FORMAT:
            raise StorageError(f"unsupported model artifact format {model.get('format')!r}")
        backbone = self.backbone(model["backbone"])
        if backbone.spec.fingerprint != model["backbone_fingerprint"]:
            raise StorageError(
                f"backbone {model['backbone']} changed since the model was trained "
                f"({backbone.spec.fingerprint} vs {model['backbone_fingerprint']}); train again"
            )
        return LoadedClassifier(
            tuple(model["labels"]),
            backbone,
            head,
            Calibrator.from_dict(model["calibration"]),
            model["multi_label"],
        )


class LoadedClassifier:
    """A trained version ready to predict (implements core.ports.LoadedModel)."""

    def __init__(
        self, labels: tuple[str, ...], backbone: Backbone, head: Any, calibrator: Calibrator, multi: bool
    ) -> None:
        self.labels = labels
        self.backbone = backbone
        self.head = head
        self.calibrator = calibrator
        self.multi_label = multi

    def predict_proba(self, images: Sequence[bytes]) -> FloatArray:
        if not images:
            return np.zeros((0, len(self.labels)))
        x = (self.backbone.embed(images) + self.backbone.embed(images, flip=True)) / 2
        return self.calibrator.transform(self.head.logits(x.astype(np.float64)))

    def predict(self, images: Sequence[bytes]) -> list[list[float]]:
        return [[float(p) for p in row] for row in self.predict_proba(images)]


def _loader(load_image: Callable[[str], bytes], digest: str) -> Callable[[], bytes]:
    return lambda: load_image(digest)


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
