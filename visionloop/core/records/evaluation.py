"""The parts of a model version's evaluation that the engine that measures it (engines/metrics.py) and
the console that shows it (web/console/evaluation.py) share: a confidence interval, a label's metrics, a
confusion matrix, a bar of the reliability diagram, and the number of test images below which a label's
F1 means little. The evaluation as a whole stays two records: see web/console/evaluation.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MIN_RELIABLE_TEST_IMAGES = 5  # fewer test images and a label's F1 means little


@dataclass(frozen=True, slots=True)
class Interval:
    """A two-sided confidence interval."""

    lower: float
    upper: float

    def contains(self, value: float) -> bool:
        return self.lower <= value <= self.upper

    def to_dict(self) -> dict[str, Any]:
        return {"lower": self.lower, "upper": self.upper}


@dataclass(frozen=True, slots=True)
class LabelMetrics:
    """One label's metrics at its assumed threshold; None where the label has no test images."""

    label: str
    n_test_images: int
    threshold: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    f1_interval: Interval | None
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def reliable(self) -> bool:
        """Whether the label has enough test images for its F1 to mean much."""
        return self.n_test_images >= MIN_RELIABLE_TEST_IMAGES

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "n_test_images": self.n_test_images,
            "threshold": self.threshold,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "f1_interval": None if self.f1_interval is None else self.f1_interval.to_dict(),
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "reliable": self.reliable,
        }


@dataclass(frozen=True, slots=True)
class ConfusionMatrix:
    """Counts and row-normalised rates; rows are true labels, columns predicted labels."""

    labels: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    normalized: tuple[tuple[float, ...], ...]
    basis: str  # "top1" (single-label) or "threshold" (multi-label prediction sets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "counts": [list(row) for row in self.counts],
            "normalized": [list(row) for row in self.normalized],
            "basis": self.basis,
        }


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """One bar of a reliability diagram; mean confidence and accuracy are None for an empty bin."""

    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "lower": self.lower,
            "upper": self.upper,
            "count": self.count,
            "mean_confidence": self.mean_confidence,
            "accuracy": self.accuracy,
        }


__all__ = ["MIN_RELIABLE_TEST_IMAGES", "ConfusionMatrix", "Interval", "LabelMetrics", "ReliabilityBin"]
