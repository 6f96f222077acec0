"""A tiny, deterministic TrainingEngine for fast tests of everything around training (the httpx
MockTransport idea: a real implementation of the port, not a mock).

* Classification: it classifies by the mean colour of an image: nearest class centroid, softmax over
  negative distances.
* Object detection: it learns each label's mean colour inside its true boxes; its ``ColourDetector``
  finds the pixels that differ clearly from the image's border colour (on a small copy of the image), one
  object per connected region of them, named by the nearest colour centroid the same way.

Real training is tested end to end with the bundled backbones and the detection engine."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from PIL import Image

from visionloop.core.entities import Box, TaskType
from visionloop.core.ports import FoundObject, ProgressFn, TrainedModel, TrainingExample, TrainingSpec
from visionloop.errors import InvalidInput

TASK_DETECTION = "object_detection"  # model.json's "task" of a detector
SHARPNESS = 20.0  # softmax(-SHARPNESS · colour distance)
DETECT_SIDE = 48  # the side of the small copy a detector looks at
FOREGROUND = 0.15  # a pixel is foreground when a channel differs this much (0..1) from the border colour
MIN_REGION = 4  # pixels of the small copy: smaller regions are noise (JPEG ringing, a stray pixel)


def mean_colour(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        pixels = np.asarray(img.convert("RGB").resize((8, 8)), dtype=np.float64).reshape(-1, 3)
    result: np.ndarray = pixels.mean(0) / 255
    return result


def _softmax_nearest(centroids: np.ndarray, colour: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(centroids - colour, axis=1)
    e = np.exp(-SHARPNESS * (d - d.min()))
    result: np.ndarray = e / e.sum()
    return result


class ColourModel:
    def __init__(self, labels: Sequence[str], centroids: np.ndarray, multi: bool) -> None:
        self.labels = tuple(labels)
        self.centroids = centroids
        self.multi = multi

    def predict(self, images: Sequence[bytes]) -> list[list[float]]:
        out = []
        for data in images:
            colour = mean_colour(data)
            if self.multi:
                d = np.linalg.norm(self.centroids - colour, axis=1)
                p = 1 / (1 + np.exp(SHARPNESS * (d - 0.25)))
            else:
                p = _softmax_nearest(self.centroids, colour)
            out.append([float(v) for v in p])
        return out


# --- detection ------------------------------------------------------------------------------------------


def small_pixels(data: bytes, side: int = DETECT_SIDE) -> np.ndarray:
    """The image as a side × side RGB array in 0..1 (boxes are ratios, so the aspect need not be kept)."""
    with Image.open(io.BytesIO(data)) as img:
        small = img.convert("RGB").resize((side, side), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float64) / 255


def box_colour(pixels: np.ndarray, box: Box) -> np.ndarray:
    """The mean colour of ``pixels`` inside ``box`` (at least one pixel)."""
    h, w = pixels.shape[:2]
    x0, y0 = min(int(box.left * w), w - 1), min(int(box.top * h), h - 1)
    x1, y1 = max(x0 + 1, round((box.left + box.width) * w)), max(y0 + 1, round((box.top + box.height) * h))
    result: np.ndarray = pixels[y0:y1, x0:x1].reshape(-1, 3).mean(0)
    return result


def foreground(pixels: np.ndarray) -> np.ndarray:
    """Pixels that differ clearly from the border colour (the median colour of the outermost pixels)."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
    background = np.median(border, axis=0)
    mask: np.ndarray = np.abs(pixels - background).max(axis=2) > FOREGROUND
    return mask


def regions(mask: np.ndarray) -> list[np.ndarray]:
    """The 4-connected regions of a boolean mask, each as an array of (row, column) pixels."""
    seen = np.zeros_like(mask, dtype=bool)
    h, w = mask.shape
    out = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        stack, members = [start], []
        while stack:
            y, x = stack.pop()
            members.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        out.append(np.array(members))
    return out


class ColourDetector:
    """Implements core.ports.LoadedDetector: one object per region of foreground pixels, labelled by
    the nearest colour centroid with a softmax over negative distances as its probability."""

    def __init__(self, labels: Sequence[str], centroids: np.ndarray) -> None:
        self.labels = tuple(labels)
        self.centroids = centroids

    def detect(self, images: Sequence[bytes]) -> list[list[FoundObject]]:
        return [self._objects(small_pixels(data)) for data in images]

    def _objects(self, pixels: np.ndarray) -> list[FoundObject]:
        h, w = pixels.shape[:2]
        found = []
        for region in regions(foreground(pixels)):
            if len(region) < MIN_REGION:
                continue
            (y0, x0), (y1, x1) = region.min(0), region.max(0) + 1
            probs = _softmax_nearest(self.centroids, pixels[region[:, 0], region[:, 1]].mean(0))
            best = int(np.argmax(probs))
            box = Box(self.labels[best], x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h)
            found.append(FoundObject(self.labels[best], float(probs[best]), box))
        found.sort(key=lambda o: -o.probability)
        return found


def _train_detector(
    spec: TrainingSpec, load_image: Callable[[str], bytes], progress: ProgressFn
) -> TrainedModel:
    from visionloop.engines.detection.metrics import evaluate_detection
    from visionloop.engines.detection.records import Detection
    from visionloop.engines.detection.report import detection_summary, evaluation_document

    colours: dict[str, list[np.ndarray]] = {label: [] for label in spec.labels}
    for ex in spec.train:
        pixels = small_pixels(load_image(ex.content_hash))
        for box in ex.boxes:
            colours[box.label].append(box_colour(pixels, box))
    progress(0.5, "fitting")
    centroids = np.array([np.mean(colours[label], axis=0) for label in spec.labels])
    model = ColourDetector(spec.labels, centroids)
    found = model.detect([load_image(ex.content_hash) for ex in spec.test])
    evaluation = evaluate_detection(
        [ex.content_hash for ex in spec.test],
        [ex.boxes for ex in spec.test],
        [[Detection(o.label, o.probability, o.box) for o in objects] for objects in found],
        spec.labels,
    )
    progress(1.0, "done")
    document = evaluation_document(
        evaluation,
        warnings=spec.grouping_warnings,
        training={"images": len(spec.train), "boxes": sum(len(ex.boxes) for ex in spec.train)},
    )
    summary = detection_summary(
        evaluation, project_version_arn=spec.version_arn, n_training_images=len(spec.train)
    )
    files = _files({"task": TASK_DETECTION, "labels": list(spec.labels)}, centroids)
    f1 = document["macro_f1"] or 0.0
    return TrainedModel(files, f1, evaluation.thresholds(), document, summary, {"engine": "colour"})


# --- the engine -----------------------------------------------------------------------------------------


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
        if spec.task is TaskType.DETECTION:
            trained = _train_detector(spec, load_image, progress)
        else:
            trained = _train_classifier(spec, load_image, progress)
        self.trained += 1
        return trained

    def load(self, files: Mapping[str, bytes]) -> ColourModel | ColourDetector:
        meta = json.loads(files["model.json"])
        centroids = np.load(io.BytesIO(files["centroids.npy"]))
        if meta.get("task") == TASK_DETECTION:
            return ColourDetector(meta["labels"], centroids)
        return ColourModel(meta["labels"], centroids, meta["multi"])


def _train_classifier(
    spec: TrainingSpec, load_image: Callable[[str], bytes], progress: ProgressFn
) -> TrainedModel:
    multi = spec.task is TaskType.MULTI_LABEL
    feats = {ex.content_hash: mean_colour(load_image(ex.content_hash)) for ex in (*spec.train, *spec.test)}
    progress(0.5, "fitting")
    centroids = np.array([_mean_of(feats, spec.train, label) for label in spec.labels])
    model = ColourModel(spec.labels, centroids, multi)
    probs = model.predict([load_image(ex.content_hash) for ex in spec.test])
    correct = [
        int(spec.labels[int(np.argmax(p))] in ex.labels) for p, ex in zip(probs, spec.test, strict=True)
    ]
    accuracy = sum(correct) / len(correct)
    thresholds = dict.fromkeys(spec.labels, 0.5)
    progress(1.0, "done")
    files = _files({"labels": list(spec.labels), "multi": multi}, centroids)
    evaluation = {"accuracy": accuracy, "macro_f1": accuracy, "per_label": []}
    summary = {"Version": 1, "AggregatedEvaluationResults": {"F1Score": accuracy}}
    return TrainedModel(files, accuracy, thresholds, evaluation, summary, {"engine": "colour"})


def _mean_of(feats: Mapping[str, np.ndarray], examples: Sequence[TrainingExample], label: str) -> np.ndarray:
    result: np.ndarray = np.mean([feats[ex.content_hash] for ex in examples if label in ex.labels], axis=0)
    return result


def _files(meta: Mapping[str, object], centroids: np.ndarray) -> dict[str, bytes]:
    return {"model.json": json.dumps(meta).encode(), "centroids.npy": _npy(centroids)}


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()
