"""Label names: what a valid label is."""

from __future__ import annotations

from visionloop.errors import InvalidInput

MAX_LABEL_LENGTH = 256


class InvalidLabel(InvalidInput):
    """A label name that cannot be used."""


def check_label(name: object) -> str:
    """Return the label stripped of surrounding spaces; refuse empty, too long or non-text labels."""
    if not isinstance(name, str):
        raise InvalidLabel(f"label {name!r} is not text")
    label = name.strip()
    if not label:
        raise InvalidLabel("label is empty")
    if len(label) > MAX_LABEL_LENGTH:
        raise InvalidLabel(
            f"label {label[:40]!r}… is {len(label)} characters; the limit is {MAX_LABEL_LENGTH}"
        )
    if any(ord(c) < 32 for c in label):
        raise InvalidLabel(f"label {label!r} contains control characters")
    return label
