"""Words for people on the console's pages: parameter titles instead of their keys, a sentence per run step,
a step's stored input or output as facts (name, words) or small tables instead of raw JSON, and the
backbone a version was trained on by its name (EfficientNet-Lite2) rather than what was asked ("auto").

The stored keys stay what the API and the CLI use; only what the console shows changes."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from visionloop.core.entities import ModelVersion
from visionloop.core.records.parameters import PARAMETERS
from visionloop.web.numbers import percent

PARAMETER_TITLES = {
    "min_confidence": "Minimum confidence",
    "human_review_enabled": "Human review",
    "suggested_min_confidence_enabled": "Suggested minimum confidence",
    "auto_training_enabled": "Automatic training",
    "training_poll_minutes": "Training check every (minutes)",
    "min_untrained_images": "New labelled images needed",
    "min_f1": "Minimum F1",
    "max_f1_drop": "Maximum F1 drop",
    "min_inference_units": "Inference units of a new deployment",
    "human_sampling_enabled": "Audit samples",
    "human_sampling_minutes": "Sampling check every (minutes)",
    "human_sampling_interval": "Sampling interval (detections)",
    "detection_events_enabled": "Detection events",
}
STEP_SENTENCES = {
    "check": "Counted the new labelled images and read the parameters.",
    "train": "Trained a new version.",
    "evaluate": "Compared the new version's F1 with the minimum F1.",
    "compare": "Compared the new version with the serving one, label by label, on the same test images.",
    "reject": "Kept the new version from serving.",
    "select": "Chose the version to roll back to.",
    "start": "Started the version on its inference units.",
    "switch": "Made it the version that serves the project.",
    "stop_previous": "Stopped the version that served before.",
}
FACT_NAMES = {
    **{key: title.lower() if key.endswith("_enabled") else title for key, title in PARAMETER_TITLES.items()},
    "new_images": "New labelled images",
    "last_trained_version": "Last trained version",
    "version": "Version",
    "f1": "F1",
    "training_seconds": "Training time",
    "attempt": "Attempt",
    "attempts": "Start attempts",
    "deploy_reason": "Deployed by",
    "f1_passed": "F1 high enough",
    "rejected_because": "Rejected because",
    "previous": "Serving before",
    "gate": "Comparison with the serving version",
    "champion": "Serving version",
    "passed": "Passed",
    "note": "Note",
    "max_drop": "Maximum F1 drop",
    "images": "Test images",
    "labels": "Labels",
    "worst": "Largest drop",
    "label": "Label",
    "support": "Test images",
    "champion_f1": "F1 of the serving version",
    "challenger_f1": "F1 of the new version",
    "drop": "Drop",
    "champion_macro_f1": "Average F1 of the serving version",
    "challenger_macro_f1": "Average F1 of the new version",
    "load_seconds": "Start-up time",
    "inference_units": "Inference units",
    "serving": "Now serving",
    "switched_at": "Switched at",
    "stopped": "Stopped",
    "rejected": "Rejected",
    "waiting": "Waiting for",
    "to_version": "To version",
    "requested_by": "Asked by",
}
WORDS = {  # stored values that are codes
    "training_check": "a training check",
    "rollback": "a rollback",
    "rolled_back": "rolled back",
    "training_failed": "training failed",
}
HIDDEN = re.compile(r"(^|_)id$")  # database ids mean nothing to a person
F1_DROPS = {"drop", "max_drop", "max_f1_drop"}  # differences of F1 (0-1), written in percentage points


def parameter_title(key: str) -> str:
    return PARAMETER_TITLES.get(key, key.replace("_", " ").capitalize())


_ALTERNATIVES = "|".join(sorted((re.escape(p.key) for p in PARAMETERS), key=len, reverse=True))
_KEYS = re.compile(rf"\b({_ALTERNATIVES})\b")


def plain(text: str | None) -> str:
    """``text`` with each parameter key written as its title, in quotes: "(below min_confidence)" reads
    "(below “Minimum confidence”)"; stored codes such as rolled_back in words."""
    if not text:
        return ""
    text = _KEYS.sub(lambda m: f"“{parameter_title(m.group(1))}”", text)
    return WORDS.get(text, text)


def step_sentence(name: str) -> str:
    return STEP_SENTENCES.get(name, name.replace("_", " ").capitalize() + ".")


@dataclass(frozen=True)
class Fact:
    """One stored value for people: words, facts (a mapping), or a table (a list of mappings)."""

    name: str
    text: str = ""
    facts: tuple[Fact, ...] = ()
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


def facts(values: Mapping[str, Any]) -> tuple[Fact, ...]:
    """``values`` (a step's input or output) as facts, ids left out."""
    return tuple(_fact(key, value) for key, value in values.items() if not HIDDEN.search(key))


def _fact(key: str, value: Any) -> Fact:
    name = FACT_NAMES.get(key, key.replace("_", " ").capitalize())
    if isinstance(value, Mapping):
        return Fact(name, facts=facts(value))
    if _is_table(value):
        keys = [k for k in dict.fromkeys(k for row in value for k in row) if not HIDDEN.search(k)]
        rows = tuple(tuple(_words(k, row.get(k)) for k in keys) for row in value)
        return Fact(name, columns=tuple(FACT_NAMES.get(k, k.replace("_", " ")) for k in keys), rows=rows)
    return Fact(name, _words(key, value))


def _is_table(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and bool(value)
        and all(isinstance(v, Mapping) for v in value)
    )


def _words(key: str, value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key.endswith("_seconds") and isinstance(value, int | float):
        return f"{value:.1f} s"
    if (key == "f1" or key.endswith("_f1")) and isinstance(value, int | float):
        return percent(value)  # scores in percent, as everywhere in the console (web/numbers.py)
    if key in F1_DROPS and isinstance(value, int | float):
        return f"{100 * value:.1f} points"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(_words(key, v) for v in value) or "none"
    if isinstance(value, Mapping):
        return "; ".join(f"{FACT_NAMES.get(k, k)}: {_words(k, v)}" for k, v in value.items())
    return plain(str(value))


BACKBONE_WORDS = {"efficientnet": "EfficientNet"}
HF_PREFIX = "hf:"


def backbone_name(name: str) -> str:
    """A backbone as people write it: efficientnet-lite2 is EfficientNet-Lite2, an -int8 one says INT8."""
    if name.startswith(HF_PREFIX):
        return f"{name[len(HF_PREFIX) :]} (Hugging Face)"
    base = name.removesuffix("-int8")
    words = "-".join(BACKBONE_WORDS.get(w, w.capitalize()) for w in base.split("-"))
    return f"{words} (INT8)" if base != name else words


def backbone_used(version: ModelVersion) -> str:
    """The backbone(s) the version was trained on, as the engine recorded them; before that, what was
    asked (the recipe's choice when it was "auto")."""
    used = version.params.get("backbones") or version.params.get("backbone")
    names = [used] if isinstance(used, str) else list(used) if isinstance(used, list | tuple) else []
    if names:
        return " + ".join(backbone_name(str(n)) for n in names)
    if version.backbone != "auto":
        return backbone_name(version.backbone)
    return "chosen by the training recipe"
