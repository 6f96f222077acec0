"""SageMaker Ground Truth manifests (JSON Lines), as Rekognition Custom Labels reads and writes them.

Reading accepts single-label classification, multi-label as one attribute per label, SageMaker's native
``image-classification-multilabel`` (converted), and object detection with ``class-map`` and pixel
boxes. A line may name its group of similar photos (``visionloop-group``, or a plain-string ``group``
that is not a label attribute). Every line that cannot be used becomes an ImportIssue naming its line
number."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from visionloop.core.entities import Box, DatasetEntry, ImportIssue, TaskType
from visionloop.core.keys import parse_s3_uri
from visionloop.core.labels import check_label
from visionloop.errors import InvalidInput

CLASSIFICATION = "groundtruth/image-classification"
MULTILABEL = "groundtruth/image-classification-multilabel"
DETECTION = "groundtruth/object-detection"

MAX_BOXES_PER_IMAGE = 50  # Custom Labels' limit
MAX_LABELS_PER_IMAGE = 50
GROUP_ATTRIBUTE = "visionloop-group"
MAX_GROUP_LENGTH = 255


@dataclass(frozen=True)
class PixelBox:
    """A box in pixels, as manifests and COCO files give them."""

    label: str
    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class ManifestLine:
    line_no: int
    source_ref: str
    labels: tuple[str, ...]
    boxes: tuple[PixelBox, ...]
    kind: str  # "classification", "detection" or "unlabeled"
    group: str | None = None
    text: str = ""  # the line as given (surrounding white space dropped)


class _LineError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_manifest(lines: Iterable[str]) -> Iterator[ManifestLine | ImportIssue]:
    """Parse manifest text line by line; blank lines are reported, as Custom Labels does."""
    for line_no, raw in enumerate(lines, start=1):
        ref = f"line {line_no}"
        text = raw.strip()
        if not text:
            yield ImportIssue(ref, "ERROR_INVALID_JSON_LINE", "the line is blank")
            continue
        try:
            yield _parse_line(line_no, text)
        except _LineError as e:
            yield ImportIssue(ref, e.code, e.message)


def _parse_line(line_no: int, text: str) -> ManifestLine:
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise _LineError("ERROR_INVALID_JSON_LINE", f"not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise _LineError("ERROR_INVALID_JSON_LINE", "the line is JSON but not an object")
    source_ref = obj.get("source-ref")
    if source_ref is None:
        raise _LineError("ERROR_MISSING_SOURCE_REF", "the line has no 'source-ref'")
    try:
        parse_s3_uri(source_ref)
    except InvalidInput as e:
        raise _LineError("ERROR_INVALID_SOURCE_REF_FORMAT", f"'source-ref': {e}") from None

    attributes = label_attributes(obj)
    labels: list[str] = []
    boxes: list[PixelBox] = []
    kinds: set[str] = set()
    for attr in attributes:
        meta = obj[f"{attr}-metadata"]
        if not isinstance(meta, dict):
            raise _LineError(
                "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT", f"'{attr}-metadata' is not an object"
            )
        kind = meta.get("type")
        if kind == CLASSIFICATION:
            labels.append(_label(meta.get("class-name"), f"'{attr}-metadata'.'class-name'"))
            kinds.add("classification")
        elif kind == MULTILABEL:
            labels.extend(_multilabel(attr, obj[attr], meta))
            kinds.add("classification")
        elif kind == DETECTION:
            boxes.extend(_detection(attr, obj[attr], meta))
            kinds.add("detection")
        elif kind is None:
            raise _LineError(
                "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT", f"'{attr}-metadata' has no 'type'"
            )
        else:
            raise _LineError(
                "ERROR_UNSUPPORTED_USE_CASE_TYPE", f"'{attr}-metadata' has unsupported type {kind!r}"
            )
    if len(kinds) > 1:
        raise _LineError(
            "ERROR_UNSUPPORTED_USE_CASE_TYPE", "the line mixes image-level labels and bounding boxes"
        )
    if len(boxes) > MAX_BOXES_PER_IMAGE:
        raise _LineError(
            "ERROR_TOO_MANY_BOUNDING_BOXES", f"{len(boxes)} boxes; the limit is {MAX_BOXES_PER_IMAGE}"
        )
    unique = tuple(dict.fromkeys(labels))
    if len(unique) > MAX_LABELS_PER_IMAGE:
        raise _LineError("ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT", f"{len(unique)} labels; the limit is 50")
    kind = kinds.pop() if kinds else "unlabeled"
    return ManifestLine(line_no, source_ref, unique, tuple(boxes), kind, _group(obj), text)


def read_line(text: str) -> ManifestLine | None:
    """What a stored line says (None when it cannot be used: it was kept as given, not re-checked)."""
    try:
        return _parse_line(0, text)
    except _LineError:
        return None


def label_attributes(obj: dict[str, Any]) -> list[str]:
    """The line's label attributes: each key (but ``source-ref``) that has a ``<key>-metadata``."""
    return [k for k in obj if k != "source-ref" and not k.endswith("-metadata") and f"{k}-metadata" in obj]


def _group(obj: dict[str, Any]) -> str | None:
    """The line's explicit group: ``visionloop-group``, else ``group`` when it is a plain string and not a
    label attribute (one with ``group-metadata``)."""
    if GROUP_ATTRIBUTE in obj:
        key = GROUP_ATTRIBUTE
    elif isinstance(obj.get("group"), str) and "group-metadata" not in obj:
        key = "group"
    else:
        return None
    try:
        return check_group(obj[key])
    except InvalidInput as e:
        raise _LineError("ERROR_INVALID_GROUP", f"'{key}': {e}") from None


def check_group(value: object) -> str:
    """A group name: a non-empty string of at most 255 characters (surrounding spaces dropped)."""
    if not isinstance(value, str):
        raise InvalidInput(f"a group must be a string, not {type(value).__name__}")
    name = value.strip()
    if not name:
        raise InvalidInput("a group must not be empty")
    if len(name) > MAX_GROUP_LENGTH:
        raise InvalidInput(f"a group has at most {MAX_GROUP_LENGTH} characters, not {len(name)}")
    return name


def _label(value: object, where: str) -> str:
    if value is None:
        raise _LineError("ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT", f"{where} is missing")
    try:
        return check_label(value)
    except InvalidInput as e:
        raise _LineError("ERROR_INVALID_LABEL_NAME_LENGTH", f"{where}: {e}") from None


def _class_map(attr: str, meta: dict[str, Any]) -> dict[str, Any]:
    class_map = meta.get("class-map")
    if not isinstance(class_map, dict):
        raise _LineError(
            "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT", f"'{attr}-metadata' has no 'class-map'"
        )
    return class_map


def _multilabel(attr: str, value: object, meta: dict[str, Any]) -> list[str]:
    class_map = _class_map(attr, meta)
    if not isinstance(value, list):
        raise _LineError("ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT", f"'{attr}' is not a list of class ids")
    out = []
    for class_id in value:
        if str(class_id) not in class_map:
            raise _LineError(
                "ERROR_MISSING_CLASS_MAP_ID", f"class id {class_id!r} of '{attr}' is not in 'class-map'"
            )
        out.append(_label(class_map[str(class_id)], f"'{attr}-metadata'.'class-map'[{class_id}]"))
    return out


def _detection(attr: str, value: object, meta: dict[str, Any]) -> list[PixelBox]:
    class_map = _class_map(attr, meta)
    if not isinstance(value, dict) or not isinstance(value.get("annotations"), list):
        raise _LineError("ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT", f"'{attr}' has no 'annotations' list")
    boxes = []
    for i, ann in enumerate(value["annotations"]):
        if not isinstance(ann, dict):
            raise _LineError("ERROR_INVALID_BOUNDING_BOX", f"annotation {i} of '{attr}' is not an object")
        class_id = ann.get("class_id")
        if str(class_id) not in class_map:
            raise _LineError(
                "ERROR_MISSING_CLASS_MAP_ID", f"annotation {i}: class id {class_id!r} is not in 'class-map'"
            )
        coords = []
        for k in ("left", "top", "width", "height"):
            v = ann.get(k)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise _LineError(
                    "ERROR_INVALID_BOUNDING_BOX",
                    f"annotation {i} of '{attr}': '{k}' is missing or not a number",
                )
            coords.append(float(v))
        label = _label(class_map[str(class_id)], f"'{attr}-metadata'.'class-map'[{class_id}]")
        boxes.append(PixelBox(label, *coords))
    return boxes


def task_kind(task: TaskType) -> str:
    return "detection" if task is TaskType.DETECTION else "classification"


# --- writing -------------------------------------------------------------------------------------------

LABEL_ATTRIBUTE = "visionloop-label"
BOX_ATTRIBUTE = "bounding-box"


def manifest_line(entry: DatasetEntry, source_ref: str, task: TaskType, job_name: str) -> dict[str, Any]:
    """One Ground Truth line for ``entry``; boxes are converted from ratios back to pixels."""
    line: dict[str, Any] = {"source-ref": source_ref}
    if entry.group:
        line[GROUP_ATTRIBUTE] = entry.group
    created = _iso(entry.created_at)
    annotated = "yes"
    if task is TaskType.DETECTION:
        if entry.boxes:
            names = sorted({b.label for b in entry.boxes})
            ids = {n: i for i, n in enumerate(names)}
            line[BOX_ATTRIBUTE] = {
                "image_size": [{"width": entry.width, "height": entry.height, "depth": 3}],
                "annotations": [
                    {
                        "class_id": ids[b.label],
                        **pixel_box(b, entry.width, entry.height),
                    }
                    for b in entry.boxes
                ],
            }
            line[f"{BOX_ATTRIBUTE}-metadata"] = {
                "objects": [{"confidence": 1} for _ in entry.boxes],
                "class-map": {str(i): n for n, i in ids.items()},
                "type": DETECTION,
                "human-annotated": annotated,
                "creation-date": created,
                "job-name": job_name,
            }
        return line
    for i, label in enumerate(entry.labels):
        attr = LABEL_ATTRIBUTE if len(entry.labels) == 1 else f"{LABEL_ATTRIBUTE}-{i}"
        line[attr] = 0 if len(entry.labels) == 1 else 1
        line[f"{attr}-metadata"] = {
            "class-name": label,
            "confidence": 1,
            "type": CLASSIFICATION,
            "human-annotated": annotated,
            "creation-date": created,
            "job-name": job_name,
        }
    return line


def pixel_box(b: Box, width: int, height: int) -> dict[str, int | float]:
    """A ratio box in pixels of a ``width`` x ``height`` image, as Ground Truth writes them: whole
    pixels as integers, others to a thousandth."""
    out: dict[str, int | float] = {}
    for key, value in (
        ("left", b.left * width),
        ("top", b.top * height),
        ("width", b.width * width),
        ("height", b.height * height),
    ):
        r = round(float(value), 3)
        out[key] = int(r) if r.is_integer() else r
    return out


def _iso(ts: datetime) -> str:
    return ts.replace(tzinfo=None).isoformat(timespec="milliseconds")


def dumps_line(line: dict[str, Any]) -> str:
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))
