"""The JSON lines ListDatasetEntries answers. An entry imported from a Ground Truth line answers that line
as the user gave it (their attribute names, job names, dates, integer coordinates and any field of
their own), with Rekognition's ``cl-metadata`` beside it. When the product changed the entry's labels
since (the console, a review answer), the line's label attributes are rewritten to say so, keeping the
user's attribute names and whatever of their annotations still holds. Entries that came from anywhere
else (uploads, folders, COCO files) answer the Ground Truth line AWS would write (core.manifests).

A rejected line answers the text it was given with an ``errors`` list of ``{"code", "message"}``, as
Custom Labels marks lines with errors; a line that is not a JSON object is wrapped in one."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from visionloop.core.entities import Box, DatasetEntry, TaskType
from visionloop.core.importing import InvalidBox, ratio_box
from visionloop.core.manifests import (
    CLASSIFICATION,
    DETECTION,
    GROUP_ATTRIBUTE,
    MULTILABEL,
    ManifestLine,
    PixelBox,
    label_attributes,
    manifest_line,
    pixel_box,
    read_line,
)
from visionloop.core.records.rejected_lines import RejectedLine

RAW_LINE_ATTRIBUTE = "visionloop-line"  # a rejected line that is not a JSON object, as given


def entry_line(entry: DatasetEntry, task: TaskType, job_name: str) -> dict[str, Any]:
    """The line ListDatasetEntries answers for ``entry`` (``cl-metadata`` added)."""
    line = _given_line(entry, task, job_name) if entry.manifest_line else None
    if line is None:
        line = manifest_line(entry, entry.source_ref, task, job_name)
    line["cl-metadata"] = {"is_labeled": entry.is_labeled}
    return line


def rejected_line(r: RejectedLine) -> dict[str, Any]:
    """A rejected line as given, with its ``errors``."""
    obj = _loads(r.line)
    line: dict[str, Any] = {RAW_LINE_ATTRIBUTE: r.line} if obj is None else obj
    line["errors"] = [{"code": e.code, "message": e.message} for e in r.errors]
    line["cl-metadata"] = {"is_labeled": bool(label_attributes(line))}
    return line


def _loads(text: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _given_line(entry: DatasetEntry, task: TaskType, job_name: str) -> dict[str, Any] | None:
    """The entry's own line, its labels rewritten where the entry's labels changed since; None when the
    stored line cannot be read (the written line is answered instead)."""
    assert entry.manifest_line is not None
    obj, said = _loads(entry.manifest_line), read_line(entry.manifest_line)
    if obj is None or said is None:
        return None
    if (entry.group or None) != said.group:
        obj.pop("group" if "group" in obj and GROUP_ATTRIBUTE not in obj else GROUP_ATTRIBUTE, None)
        if entry.group:
            obj[GROUP_ATTRIBUTE] = entry.group
    if said.labels == entry.labels and _same_boxes(said, entry):
        return obj
    written = manifest_line(entry, entry.source_ref, task, job_name)
    if task is TaskType.DETECTION:
        return _with_boxes(obj, entry, written)
    return _with_labels(obj, entry, written)


def _same_boxes(said: ManifestLine, entry: DatasetEntry) -> bool:
    if len(said.boxes) != len(entry.boxes):
        return False
    try:
        boxes = [ratio_box(b, entry.width, entry.height, i) for i, b in enumerate(said.boxes)]
    except InvalidBox:
        return False
    return all(_close(a, b) for a, b in zip(boxes, entry.boxes, strict=True))


def _close(a: Box, b: Box) -> bool:
    return a.label == b.label and all(
        math.isclose(x, y, abs_tol=1e-9)
        for x, y in ((a.left, b.left), (a.top, b.top), (a.width, b.width), (a.height, b.height))
    )


def _attributes_of(obj: dict[str, Any], types: Sequence[str]) -> list[str]:
    out = []
    for attr in label_attributes(obj):
        meta = obj[f"{attr}-metadata"]
        if isinstance(meta, dict) and meta.get("type") in types:
            out.append(attr)
    return out


def _drop(obj: dict[str, Any], attrs: Sequence[str]) -> None:
    for attr in attrs:
        obj.pop(attr, None)
        obj.pop(f"{attr}-metadata", None)


def _with_labels(obj: dict[str, Any], entry: DatasetEntry, written: dict[str, Any]) -> dict[str, Any]:
    """Image-level labels changed: a label the line still has keeps its attribute as given; a new label
    takes a freed attribute name of the user's (else the written one), with written metadata."""
    mine = _attributes_of(obj, (CLASSIFICATION,))
    if _attributes_of(obj, (MULTILABEL, DETECTION)):  # rewritten whole: one attribute per label
        _drop(obj, label_attributes(obj))
        mine = []
    kept = {obj[f"{a}-metadata"].get("class-name"): a for a in mine}
    free = [a for a in mine if obj[f"{a}-metadata"].get("class-name") not in entry.labels]
    new_written = label_attributes(written)
    out = {k: v for k, v in obj.items() if k not in mine and k.removesuffix("-metadata") not in mine}
    for i, label in enumerate(entry.labels):
        if label in kept:
            attr = kept[label]
            out[attr], out[f"{attr}-metadata"] = obj[attr], obj[f"{attr}-metadata"]
            continue
        source = new_written[i]
        attr = free.pop(0) if free else _unused(source, out)
        out[attr] = written[source]
        out[f"{attr}-metadata"] = written[f"{source}-metadata"]
    return out


def _unused(name: str, obj: dict[str, Any]) -> str:
    candidate, n = name, 1
    while candidate in obj or f"{candidate}-metadata" in obj:
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def _with_boxes(obj: dict[str, Any], entry: DatasetEntry, written: dict[str, Any]) -> dict[str, Any]:
    """Boxes changed: the user's detection attribute (its name, metadata and class ids) stays; a box the
    line still has keeps its annotation as given, others are written in pixels."""
    mine = _attributes_of(obj, (DETECTION,))
    others = [a for a in label_attributes(obj) if a not in mine]
    _drop(obj, others)
    if not mine:
        return {**obj, **{k: v for k, v in written.items() if k != "source-ref"}}
    attr, rest = mine[0], mine[1:]
    _drop(obj, rest)
    meta = dict(obj[f"{attr}-metadata"])
    class_map: dict[str, Any] = dict(meta.get("class-map") or {})
    value = obj[attr] if isinstance(obj[attr], dict) else {}
    given = [a for a in value.get("annotations") or [] if isinstance(a, dict)]
    annotations, objects = [], []
    for box in entry.boxes:
        ann = next((a for a in given if _annotation_is(a, box, class_map, entry)), None)
        if ann is None:
            ann = {"class_id": _class_id(class_map, box.label), **pixel_box(box, entry.width, entry.height)}
        else:
            given.remove(ann)
        annotations.append(ann)
        objects.append({"confidence": 1})
    meta["class-map"], meta["objects"] = class_map, objects
    image_size = value.get("image_size") or [{"width": entry.width, "height": entry.height, "depth": 3}]
    obj[attr] = {**value, "image_size": image_size, "annotations": annotations}
    obj[f"{attr}-metadata"] = meta
    return obj


def _annotation_is(ann: dict[str, Any], box: Box, class_map: dict[str, Any], entry: DatasetEntry) -> bool:
    label = class_map.get(str(ann.get("class_id")))
    try:
        coords = [float(ann[k]) for k in ("left", "top", "width", "height")]
        said = ratio_box(PixelBox(str(label), *coords), entry.width, entry.height, 0)
    except (KeyError, TypeError, ValueError, InvalidBox):
        return False
    return _close(said, box)


def _class_id(class_map: dict[str, Any], label: str) -> int | str:
    """The class id of ``label`` in the user's class map, added with the next free id when missing."""
    for key, name in class_map.items():
        if name == label:
            return int(key) if key.isdigit() else key
    free = max((int(k) for k in class_map if k.isdigit()), default=-1) + 1
    class_map[str(free)] = label
    return free
