"""Parsing Rekognition ARNs (core.ids mints them). A malformed ARN is an InvalidParameterException; one
that is well formed but names another region or account is simply not found here."""

from __future__ import annotations

import re
from dataclasses import dataclass

from visionloop.aws.exceptions import InvalidParameterException, ResourceNotFoundException

_PREFIX = (
    r"^arn:[a-z\d-]+:rekognition:(?P<region>[a-z\d-]+):(?P<account>\d{12})"
    r":project/(?P<project>[a-zA-Z0-9_.\-]{1,255})"
)
PROJECT = re.compile(_PREFIX + r"/(?P<ms>\d+)$")
VERSION = re.compile(_PREFIX + r"/version/(?P<name>[a-zA-Z0-9_.\-]{1,255})/(?P<ms>\d+)$")
DATASET = re.compile(_PREFIX + r"/dataset/(?P<name>train|test)/(?P<ms>\d+)$")
KINDS = {"project": PROJECT, "version": VERSION, "dataset": DATASET}


@dataclass(frozen=True)
class Arn:
    """A parsed ARN. ``name`` is the version name or the dataset type; ``ms`` the creation time (epoch
    milliseconds) of the resource itself, which tells a resource from an older one of the same name."""

    kind: str  # "project", "version" or "dataset"
    region: str
    account: str
    project: str
    name: str
    ms: int
    text: str


def parse(text: str, kind: str) -> Arn:
    """Parse an ARN of ``kind``; InvalidParameterException when it is not one."""
    m = KINDS[kind].match(text)
    if m is None:
        raise InvalidParameterException(f"{text!r} is not a valid {kind} ARN")
    return Arn(
        kind, m["region"], m["account"], m["project"], m.groupdict().get("name") or "", int(m["ms"]), text
    )


def parse_any(text: str) -> Arn:
    """A project, model version or dataset ARN (the resources that take tags)."""
    for kind, pattern in KINDS.items():
        if pattern.match(text):
            return parse(text, kind)
    if text.startswith("arn:"):  # some other resource: none of those exist here
        raise ResourceNotFoundException(f"resource {text} does not exist")
    raise InvalidParameterException(f"{text!r} is not the ARN of a project, model version or dataset")
