"""The InputContent document of an explicitly started loop: the image it names and the model's
guesses it carries; the margin between the model's top two guesses."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from visionloop.core.entities import Box, Prediction
from visionloop.core.images import load_image
from visionloop.core.review.checks import TOP_GUESSES
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, NotFound


def input_doc(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError:
        raise InvalidInput("the input content must be a JSON document") from None
    if not isinstance(doc, dict):
        raise InvalidInput("the input content must be a JSON object")
    return doc


def input_image(svc: Services, doc: Mapping[str, Any]) -> tuple[bytes, str]:
    """The image bytes an input document names, and where they came from."""
    for key in ("taskObject", "source-ref", "sourceRef"):
        ref = doc.get(key)
        if isinstance(ref, str):
            bucket, obj = s3_uri(ref)
            return svc.buckets.get(bucket, obj), ref
    request = doc.get("aiServiceRequest")
    img = request.get("image") if isinstance(request, dict) else doc.get("image")
    if isinstance(img, dict):
        s3 = img.get("s3Object") or img.get("S3Object")
        if isinstance(s3, dict) and isinstance(s3.get("bucket", s3.get("Bucket")), str):
            bucket = str(s3.get("bucket", s3.get("Bucket")))
            s3_name = s3.get("name", s3.get("Name"))
            if not isinstance(s3_name, str):
                raise InvalidInput("the image's s3Object needs a name")
            return svc.buckets.get(bucket, s3_name), f"s3://{bucket}/{s3_name}"
        raw = img.get("bytes", img.get("Bytes"))
        if isinstance(raw, str):
            try:
                return base64.b64decode(raw, validate=True), "upload"
            except (binascii.Error, ValueError):
                raise InvalidInput("the image bytes are not valid base64") from None
    digest = doc.get("contentHash")
    if isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest):
        try:
            return load_image(svc.store, digest), f"sha256:{digest}"
        except NotFound:
            raise InvalidInput(f"no stored image has the content hash {digest}") from None
    raise InvalidInput(
        "the input content names no image: give taskObject (s3://bucket/key), "
        "aiServiceRequest.image.s3Object, image.bytes or contentHash"
    )


def s3_uri(ref: str) -> tuple[str, str]:
    if not ref.startswith("s3://") or "/" not in ref[5:]:
        raise InvalidInput(f"{ref[:200]!r} is not an s3://bucket/key reference")
    bucket, _, key = ref[5:].partition("/")
    if not bucket or not key:
        raise InvalidInput(f"{ref[:200]!r} is not an s3://bucket/key reference")
    return bucket, key


def input_predictions(doc: Mapping[str, Any]) -> tuple[Prediction, ...]:
    response = doc.get("aiServiceResponse")
    labels = response.get("customLabels") if isinstance(response, dict) else doc.get("customLabels")
    if labels is None:
        return ()
    if not isinstance(labels, list):
        raise InvalidInput("customLabels must be a list of {Name, Confidence}")
    out = []
    for item in labels:
        name = item.get("Name", item.get("name")) if isinstance(item, dict) else None
        conf = item.get("Confidence", item.get("confidence")) if isinstance(item, dict) else None
        if not isinstance(name, str) or isinstance(conf, bool) or not isinstance(conf, int | float):
            raise InvalidInput("each of customLabels needs a Name and a numeric Confidence")
        if not 0 <= conf <= 100:
            raise InvalidInput("a Confidence in customLabels must be between 0 and 100")
        out.append(Prediction(name, float(conf), _geometry(name, item)))
    out.sort(key=lambda p: (-p.confidence, p.label))
    return tuple(out[:TOP_GUESSES])


def _geometry(name: str, item: Mapping[str, Any]) -> Box | None:
    """The box of a customLabels entry (DetectCustomLabels' Geometry.BoundingBox, ratios), if it has one."""
    geometry = item.get("Geometry")
    if geometry is None:
        return None
    box = geometry.get("BoundingBox") if isinstance(geometry, dict) else None
    if not isinstance(box, dict):
        raise InvalidInput("a Geometry in customLabels needs a BoundingBox")
    values = [box.get(k) for k in ("Left", "Top", "Width", "Height")]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise InvalidInput("a BoundingBox in customLabels needs numeric Left, Top, Width and Height")
    left, top, width, height = (float(v) for v in values)  # type: ignore[arg-type]
    if left < 0 or top < 0 or width <= 0 or height <= 0 or left + width > 1.0001 or top + height > 1.0001:
        raise InvalidInput("a BoundingBox in customLabels must lie inside the image (ratios of its size)")
    return Box(name, left, top, width, height)


def custom_label(p: Prediction) -> dict[str, Any]:
    """A guess as DetectCustomLabels writes it: Name, Confidence and, for a box, Geometry.BoundingBox."""
    out: dict[str, Any] = {"Name": p.label, "Confidence": p.confidence}
    if p.box is not None:
        b = p.box
        out["Geometry"] = {
            "BoundingBox": {"Left": b.left, "Top": b.top, "Width": b.width, "Height": b.height}
        }
    return out


def margin(probs: Sequence[float]) -> float:
    top = sorted(probs, reverse=True)
    return round(top[0] - (top[1] if len(top) > 1 else 0.0), 6)
