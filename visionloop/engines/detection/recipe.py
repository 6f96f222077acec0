"""The detector's recipe: the settings that shape the head and decoding, saved as JSON in the artifact.

A loaded detector rebuilds exactly the trained head from this file and the head's weights; the frozen
backbone comes from the installed package (``BACKBONE`` names it).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

RECIPE_FILE, WEIGHTS_FILE = "detector.json", "head.npz"
BACKBONE = "efficientnet-lite0"
FORMAT = 1


@dataclass(frozen=True)
class DetectorRecipe:
    """Input size (the image is resized to a square of that side), head shape and decoding rules.

    ``input_size`` is the lever for small objects: 512 px keeps ~500 px photos at their own resolution.
    ``ranges`` assigns a true box to the level whose stride suits it (FCOS), by its largest distance
    from a location to a side, in input pixels.
    """

    labels: tuple[str, ...]
    input_size: int = 512
    width: int = 64
    tower_depth: int = 1
    ranges: tuple[float, ...] = (0.0, 64.0, 128.0)
    center_radius: float = 1.5
    score_threshold: float = 0.05
    nms_iou: float = 0.5
    max_detections: int = 100
    pre_nms_top: int = 1000
    backbone: str = BACKBONE
    format: int = FORMAT
    extra: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """The recipe as the artifact stores it."""
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> DetectorRecipe:
        """The recipe of an artifact; ValueError for another format or backbone."""
        raw = json.loads(data)
        if raw.get("format") != FORMAT or raw.get("backbone") != BACKBONE:
            found = f"format {raw.get('format')}, backbone {raw.get('backbone')}"
            raise ValueError(f"unsupported detector recipe: {found}")
        raw["labels"] = tuple(raw["labels"])
        raw["ranges"] = tuple(raw["ranges"])
        return cls(**raw)
