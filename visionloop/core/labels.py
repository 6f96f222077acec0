"""Label names: what a valid label is, and the labels a project knows (every label one of its images was
ever given; the console offers them as choices)."""

from __future__ import annotations

from collections.abc import Iterable

from visionloop.core.entities import Project
from visionloop.core.services import Services
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


def project_labels(svc: Services, project: Project) -> list[str]:
    """The labels the project knows, by name."""
    return svc.repo.list_labels(project.id)


def register_labels(svc: Services, project: Project, names: Iterable[str]) -> None:
    """Make ``names`` known to the project (those it knows already stay as they are)."""
    wanted = sorted(set(names))
    if wanted:
        svc.repo.add_labels(project.id, wanted)
