"""The workflow parameters on the scale the console writes scores in: percent.

The console shows every F1 and confidence in percent (web/numbers.py), and ``min_confidence`` is stored
in percent, but the F1 gates ``min_f1`` and ``max_f1_drop`` are stored, and taken by the native API and
the CLI, as fractions 0–1 (docs/workflow.md). On the parameters page those are shown and typed in percent
(F1 80 rather than 0.8), converted here at the form's boundary: what is stored and what the API takes do
not change. A parameter is shown in percent when it is a number from 0 to 1."""

from __future__ import annotations

import math
from dataclasses import dataclass

from visionloop.core.parameters import parse_value
from visionloop.core.records.parameters import SPECS, ParameterSpec, check_value
from visionloop.errors import InvalidInput

PERCENT = 100.0
STORED_IN_PERCENT = frozenset({"min_confidence"})  # 0-100 already: only the unit is written


def in_percent(spec: ParameterSpec) -> bool:
    """Stored as a fraction 0–1, shown in percent."""
    return spec.type is float and spec.minimum == 0 and spec.maximum == 1


def _number(value: float) -> str:
    """A number as typed: no trailing ``.0``, no float noise (0.85 in percent: 85, not 85.00000000000001)."""
    text = f"{value:.10g}"
    return text if "e" not in text else repr(value)


@dataclass(frozen=True)
class FormScale:
    """A parameter's input as the form shows it."""

    unit: str  # "%" or ""
    minimum: str  # "" without a bound
    maximum: str
    range: str  # the allowed values in words, on the form's scale
    default: str
    help: str  # what it does, on the form's scale


def form_scale(spec: ParameterSpec) -> FormScale:
    if spec.type is bool:
        return FormScale("", "", "", spec.range, "true" if spec.default else "false", spec.help)
    if not in_percent(spec):
        low, high = (_number(x) if x is not None else "" for x in (spec.minimum, spec.maximum))
        unit = "%" if spec.key in STORED_IN_PERCENT else ""
        return FormScale(unit, low, high, spec.range, _number(float(spec.default)), spec.help)
    help = spec.help.replace(" (0-1)", "") + " In percent here (the API and the CLI take 0-1)."
    return FormScale("%", "0", "100", "a percentage from 0 to 100", form_text(spec, spec.default), help)


def form_text(spec: ParameterSpec, value: bool | int | float) -> str:
    """``value`` (as stored) as the form's input holds it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _number(PERCENT * value if in_percent(spec) else float(value))


def parse_form(spec: ParameterSpec, text: str) -> bool | int | float:
    """What was typed for ``spec`` (on the form's scale), as the value to store; InvalidInput in the form's
    words."""
    if not in_percent(spec):
        return parse_value(spec.key, text)
    try:
        typed = float(text)
    except ValueError:
        typed = math.nan
    if not math.isfinite(typed) or not 0 <= typed <= PERCENT:
        raise InvalidInput(f"{spec.key} must be a percentage from 0 to 100, not {text[:40]!r}", key=spec.key)
    return check_value(spec.key, round(typed / PERCENT, 12))


def history_text(key: str, value: object) -> str:
    """A recorded value of parameter ``key`` on the form's scale (the history of changes)."""
    spec = SPECS.get(key)
    if value is None:
        return "–"
    if spec is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "true" if value is True else "false" if value is False else str(value)
    return form_text(spec, value) + form_scale(spec).unit
