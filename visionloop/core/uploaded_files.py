"""Files sent with an import from a browser: a COCO file's or a Ground Truth manifest's images, chosen
one by one or as a folder. The import names each image by a path (a COCO ``file_name``, the key of a
manifest line's ``source-ref``); find_uploaded finds the file sent for it.

A manifest's images are put in the server's buckets where the lines' ``source-ref`` names them
(place_manifest_images), so the lines import as they are, keep the references they were given and export
again to the same ones; an object already there is never overwritten."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Collection, Mapping

from visionloop.core.entities import ImportIssue
from visionloop.core.images import TRAINING_LIMITS, content_hash
from visionloop.core.keys import parse_s3_uri
from visionloop.core.services import Services
from visionloop.errors import InvalidInput

Reader = Callable[[], bytes]  # an uploaded file's bytes, read when needed


def find_uploaded(wanted: str, names: Collection[str]) -> tuple[str | None, str]:
    """The name of the file sent for the path ``wanted``: the same path, a path ending in it, or else
    the one file with its base name; (None, why) when there is none or more than one."""
    path = wanted.replace("\\", "/").lstrip("/")
    found = [n for n in names if n == path or n.endswith("/" + path)]
    if not found:
        base = posixpath.basename(path)
        found = [n for n in names if posixpath.basename(n) == base]
    if len(found) == 1:
        return found[0], ""
    return None, (
        "several uploaded files have that name" if found else "it was not among the uploaded images"
    )


def place_manifest_images(svc: Services, text: str, images: Mapping[str, Reader]) -> list[ImportIssue]:
    """Put each uploaded image where a line of the manifest ``text`` names it (``s3://bucket/key``,
    matched by the key); returns what could not be placed. A line naming no uploaded file, or an object
    already in the bucket, is left to the import (which reads the bucket, or reports the missing
    image); an object there that holds another image is reported and kept."""
    issues: list[ImportIssue] = []
    for ref in dict.fromkeys(_source_refs(text)):
        try:
            where = parse_s3_uri(ref)
        except InvalidInput:
            continue  # the import reports the line
        name, _ = find_uploaded(where.key, images.keys())
        if name is None:
            continue
        try:
            data = images[name]()
        except InvalidInput as e:
            issues.append(ImportIssue(ref, str(e.details.get("code", "ERROR_INVALID_IMAGE")), f"{name}: {e}"))
            continue
        if svc.buckets.exists(where.bucket, where.key):
            there = svc.buckets.get(where.bucket, where.key, max_bytes=TRAINING_LIMITS.max_bytes)
            if content_hash(there) != content_hash(data):
                issues.append(
                    ImportIssue(
                        ref,
                        "ERROR_OBJECT_EXISTS",
                        f"{ref} already holds another image: the server's copy was kept, {name} was not used",
                    )
                )
            continue
        svc.buckets.create_bucket(where.bucket)
        svc.buckets.put(where.bucket, where.key, data)
    return issues


def _source_refs(text: str) -> list[str]:
    refs = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("source-ref"), str):
            refs.append(obj["source-ref"])
    return refs
