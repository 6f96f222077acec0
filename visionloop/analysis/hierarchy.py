"""The label hierarchy shipped as data (``data/labels.json``, built by ``taxonomy.py`` from WordNet 3.0
and the ImageNet and COCO class lists): each label's parents (nearest first), aliases and categories,
the readable name of each ImageNet class and of each COCO class of the detector."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from visionloop.errors import Unavailable

DATA_FILE = Path(__file__).with_name("data") / "labels.json"


@dataclass(frozen=True)
class LabelEntry:
    parents: tuple[str, ...]
    aliases: tuple[str, ...]
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Hierarchy:
    version: str
    imagenet: tuple[str, ...]  # label name of each ImageNet class, in class-index order
    coco: dict[int, str]  # label name of each detector class id
    labels: dict[str, LabelEntry]

    def entry(self, name: str) -> LabelEntry:
        return self.labels.get(name) or LabelEntry((), (), ())


@cache
def load_hierarchy(path: Path = DATA_FILE) -> Hierarchy:
    """The shipped hierarchy, read once per process and checked for consistency."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise Unavailable(f"the label hierarchy {path} cannot be read: {e}") from None
    labels = {
        name: LabelEntry(tuple(e["parents"]), tuple(e["aliases"]), tuple(e["categories"]))
        for name, e in doc["labels"].items()
    }
    h = Hierarchy(
        str(doc["version"]), tuple(doc["imagenet"]), {int(k): v for k, v in doc["coco"].items()}, labels
    )
    unknown = {n for n in (*h.imagenet, *h.coco.values()) if n not in labels}
    unknown |= {p for e in labels.values() for p in e.parents if p not in labels}
    if len(h.imagenet) != 1000 or unknown:
        raise Unavailable(
            f"the label hierarchy {path} is inconsistent (unknown names: {sorted(unknown)[:5]})"
        )
    return h
