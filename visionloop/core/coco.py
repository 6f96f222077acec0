"""COCO detection files: ``images``, ``annotations`` with pixel ``[x, y, w, h]``, ``categories``."""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from visionloop.core.entities import ImportIssue
from visionloop.core.importing import CLI_ACCESS, Candidate, SourceAccess, file_loader
from visionloop.core.keys import check_key
from visionloop.core.labels import check_label
from visionloop.core.manifests import MAX_BOXES_PER_IMAGE, PixelBox
from visionloop.errors import InvalidInput, InvalidManifest


def coco_candidates(
    path: str | os.PathLike[str], images_dir: str | None = None, access: SourceAccess = CLI_ACCESS
) -> Iterator[Candidate | ImportIssue]:
    """Candidates for every image of a COCO file; images are read from ``images_dir`` (default: the
    ``images/`` folder beside the file if it exists, else the file's folder). The file, the folder and
    each image must be ones ``access`` allows."""
    doc = _load(os.fspath(path), access)
    base = access.local_path(images_dir) if images_dir else _default_images_dir(os.fspath(path))
    yield from doc_candidates(doc, lambda name: file_loader(os.path.join(base, name), access))


def doc_candidates(
    doc: dict[str, Any], loader_for: Callable[[str], Callable[[], bytes]]
) -> Iterator[Candidate | ImportIssue]:
    """Candidates for every image of a parsed COCO document (see parse_coco), each image's bytes read by
    ``loader_for(file_name)`` (a file beside the COCO file, or one uploaded with it)."""
    categories: dict[Any, str] = {}
    for i, cat in enumerate(doc.get("categories") or []):
        try:
            categories[cat["id"]] = check_label(cat.get("name"))
        except (KeyError, TypeError, InvalidInput) as e:
            yield ImportIssue(
                f"categories[{i}]", "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT", f"invalid category: {e}"
            )
    images: dict[Any, dict[str, Any]] = {}
    for i, img in enumerate(doc.get("images") or []):
        if (
            not isinstance(img, dict)
            or not _is_id(img.get("id"))
            or not isinstance(img.get("file_name"), str)
        ):
            yield ImportIssue(
                f"images[{i}]", "ERROR_MISSING_SOURCE_REF", "image needs an 'id' and a 'file_name'"
            )
            continue
        images[img["id"]] = img
    boxes: dict[Any, list[PixelBox]] = defaultdict(list)
    bad_images: dict[Any, str] = {}
    for i, ann in enumerate(doc.get("annotations") or []):
        issue = _annotation(i, ann, images, categories, boxes, bad_images)
        if issue is not None:
            yield issue
    for image_id, img in images.items():
        name = img["file_name"]
        if image_id in bad_images:
            yield ImportIssue(name, "ERROR_INVALID_BOUNDING_BOX", bad_images[image_id])
            continue
        try:
            check_key(name)
        except InvalidInput as e:
            yield ImportIssue(name, "ERROR_INVALID_SOURCE_REF_FORMAT", str(e))
            continue
        found = boxes.get(image_id, [])
        if len(found) > MAX_BOXES_PER_IMAGE:
            yield ImportIssue(name, "ERROR_TOO_MANY_BOUNDING_BOXES", f"{len(found)} boxes; the limit is 50")
            continue
        kind = "detection" if found else "unlabeled"
        yield Candidate(name, name, loader_for(name), (), tuple(found), kind)


def _annotation(
    i: int,
    ann: Any,
    images: dict[Any, dict[str, Any]],
    categories: dict[Any, str],
    boxes: dict[Any, list[PixelBox]],
    bad_images: dict[Any, str],
) -> ImportIssue | None:
    ref = f"annotations[{i}]"
    if not isinstance(ann, dict):
        return ImportIssue(ref, "ERROR_INVALID_BOUNDING_BOX", "annotation is not an object")
    if not _is_id(ann.get("image_id")) or ann["image_id"] not in images:
        return ImportIssue(ref, "ERROR_INVALID_BOUNDING_BOX", f"unknown image_id {ann.get('image_id')!r}")
    if not _is_id(ann.get("category_id")) or ann["category_id"] not in categories:
        msg = f"{ref}: unknown category_id {ann.get('category_id')!r}"
        bad_images.setdefault(ann["image_id"], msg)
        return None
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_coordinate(v) for v in bbox):
        bad_images.setdefault(ann["image_id"], f"{ref}: 'bbox' must be [x, y, width, height] in pixels")
        return None
    x, y, w, h = (float(v) for v in bbox)
    boxes[ann["image_id"]].append(PixelBox(categories[ann["category_id"]], x, y, w, h))
    return None


def _is_id(v: object) -> bool:
    """COCO ids are numbers or strings (a list or object as an id is refused, never hashed)."""
    return isinstance(v, int | str) and not isinstance(v, bool)


def _is_coordinate(v: object) -> bool:
    if not isinstance(v, int | float) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:  # an integer too large for a float
        return False


def _load(path: str, access: SourceAccess) -> dict[str, Any]:
    return parse_coco(access.read_file(path, "COCO file"), f"COCO file {path!r}")


def parse_coco(data: bytes, origin: str = "the COCO file") -> dict[str, Any]:
    """A COCO file's JSON object (InvalidManifest when it is not JSON or has no ``images`` list);
    ``origin`` names it in messages."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidManifest(f"{origin} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise InvalidManifest(f"{origin} has no 'images' list")
    for member in ("annotations", "categories"):
        if doc.get(member) is not None and not isinstance(doc[member], list):
            raise InvalidManifest(f"{origin}: '{member}' must be a list")
    return doc


def _default_images_dir(path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    images = os.path.join(folder, "images")
    return images if os.path.isdir(images) else folder
