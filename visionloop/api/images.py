"""The image of a native detect or analyze request: a multipart ``file``, the raw body, or JSON with
``image_base64`` or ``s3_object`` ({bucket, name}) next to the operation's options."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from visionloop.errors import ImageTooLarge, InvalidInput


class _ObjectIn(Protocol):
    @property
    def bucket(self) -> str: ...
    @property
    def name(self) -> str: ...


class ImageBody(Protocol):
    """A JSON request body with its image inline or in a bucket (exactly one of them)."""

    @property
    def image_base64(self) -> str | None: ...
    @property
    def s3_object(self) -> _ObjectIn | None: ...


Body = TypeVar("Body", bound=ImageBody)
Ref = TypeVar("Ref")


def max_body(max_bytes: int) -> int:
    """The largest request body: the largest image, base64-encoded, plus some room for the envelope."""
    return max_bytes * 4 // 3 + 64 * 1024


async def read_image(
    request: Request, parse: Callable[[bytes], Body], max_bytes: int, stored: Callable[[str, str], Ref]
) -> tuple[bytes | Ref, Body | None]:
    """The image (bytes, or ``stored(bucket, name)`` for a bucket reference) and, for a JSON request, its
    body as ``parse`` (a model's ``model_validate_json``) reads it. A multipart file is read up to
    ``max_bytes + 1`` so that the caller's limit check sees it is too large; a body over
    max_body(max_bytes) is refused here."""
    limit = max_body(max_bytes)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ImageTooLarge(
            f"the request is {int(declared):,} bytes; an image may be at most {max_bytes:,} bytes"
        )
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        async with request.form(max_files=1) as form:
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise InvalidInput("the form needs the image as a file field named 'file'")
            return await file.read(max_bytes + 1), None
    body = await read_limited(request, limit)
    if kind != "application/json":
        return body, None
    try:
        parsed = parse(body)
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None
    return json_image(parsed, stored), parsed


async def read_limited(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ImageTooLarge(f"the request is over {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def json_image(body: ImageBody, stored: Callable[[str, str], Ref]) -> bytes | Ref:
    if (body.image_base64 is None) == (body.s3_object is None):
        raise InvalidInput("give exactly one of image_base64 and s3_object")
    if body.s3_object is not None:
        return stored(body.s3_object.bucket, body.s3_object.name)
    try:
        return base64.b64decode(body.image_base64 or "", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("image_base64 is not valid base64") from None


def image_request_body(
    json_model: type[BaseModel], files: tuple[str, ...] = ("file",), raw: bool = True
) -> dict[str, Any]:
    """The OpenAPI request body of a route that takes images: a multipart form with ``files``, JSON in
    ``json_model``'s schema and, with ``raw``, the image itself as the body."""
    form = {"type": "object", "properties": {f: {"type": "string", "format": "binary"} for f in files}}
    content: dict[str, Any] = {
        "multipart/form-data": {"schema": {**form, "required": list(files)}},
        "application/json": {"schema": json_model.model_json_schema()},
    }
    if raw:
        content["image/jpeg"] = content["image/png"] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"content": content}}
