"""The ``Image`` member of the image operations: exactly one of ``Bytes`` (base64 in JSON) and ``S3Object``,
within Rekognition's byte limits. The pixels are checked by the use case that decodes the image."""

from __future__ import annotations

from visionloop.aws.exceptions import (
    ImageTooLargeException,
    InvalidParameterException,
    InvalidS3ObjectException,
)
from visionloop.aws.params import Params, s3_object
from visionloop.core.keys import ObjectRef, check_bucket, check_key
from visionloop.core.ports import ObjectStore
from visionloop.core.serving import DETECT_LIMITS
from visionloop.errors import InvalidKey, ObjectNotFound

MAX_BYTES = 5 * 1024 * 1024  # Image.Bytes of most operations
CUSTOM_LABELS_MAX_BYTES = DETECT_LIMITS.max_bytes  # DetectCustomLabels' Image.Bytes: 4 MB
MAX_OBJECT_BYTES = 15 * 1024 * 1024  # an image read from a bucket


def image_member(params: Params, *, name: str = "Image", max_bytes: int = MAX_BYTES) -> bytes | ObjectRef:
    """The image as given: its ``Bytes`` (at most ``max_bytes``), or the checked bucket and key of its
    ``S3Object``, not read yet (see ``missing_object`` for the error when it is not there)."""
    image = params.required_struct(name)
    has_bytes, has_object = image.has("Bytes"), image.has("S3Object")
    if has_bytes == has_object:
        raise InvalidParameterException(f"{name} needs exactly one of Bytes and S3Object.")
    if has_bytes:
        data = image.blob("Bytes", required=True)
        assert data is not None
        _check_size(data, max_bytes)
        return data
    ref = s3_object(image.required_struct("S3Object"))
    try:
        return ObjectRef(check_bucket(ref.bucket), check_key(ref.key))
    except InvalidKey:
        raise missing_object(ref) from None


def read_image(
    params: Params,
    buckets: ObjectStore,
    *,
    name: str = "Image",
    max_bytes: int = MAX_BYTES,
    max_object_bytes: int = MAX_OBJECT_BYTES,
) -> bytes:
    """The image's bytes, read from its bucket when it is given as an ``S3Object``."""
    source = image_member(params, name=name, max_bytes=max_bytes)
    if isinstance(source, bytes):
        return source
    try:  # reading stops just past the limit; a bucket that leads out of the buckets folder is refused
        data = buckets.get(source.bucket, source.key, max_bytes=max_object_bytes)
    except (ObjectNotFound, InvalidKey):
        raise missing_object(source) from None
    _check_size(data, max_object_bytes)
    return data


def missing_object(ref: ObjectRef) -> InvalidS3ObjectException:
    return InvalidS3ObjectException(
        f"Unable to get object s3://{ref.bucket}/{ref.key}. "
        "Check object key, region and/or access permissions."
    )


def _check_size(data: bytes, limit: int) -> None:
    if len(data) > limit:
        raise ImageTooLargeException(f"Image size is too large: over the limit of {limit:,} bytes.")
