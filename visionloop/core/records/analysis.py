"""Pretrained image analysis: what the analysers (labels, text, moderation) return. Plain records in
Rekognition's conventions — confidences 0–100, geometry in ratios of the image size with the origin at
the top left — so the native API and the AWS layer serialize them without knowing any model.

The analysers themselves live in visionloop.analysis (they load models); this module imports nothing
beyond the standard library."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True)
class BoundingBox:
    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class Point:
    x: float
    y: float


@dataclass(frozen=True)
class LabelInstance:
    """One object of a label, with its box (an object detector found it)."""

    box: BoundingBox
    confidence: float


@dataclass(frozen=True)
class ImageLabel:
    """A label for the image (DetectLabels' Label): ``parents`` are the names of the label's ancestors in
    the shipped hierarchy, nearest first; ``categories`` the top-level categories it belongs to."""

    name: str
    confidence: float
    instances: tuple[LabelInstance, ...] = ()
    parents: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class DominantColor:
    """A colour that covers part of the image: its mean RGB (0–255), hex code ("#rrggbb"), nearest CSS
    colour keyword, a simplified colour name (one of a dozen) and the share of pixels (0–100)."""

    red: int
    green: int
    blue: int
    hex_code: str
    css_color: str
    simplified_color: str
    pixel_percent: float


@dataclass(frozen=True)
class ImageQuality:
    """Brightness, sharpness and contrast, each 0–100 (contrast is given for the whole image only)."""

    brightness: float
    sharpness: float
    contrast: float | None = None


@dataclass(frozen=True)
class RegionProperties:
    """Quality and dominant colours of the image's foreground or background."""

    quality: ImageQuality
    dominant_colors: tuple[DominantColor, ...] = ()


@dataclass(frozen=True)
class ImageProperties:
    """DetectLabels' ImageProperties: the whole image, and its foreground and background."""

    quality: ImageQuality
    dominant_colors: tuple[DominantColor, ...] = ()
    foreground: RegionProperties | None = None
    background: RegionProperties | None = None


@dataclass(frozen=True)
class LabelAnalysis:
    """What the labels analyser found: labels sorted by confidence, and the image's properties when they
    were asked for."""

    labels: tuple[ImageLabel, ...] = ()
    properties: ImageProperties | None = None


@dataclass(frozen=True)
class TextDetection:
    """A LINE or a WORD (DetectText's TextDetection); a word's ``parent_id`` is its line's ``id``."""

    text: str
    kind: Literal["LINE", "WORD"]
    id: int
    parent_id: int | None
    confidence: float
    box: BoundingBox
    polygon: tuple[Point, ...] = field(default=())


@dataclass(frozen=True)
class ModerationLabel:
    """A label of Rekognition's moderation taxonomy: level 1 (top, ``parent_name`` "") or level 2."""

    name: str
    parent_name: str
    level: int
    confidence: float


class Analyser(Protocol):
    """What every analyser offers: a model version string and lazy, thread-safe loading."""

    kind: str  # "labels", "text" or "moderation"
    version: str  # e.g. "visionloop-labels-1.0 (efficientnet-lite0 + ssd-mobilenet-v2-coco)"

    def warm_up(self) -> None:
        """Load the model now (otherwise the first call does)."""
        ...
