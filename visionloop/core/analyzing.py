"""Use cases of the pretrained analysers (DetectLabels, DetectText, DetectModerationLabels): read and check
the image (bytes or a bucket object, within Rekognition's limits for image operations), check the options,
run the analyser of the kind, and apply what Rekognition applies to its answer (MinConfidence, MaxLabels,
the label filters). The analysers themselves are behind ``AnalyserSource`` (visionloop.analysis.registry
in production), so this module needs no model and no framework.

``Analysis`` is what a server holds: the source and a small pool of threads that run the analysers, so
that a request waits on a future instead of holding a request thread while a model runs."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from visionloop.core.images import ImageLimits, check_image
from visionloop.core.keys import ObjectRef, check_bucket, check_key
from visionloop.core.records.analysis import (
    BoundingBox,
    ImageLabel,
    ImageProperties,
    LabelAnalysis,
    ModerationLabel,
    Point,
    TextDetection,
)
from visionloop.core.records.faces import FaceDetail
from visionloop.core.services import Services
from visionloop.errors import ImageTooLarge, InvalidInput

# Rekognition's image operations: 5 MiB as Bytes, 15 MB from a bucket, 80..10,000 px, JPEG or PNG
ANALYSIS_LIMITS = ImageLimits(max_bytes=5 * 1024 * 1024, min_side=80, max_side=10_000, max_aspect=125.0)
ANALYSIS_OBJECT_LIMITS = ImageLimits(
    max_bytes=15 * 1024 * 1024, min_side=80, max_side=10_000, max_aspect=125.0
)
KINDS = ("labels", "text", "moderation")
GENERAL_LABELS, IMAGE_PROPERTIES = "GENERAL_LABELS", "IMAGE_PROPERTIES"
FEATURES = (GENERAL_LABELS, IMAGE_PROPERTIES)
MAX_LABELS = 1000
MAX_FILTERS, MAX_FILTER_LENGTH = 100, 50
MAX_DOMINANT_COLORS = 20
MAX_REGIONS = 10
DEFAULT_LABEL_CONFIDENCE = 55.0
DEFAULT_MODERATION_CONFIDENCE = 50.0
DEFAULT_WORD_CONFIDENCE = 80.0  # WordFilter.MinConfidence when a WordFilter omits it

ImageSource = bytes | ObjectRef
Region = BoundingBox | tuple[Point, ...]
T = TypeVar("T")


# --- the analysers, as the core sees them -------------------------------------------------------------


class LabelsAnalyserPort(Protocol):
    kind: str
    version: str

    def warm_up(self) -> None: ...

    def detect(
        self,
        image: bytes,
        *,
        general_labels: bool = True,
        image_properties: bool = False,
        max_dominant_colors: int = 10,
        min_confidence: float = 1.0,
    ) -> LabelAnalysis: ...


class TextAnalyserPort(Protocol):
    kind: str
    version: str

    def warm_up(self) -> None: ...

    def detect(
        self,
        image: bytes,
        *,
        min_confidence: float = 0,
        min_box_height: float = 0,
        min_box_width: float = 0,
        regions: Sequence[Region] | None = None,
    ) -> list[TextDetection]: ...


class ModerationAnalyserPort(Protocol):
    kind: str
    version: str

    def warm_up(self) -> None: ...

    def detect(self, image: bytes, *, min_confidence: float = 50) -> list[ModerationLabel]: ...


class FaceAnalyserPort(Protocol):
    """Finds faces (DetectFaces, CompareFaces, IndexFaces, SearchFacesByImage): kind ``faces``.
    ``version`` names the models (a collection records it: vectors of two versions do not compare);
    ``embedding_dim`` is the length of its identity vectors; ``match_distance`` the Euclidean distance
    between unit vectors below which two faces are the same person by the model's own calibration."""

    kind: str
    version: str
    embedding_dim: int
    match_distance: float

    def warm_up(self) -> None: ...

    def detect(self, image: bytes, *, attributes: bool = False, embeddings: bool = False) -> list[FaceDetail]:
        """The faces in ``image``, largest first; ``attributes`` adds the estimated attributes,
        ``embeddings`` each face's identity vector."""
        ...


AnalyserSource = Callable[[str], Any]  # kind → the analyser of that kind (created once, shared)


@dataclass
class Analysis:
    """The analysers of a server and the threads that run them (``workers``, created on first use)."""

    source: AnalyserSource
    workers: int = field(default_factory=lambda: max(1, min(4, (os.cpu_count() or 1))))
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="visionloop-analysis")
            return self._pool.submit(fn, *args)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


# --- options ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelOptions:
    """DetectLabels' options. Filters match label names and categories without regard to case."""

    max_labels: int | None = None
    min_confidence: float = DEFAULT_LABEL_CONFIDENCE
    features: tuple[str, ...] = (GENERAL_LABELS,)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    max_dominant_colors: int = 10


@dataclass(frozen=True)
class TextOptions:
    """DetectText's Filters: WordFilter (confidence 0-100, box height and width as ratios) and
    RegionsOfInterest (boxes or polygons as ratios)."""

    min_confidence: float = 0.0
    min_box_height: float = 0.0
    min_box_width: float = 0.0
    regions: tuple[Region, ...] = ()


@dataclass(frozen=True)
class ModerationOptions:
    min_confidence: float = DEFAULT_MODERATION_CONFIDENCE


@dataclass(frozen=True)
class LabelsResult:
    labels: tuple[ImageLabel, ...]
    properties: ImageProperties | None
    version: str


@dataclass(frozen=True)
class TextResult:
    detections: tuple[TextDetection, ...]
    version: str


@dataclass(frozen=True)
class ModerationResult:
    labels: tuple[ModerationLabel, ...]
    version: str


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _check_range(name: str, value: object, lo: float, hi: float) -> None:
    if not _is_number(value) or not lo <= value <= hi:  # type: ignore[operator]
        raise InvalidInput(f"{name} must be a number from {lo:g} to {hi:g}, not {value!r}")


def _check_names(name: str, values: object) -> tuple[str, ...]:
    if not isinstance(values, tuple | list) or len(values) > MAX_FILTERS:
        raise InvalidInput(f"{name} must be a list of at most {MAX_FILTERS} names")
    for v in values:
        if not isinstance(v, str) or not 1 <= len(v) <= MAX_FILTER_LENGTH:
            raise InvalidInput(
                f"each of {name} must be a name of 1 to {MAX_FILTER_LENGTH} characters, not {v!r}"
            )
    return tuple(values)


def check_label_options(o: LabelOptions) -> LabelOptions:
    """The options if they are valid; InvalidInput naming the first bad one otherwise."""
    if o.max_labels is not None and (
        isinstance(o.max_labels, bool) or not isinstance(o.max_labels, int) or o.max_labels < 0
    ):
        raise InvalidInput(f"max_labels must be an integer ≥ 0, not {o.max_labels!r}")
    _check_range("min_confidence", o.min_confidence, 0, 100)
    if not o.features or len(set(o.features)) != len(o.features) or not set(o.features) <= set(FEATURES):
        raise InvalidInput(f"features must be one or both of {', '.join(FEATURES)}, not {list(o.features)!r}")
    for name in ("include", "exclude", "include_categories", "exclude_categories"):
        _check_names(name, getattr(o, name))
    if (
        isinstance(o.max_dominant_colors, bool)
        or not isinstance(o.max_dominant_colors, int)
        or not 0 <= o.max_dominant_colors <= MAX_DOMINANT_COLORS
    ):
        raise InvalidInput(
            f"max_dominant_colors must be an integer from 0 to {MAX_DOMINANT_COLORS}, "
            f"not {o.max_dominant_colors!r}"
        )
    return o


def check_region(region: object, where: str = "region") -> Region:
    """A region of interest: a box (ratios, inside the image, not empty) or a polygon of ≥ 3 points."""
    if isinstance(region, BoundingBox):
        for n in ("left", "top", "width", "height"):
            _check_range(f"{where}.{n}", getattr(region, n), 0, 1)
        if region.width <= 0 or region.height <= 0:
            raise InvalidInput(f"{where} must have a width and a height above 0")
        return region
    if isinstance(region, tuple) and len(region) >= 3 and all(isinstance(p, Point) for p in region):
        for i, p in enumerate(region):
            _check_range(f"{where}.polygon[{i}].x", p.x, 0, 1)
            _check_range(f"{where}.polygon[{i}].y", p.y, 0, 1)
        return region
    raise InvalidInput(f"{where} must be a bounding box or a polygon of at least 3 points")


def check_text_options(o: TextOptions) -> TextOptions:
    _check_range("min_confidence", o.min_confidence, 0, 100)
    _check_range("min_box_height", o.min_box_height, 0, 1)
    _check_range("min_box_width", o.min_box_width, 0, 1)
    if len(o.regions) > MAX_REGIONS:
        raise InvalidInput(f"at most {MAX_REGIONS} regions of interest, not {len(o.regions)}")
    for i, region in enumerate(o.regions):
        check_region(region, f"regions[{i}]")
    return o


def check_moderation_options(o: ModerationOptions) -> ModerationOptions:
    _check_range("min_confidence", o.min_confidence, 0, 100)
    return o


# --- the image ----------------------------------------------------------------------------------------


def read_image(svc: Services, image: ImageSource) -> bytes:
    """The image's bytes (read from its bucket when given by reference), checked: JPEG or PNG, within
    the byte and pixel limits of Rekognition's image operations. ObjectNotFound when the object is
    missing; InvalidImage, ImageTooLarge or InvalidInput when the image is not acceptable."""
    if isinstance(image, bytes):
        data, limits = image, ANALYSIS_LIMITS
    else:
        data = svc.buckets.get(check_bucket(image.bucket), check_key(image.key))
        limits = ANALYSIS_OBJECT_LIMITS
        if len(data) > limits.max_bytes:
            raise ImageTooLarge(
                f"{image.uri()} is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes"
            )
    check_image(data, svc.inspector, limits)
    return data


# --- the use cases ------------------------------------------------------------------------------------


def _folded(names: Sequence[str]) -> set[str]:
    return {n.casefold() for n in names}


def filter_labels(labels: Sequence[ImageLabel], o: LabelOptions) -> tuple[ImageLabel, ...]:
    """Rekognition's rules on an analyser's labels: inclusion and exclusion filters on names and
    categories, MinConfidence (on labels and their instances), then the MaxLabels surest."""
    include, exclude = _folded(o.include), _folded(o.exclude)
    include_cats, exclude_cats = _folded(o.include_categories), _folded(o.exclude_categories)
    out = []
    for label in sorted(labels, key=lambda x: (-x.confidence, x.name)):
        cats = _folded(label.categories)
        if label.confidence < o.min_confidence:
            continue
        if (include and label.name.casefold() not in include) or label.name.casefold() in exclude:
            continue
        if (include_cats and not cats & include_cats) or cats & exclude_cats:
            continue
        instances = tuple(i for i in label.instances if i.confidence >= o.min_confidence)
        if instances != label.instances:
            label = ImageLabel(
                label.name, label.confidence, instances, label.parents, label.aliases, label.categories
            )
        out.append(label)
    limit = MAX_LABELS if o.max_labels is None else min(o.max_labels, MAX_LABELS)
    return tuple(out[:limit])


def detect_labels(
    svc: Services, analysers: AnalyserSource, image: ImageSource, options: LabelOptions | None = None
) -> LabelsResult:
    """DetectLabels: labels (with instances, parents, aliases, categories) and/or image properties."""
    o = check_label_options(options or LabelOptions())
    data = read_image(svc, image)
    analyser: LabelsAnalyserPort = analysers("labels")
    general = GENERAL_LABELS in o.features
    found = analyser.detect(
        data,
        general_labels=general,
        image_properties=IMAGE_PROPERTIES in o.features,
        max_dominant_colors=o.max_dominant_colors,
        min_confidence=o.min_confidence,
    )
    labels = filter_labels(found.labels, o) if general else ()
    return LabelsResult(labels, found.properties, analyser.version)


def detect_text(
    svc: Services, analysers: AnalyserSource, image: ImageSource, options: TextOptions | None = None
) -> TextResult:
    """DetectText: LINE and WORD detections that pass the filters."""
    o = check_text_options(options or TextOptions())
    data = read_image(svc, image)
    analyser: TextAnalyserPort = analysers("text")
    found = analyser.detect(
        data,
        min_confidence=o.min_confidence,
        min_box_height=o.min_box_height,
        min_box_width=o.min_box_width,
        regions=list(o.regions) or None,
    )
    return TextResult(tuple(found), analyser.version)


def detect_moderation_labels(
    svc: Services, analysers: AnalyserSource, image: ImageSource, options: ModerationOptions | None = None
) -> ModerationResult:
    """DetectModerationLabels: the moderation labels at or above MinConfidence, surest first."""
    o = check_moderation_options(options or ModerationOptions())
    data = read_image(svc, image)
    analyser: ModerationAnalyserPort = analysers("moderation")
    found = [
        m for m in analyser.detect(data, min_confidence=o.min_confidence) if m.confidence >= o.min_confidence
    ]
    found.sort(key=lambda m: (-m.confidence, m.level, m.name))
    return ModerationResult(tuple(found), analyser.version)


__all__ = [
    "ANALYSIS_LIMITS",
    "ANALYSIS_OBJECT_LIMITS",
    "FEATURES",
    "KINDS",
    "Analysis",
    "AnalyserSource",
    "LabelOptions",
    "LabelsResult",
    "ModerationOptions",
    "ModerationResult",
    "TextOptions",
    "TextResult",
    "detect_labels",
    "detect_moderation_labels",
    "detect_text",
    "filter_labels",
    "read_image",
]
