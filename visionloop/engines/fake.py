"""A tiny, deterministic TrainingEngine for fast tests of everything around training (the httpx
MockTransport idea: a real implementation of the port, not a mock). It classifies by the mean colour of
an image: nearest class centroid, softmax over negative distances. Real training is tested end to end
with the bundled backbones."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from PIL import Image

from visionloop.core.entities import TaskType
from visionloop.core.ports import ProgressFn, TrainedModel, TrainingSpec
from visionloop.errors import InvalidInput


def mean_colour(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        pixels = np.asarray(img.convert("RGB").resize((8, 8)), dtype=np.float64).reshape(-1, 3)
    result: np.ndarray = pixels.mean(0) / 255
    return result


class ColourModel:
    def __init__(self, labels: Sequence[str], centroids: np.ndarray, multi: bool) -> None:
        self.labels = tuple(labels)
        self.centroids = centroids
        self.multi = multi

    def predict(self, images: Sequence[bytes]) -> list[list[float]]:
        out = []
        for data in images:
            d = np.linalg.norm(self.centroids - mean_colour(data), axis=1)
            if self.multi:
                p = 1 / (1 + np.exp(20 * (d - 0.25)))
            else:
                e = np.exp(-20 * (d - d.min()))
                p = e / e.sum()
            out.append([float(v) for v in p])
        return out


class ColourEngine:
    """Implements core.ports.TrainingEngine; ``fail_with`` makes training raise (to test failures)."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.fail_with = fail_with
        self.trained = 0

    def train(
        self, spec: TrainingSpec, load_image: Callable[[str], bytes], progress: ProgressFn
    ) -> TrainedModel:
        if self.fail_with is not None:
            raise self.fail_with
        unknown = set(spec.hyperparams) - {"sharpness"}
        if unknown:
            raise InvalidInput(f"unknown hyper-parameters: {', '.join(sorted(unknown))}")
        multi = spec.task is TaskType.MULTI_LABEL
        feats = {
            ex.content_hash: mean_colour(load_image(ex.content_hash)) for ex in (*spec.train, *spec.test)
        }
        progress(0.5, "fitting")
        centroids = np.array(
            [
                np.mean([feats[ex.content_hash] for ex in spec.train if label in ex.labels], axis=0)
                for label in spec.labels
            ]
        )
        model = ColourModel(spec.labels, centroids, multi)
        probs = model.predict([load_image(ex.content_hash) for ex in spec.test])
        correct = [
            int(spec.labels[int(np.argmax(p))] in ex.labels) for p, ex in zip(probs, spec.test, strict=True)
        ]
        accuracy = sum(correct) / len(correct)
        thresholds = dict.fromkeys(spec.labels, 0.5)
        self.trained += 1
        progress(1.0, "done")
        files = {
            "model.json": json.dumps({"labels": list(spec.labels), "multi": multi}).encode(),
            "centroids.npy": _npy(centroids),
        }
        evaluation = {"accuracy": accuracy, "macro_f1": accuracy, "per_label": []}
        summary = {"Version": 1, "AggregatedEvaluationResults": {"F1Score": accuracy}}
        return TrainedModel(files, accuracy, thresholds, evaluation, summary, {"engine": "colour"})

    def load(self, files: Mapping[str, bytes]) -> ColourModel:
        meta = json.loads(files["model.json"])
        centroids = np.load(io.BytesIO(files["centroids.npy"]))
        return ColourModel(meta["labels"], centroids, meta["multi"])


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()
