"""How many wrong answers a ``min_confidence`` review rule catches, and which setting catches most of them.

A review rule sends a prediction to people when its top confidence is below ``min_confidence``. What
share of the model's *wrong* answers that catches, and what share of all answers it sends, depends on
the model: on magnetic-tile's held-out tiles a well-calibrated model (held-out ECE 0.035 over twelve
splits) was wrong mostly at 70–85 % confidence, so ``min_confidence`` 70 caught only half of its
mistakes (``bench/research/README.md``, "Stackers, calibration and review"). The guide measures both
shares on the out-of-fold predictions of training's cross-validation (calibrated, never TEST) and
suggests the lowest setting that catches a target share of the wrong answers, so an operator can set
the rule knowing what it costs in reviews.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.errors import InvalidInput

#: The share of wrong answers the suggested ``min_confidence`` catches at least.
TARGET_CAUGHT = 0.8
#: ``min_confidence`` settings the guide reports (percent).
LEVELS = (50, 60, 70, 80, 90, 95, 99)
#: Fewer wrong answers than this make the shares rough; the guide says so (``few_wrong``).
FEW_WRONG = 10


def _shares(top: npt.NDArray[np.float64], wrong: npt.NDArray[np.bool_], level: float) -> dict[str, Any]:
    sent = top < level
    return {
        "min_confidence": level,
        "wrong_caught": round(float(sent[wrong].mean()), 4) if wrong.any() else None,
        "sent": round(float(sent.mean()), 4),
    }


def review_guide(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, target: float = TARGET_CAUGHT
) -> dict[str, Any] | None:
    """``confidence``: each image's top confidence (0..1); ``correct``: whether its top label was right.
    Returns the share of wrong answers caught and of all answers sent at each of :data:`LEVELS`, and
    ``suggested``: the lowest whole-percent ``min_confidence`` that catches at least ``target`` of the
    wrong answers (None without wrong answers). None without images."""
    top = 100.0 * np.asarray(confidence, dtype=np.float64).ravel()
    hit = np.asarray(correct, dtype=bool).ravel()
    if len(top) != len(hit):
        raise InvalidInput(f"{len(top)} confidences but {len(hit)} answers")
    if not np.all(np.isfinite(top)) or (len(top) and (top.min() < 0.0 or top.max() > 100.0)):
        raise InvalidInput("confidences must be within 0..1")
    if not 0.0 < target <= 1.0:
        raise InvalidInput(f"target must be within 0..1, got {target!r}")
    if len(top) == 0:
        return None
    wrong = ~hit
    suggested = None
    if wrong.any():
        # the target-th smallest wrong confidence must be below the setting: the next whole percent above it
        need = math.ceil(target * int(wrong.sum()))
        kth = float(np.sort(top[wrong])[need - 1])
        level = min(100, math.floor(kth) + 1)
        suggested = _shares(top, wrong, level)
    return {
        "basis": "cross-validation",
        "images": len(top),
        "wrong": int(wrong.sum()),
        "few_wrong": int(wrong.sum()) < FEW_WRONG,
        "target": target,
        "levels": [_shares(top, wrong, level) for level in LEVELS],
        "suggested": suggested,
    }
