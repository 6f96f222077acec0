"""Detection log records: what a detection reports, stores and is filtered by (ports.py, storage)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from visionloop.core.entities import Prediction

MAX_PROBABILITIES = 25  # label probabilities kept per detection (the best ones)


class DetectionSource(StrEnum):
    """Where a detection request came from."""

    API = "api"  # the native REST API (POST …/versions/{version}/detect)
    AWS = "aws"  # the Rekognition-compatible API (DetectCustomLabels)
    INBOX = "inbox"  # an image dropped into a watched inbox (core.inbox)
    CONSOLE = "console"  # the web console


def new_ref() -> str:
    """A short random id for one detection (kept as a human loop's ``detection_ref``)."""
    return secrets.token_hex(8)


def label_dict(p: Prediction) -> dict[str, Any]:
    """A returned label as JSON: name and confidence (0-100), with a detector's box (ratios)."""
    out: dict[str, Any] = {"name": p.label, "confidence": p.confidence}
    if p.box is not None:
        out["box"] = {"left": p.box.left, "top": p.box.top, "width": p.box.width, "height": p.box.height}
    return out


@dataclass(frozen=True)
class Detected:
    """One detection as the detection path reports it. Nothing here is computed on the request's path:
    the image is hashed and stored later by the log's thread."""

    project: str
    version: str
    image: bytes
    probabilities: Mapping[str, float]  # every label's probability, 0..1
    labels: Sequence[Prediction]  # what the request returned
    source: DetectionSource = DetectionSource.API
    source_ref: str | None = None  # s3://bucket/key when the image came by reference
    ref: str = field(default_factory=new_ref)


@dataclass(frozen=True)
class NewDetection:
    project_id: int
    version: str
    ref: str
    content_hash: str
    source: DetectionSource
    source_ref: str | None
    detected_at: datetime
    labels: tuple[Prediction, ...]
    probabilities: tuple[tuple[str, float], ...]  # best first, 0..1

    @property
    def top(self) -> tuple[str, float] | None:
        return self.probabilities[0] if self.probabilities else None


@dataclass(frozen=True)
class DetectionRecord:
    id: int
    ref: str
    project_id: int
    project: str
    version: str
    content_hash: str
    source: DetectionSource
    source_ref: str | None
    detected_at: datetime
    labels: tuple[Prediction, ...]  # as the request returned them, best first
    top_label: str | None  # the model's best guess, returned or not
    top_confidence: float | None  # 0..100
    probabilities: tuple[tuple[str, float], ...]  # best first, 0..1 (at most MAX_PROBABILITIES)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "project": self.project,
            "version": self.version,
            "content_hash": self.content_hash,
            "source": self.source.value,
            "source_ref": self.source_ref,
            "detected_at": self.detected_at.isoformat(),
            "labels": [label_dict(p) for p in self.labels],
            "top_label": self.top_label,
            "top_confidence": self.top_confidence,
        }


@dataclass(frozen=True)
class DetectionFilter:
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    label: str | None = None
    min_confidence: float | None = None  # 0..100, inclusive
    max_confidence: float | None = None  # 0..100, inclusive
    source: DetectionSource | None = None
    version: str | None = None


@dataclass(frozen=True)
class DetectionPage:
    detections: list[DetectionRecord]
    next_cursor: str | None  # None: this was the last page


@dataclass(frozen=True)
class Retention:
    """How much of the log to keep: detections older than ``days`` and, per project, all but the newest
    ``max_rows`` are deleted. None (the default) keeps everything. The images stay in the store (they
    are shared with datasets and human loops)."""

    days: float | None = None
    max_rows: int | None = None

    @property
    def keeps_all(self) -> bool:
        return self.days is None and self.max_rows is None
