"""Human loop activation conditions of Amazon A2I for Rekognition's DetectModerationLabels: the JSON a flow
definition's ``HumanLoopActivationConditions`` holds, checked when the flow is created (``parse``) and
evaluated against a moderation answer (``evaluate``).

The document is ``{"Conditions": [c, ...]}``; the top-level conditions are ORed. A condition is simple,
``{"ConditionType": ..., "ConditionParameters": {...}}``, or complex, ``{"And": [c, ...]}`` /
``{"Or": [c, ...]}``. Rekognition knows two condition types:

    ModerationLabelConfidenceCheck  ModerationLabelName (exact, case-sensitive; "*" is any label) and one or
                                    more of ConfidenceEquals, ConfidenceLessThan, ConfidenceLessThanEquals,
                                    ConfidenceGreaterThan, ConfidenceGreaterThanEquals (0-100): true when a
                                    label of the answer with that name meets every comparison given
    Sampling                        RandomSamplingPercentage (0-100): true for that share of the inputs,
                                    the same way each time for the same image and flow (as AWS: the same
                                    request again samples the same way)

A mistake raises ValueError with a message that names the member."""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CONFIDENCE_CHECK = "ModerationLabelConfidenceCheck"
SAMPLING = "Sampling"
ANY_LABEL = "*"
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "ConfidenceEquals": operator.eq,
    "ConfidenceLessThan": operator.lt,
    "ConfidenceLessThanEquals": operator.le,
    "ConfidenceGreaterThan": operator.gt,
    "ConfidenceGreaterThanEquals": operator.ge,
}
MAX_DEPTH = 8
Json = dict[str, Any]


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate`` found: whether a loop is due, and the conditions with their results (the JSON
    DetectModerationLabels answers as HumanLoopActivationConditionsEvaluationResults)."""

    activated: bool
    results: Json


def parse(text: str) -> Json:
    """The conditions document, checked (ValueError names what is wrong)."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise ValueError("HumanLoopActivationConditions is not a JSON document") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("Conditions"), list) or not doc["Conditions"]:
        raise ValueError('HumanLoopActivationConditions must be {"Conditions": [a condition, ...]}')
    for i, condition in enumerate(doc["Conditions"]):
        _check(condition, f"Conditions[{i}]", 1)
    return doc


def _check(c: object, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"{path}: conditions may be nested at most {MAX_DEPTH} deep")
    if not isinstance(c, dict):
        raise ValueError(f"{path} must be an object")
    complex_keys = [k for k in ("And", "Or") if k in c]
    if complex_keys:
        key = complex_keys[0]
        if len(c) != 1 or not isinstance(c[key], list) or not c[key]:
            raise ValueError(f"{path} must be {{{key!r}: [a condition, ...]}} and nothing else")
        for i, inner in enumerate(c[key]):
            _check(inner, f"{path}.{key}[{i}]", depth + 1)
        return
    kind, params = c.get("ConditionType"), c.get("ConditionParameters")
    if not isinstance(params, dict):
        raise ValueError(f"{path}.ConditionParameters must be an object")
    if kind == SAMPLING:
        _number(params, "RandomSamplingPercentage", path, required=True)
        _only(params, {"RandomSamplingPercentage"}, path)
    elif kind == CONFIDENCE_CHECK:
        name = params.get("ModerationLabelName")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{path}.ConditionParameters.ModerationLabelName must be a label name or '*'")
        if not any(k in params for k in COMPARISONS):
            raise ValueError(f"{path}.ConditionParameters needs one of {', '.join(COMPARISONS)}")
        for k in COMPARISONS:
            _number(params, k, path, required=False)
        _only(params, {"ModerationLabelName", *COMPARISONS}, path)
    else:
        raise ValueError(
            f"{path}.ConditionType must be {CONFIDENCE_CHECK} or {SAMPLING} for DetectModerationLabels, "
            f"not {str(kind)[:60]!r}"
        )


def _number(params: Mapping[str, Any], key: str, path: str, required: bool) -> None:
    value = params.get(key)
    if value is None and not required:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise ValueError(f"{path}.ConditionParameters.{key} must be a number from 0 to 100")


def _only(params: Mapping[str, Any], known: set[str], path: str) -> None:
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"{path}.ConditionParameters has unknown members: {', '.join(unknown)[:200]}")


def label_names(doc: Mapping[str, Any]) -> list[str]:
    """The moderation label names the conditions check, in order ("*" included)."""
    found: list[str] = []

    def walk(c: Mapping[str, Any]) -> None:
        for key in ("And", "Or"):
            for inner in c.get(key, ()):
                walk(inner)
        if c.get("ConditionType") == CONFIDENCE_CHECK:
            found.append(c["ConditionParameters"]["ModerationLabelName"])

    for condition in doc["Conditions"]:
        walk(condition)
    return list(dict.fromkeys(found))


def evaluate(doc: Mapping[str, Any], labels: Sequence[tuple[str, float]], sample_key: str) -> Evaluation:
    """Evaluate the (parsed) conditions against the answer's ``(label name, confidence)`` pairs;
    ``sample_key`` makes Sampling decide the same way for the same input."""

    def run(c: Mapping[str, Any], path: str) -> Json:
        for key, combine in (("And", all), ("Or", any)):
            if key in c:
                inner = [run(x, f"{path}.{key}[{i}]") for i, x in enumerate(c[key])]
                return {key: inner, "EvaluationResult": combine(x["EvaluationResult"] for x in inner)}
        params = c["ConditionParameters"]
        if c["ConditionType"] == SAMPLING:
            held = _sample(f"{sample_key}|{path}") < float(params["RandomSamplingPercentage"])
        else:
            name = params["ModerationLabelName"]
            held = any(
                (name == ANY_LABEL or label == name)
                and all(test(confidence, params[k]) for k, test in COMPARISONS.items() if k in params)
                for label, confidence in labels
            )
        return {"ConditionType": c["ConditionType"], "ConditionParameters": params, "EvaluationResult": held}

    results = [run(c, f"Conditions[{i}]") for i, c in enumerate(doc["Conditions"])]
    return Evaluation(any(r["EvaluationResult"] for r in results), {"Conditions": results})


def _sample(key: str) -> float:
    """A number in [0, 100) fixed by ``key``."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100
