"""The values the detection engine takes and returns: training examples and detections.

Boxes are ``core.entities.Box`` in ratios of the image (top-left origin), as Rekognition returns them,
so callers never deal with the engine's input resolution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from visionloop.core.entities import Box

ProgressFn = Callable[[float, str], None]  # (fraction done 0..1, stage), as core.ports.ProgressFn


@dataclass(frozen=True)
class DetectionExample:
    """One training image: the key ``load_image`` reads it by (content hash or id) and its true boxes."""

    image: str
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class Detection:
    """One detected object: its label, a confidence in 0..1 and its box in ratios of the image."""

    label: str
    confidence: float
    box: Box


def flip_box(box: Box) -> Box:
    """The box of the left-right mirrored image."""
    return Box(box.label, 1.0 - box.left - box.width, box.top, box.width, box.height)
