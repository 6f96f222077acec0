"""Parameter records: what each project parameter is (PARAMETERS), their values, their history."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from visionloop.errors import InvalidInput


@dataclass(frozen=True)
class ParameterSpec:
    key: str
    type: type[bool] | type[int] | type[float]
    default: bool | int | float
    minimum: float | None
    maximum: float | None
    help: str

    @property
    def range(self) -> str:
        """The allowed values, for messages and docs."""
        if self.type is bool:
            return "true or false"
        kind = "an integer" if self.type is int else "a number"
        return f"{kind} from {_num(self.minimum)} to {_num(self.maximum)}"


def _num(value: float | None) -> str:
    return "" if value is None else (str(int(value)) if float(value).is_integer() else str(value))


WEEK_MINUTES = 7 * 24 * 60
PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec(
        "min_confidence",
        float,
        50.0,
        0,
        100,
        "Minimum confidence (percent) of a detection's top label: below it the detection is "
        "low-confidence and, with human_review_enabled, goes to human review.",
    ),
    ParameterSpec(
        "human_review_enabled",
        bool,
        False,
        None,
        None,
        "Low-confidence detections (below min_confidence) start a human review loop.",
    ),
    ParameterSpec(
        "suggested_min_confidence_enabled",
        bool,
        False,
        None,
        None,
        "With human_review_enabled, each detection's threshold is the min_confidence suggested by the "
        "model version that answered it (its review guide: the lowest setting that sent at least 80 % of "
        "its wrong cross-validated answers to review); min_confidence where a version suggests none.",
    ),
    ParameterSpec(
        "auto_training_enabled",
        bool,
        False,
        None,
        None,
        "The training check may train, evaluate and deploy a new version by itself.",
    ),
    ParameterSpec(
        "training_poll_minutes",
        int,
        60,
        1,
        WEEK_MINUTES,
        "How often the training check runs (minutes).",
    ),
    ParameterSpec(
        "min_untrained_images",
        int,
        10,
        1,
        1_000_000,
        "New labelled images since the last successful training needed before a new training.",
    ),
    ParameterSpec(
        "min_f1",
        float,
        0.8,
        0,
        1,
        "Minimum F1 score (0-1) a new version needs on the test set to be deployed.",
    ),
    ParameterSpec(
        "max_f1_drop",
        float,
        0.05,
        0,
        1,
        "Champion/challenger gate: a new version is rejected when any label's F1 is lower than the "
        "serving version's by more than this, on the same test set.",
    ),
    ParameterSpec(
        "min_inference_units",
        int,
        1,
        1,
        32,
        "Inference units a newly deployed version starts with.",
    ),
    ParameterSpec(
        "human_sampling_enabled",
        bool,
        False,
        None,
        None,
        "Every human_sampling_interval-th detection goes to an audit loop, whatever its confidence "
        "(audits are compared with the model, never added to training).",
    ),
    ParameterSpec(
        "human_sampling_minutes",
        int,
        60,
        1,
        WEEK_MINUTES,
        "How often the sampling check runs (minutes).",
    ),
    ParameterSpec(
        "human_sampling_interval",
        int,
        100,
        1,
        1_000_000,
        "Sample every n-th detection since the last sampled one.",
    ),
    ParameterSpec(
        "detection_events_enabled",
        bool,
        False,
        None,
        None,
        "Publish a detection event for every detection (for notification channels that want them).",
    ),
)


SPECS: dict[str, ParameterSpec] = {p.key: p for p in PARAMETERS}


@dataclass(frozen=True)
class Parameters:
    """Every parameter of one project (stored value or default). PARAMETERS describes each."""

    min_confidence: float = 50.0
    human_review_enabled: bool = False
    suggested_min_confidence_enabled: bool = False
    auto_training_enabled: bool = False
    training_poll_minutes: int = 60
    min_untrained_images: int = 10
    min_f1: float = 0.8
    max_f1_drop: float = 0.05
    min_inference_units: int = 1
    human_sampling_enabled: bool = False
    human_sampling_minutes: int = 60
    human_sampling_interval: int = 100
    detection_events_enabled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ParameterChange:
    id: int
    project_id: int
    key: str
    old: Any
    new: Any
    changed_by: str
    changed_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "old": self.old,
            "new": self.new,
            "changed_by": self.changed_by,
            "changed_at": self.changed_at.isoformat(),
        }


@dataclass(frozen=True)
class ParameterUpdate:
    parameters: Parameters  # after the update
    changes: tuple[ParameterChange, ...]  # the keys whose value changed (others given were equal)


def check_value(key: str, value: object) -> bool | int | float:
    """``value`` for parameter ``key``, validated (an integral float is accepted for an integer key,
    an integer for a number key); InvalidInput names the key and the allowed values."""
    spec = SPECS.get(key) if isinstance(key, str) else None
    if spec is None:
        raise InvalidInput(f"unknown parameter {str(key)[:80]!r}: use one of {', '.join(SPECS)}", key=key)
    bad = InvalidInput(f"{key} must be {spec.range}, not {_show(value)}", key=key)
    if spec.type is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad
    if spec.type is int:
        if isinstance(value, float) and not value.is_integer():
            raise bad
        value = int(value)
    else:
        value = float(value)
    if (spec.minimum is not None and value < spec.minimum) or (
        spec.maximum is not None and value > spec.maximum
    ):
        raise bad
    return value


def _show(value: object) -> str:
    text = (
        json.dumps(value)
        if isinstance(value, str | int | float | bool | type(None))
        else type(value).__name__
    )
    return text if len(text) <= 80 else text[:77] + "..."


def parameters_from(stored: Mapping[str, Any]) -> Parameters:
    """The parameters stored values give (unknown keys and out-of-range values: the default)."""
    values: dict[str, Any] = {}
    for key, value in stored.items():
        if key not in SPECS:
            continue  # a key a newer or older version stored: ignored, kept
        try:
            values[key] = check_value(key, value)
        except InvalidInput:
            continue  # a stored value out of today's range: the default applies
    return Parameters(**values)
