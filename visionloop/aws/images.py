"""The ``Image`` member of the image operations: exactly one of ``Bytes`` (base64 in JSON) and ``S3Object``,
within Rekognition's byte limits. The pixels are checked by the use case that decodes the image."""

from __future__ import annotations

from visionloop.aws.exceptions import (
    ImageTooLargeException,
    InvalidParameterException,
    InvalidS3ObjectException,
)
from visionloop.aws.params import Params, s3_object
from visionloop.core.keys import check_bucket, check_key
from visionloop.core.ports import ObjectStore
from visionloop.errors import InvalidKey, ObjectNotFound

MAX_BYTES = 5 * 1024 * 1024  # Image.Bytes of most operations
CUSTOM_LABELS_MAX_BYTES = 4 * 1024 * 1024  # DetectCustomLabels' Image.Bytes
MAX_OBJECT_BYTES = 15 * 1024 * 1024  # an image read from a bucket


def read_image(
    params: Params,
    buckets: ObjectStore,
    *,
    name: str = "Image",
    max_bytes: int = MAX_BYTES,
    max_object_bytes: int = MAX_OBJECT_BYTES,
) -> bytes:
    image = params.required_struct(name)
    has_bytes, has_object = image.has("Bytes"), image.has("S3Object")
    if has_bytes == has_object:
        raise InvalidParameterException(f"{name} needs exactly one of Bytes and S3Object.")
    if has_bytes:
        data = image.blob("Bytes", required=True)
        assert data is not None
        if len(data) > max_bytes:
            raise ImageTooLargeException(
                f"Image size is too large: {len(data):,} bytes; the limit is {max_bytes:,}."
            )
        return data
    ref = s3_object(image.required_struct("S3Object"))
    try:
        data = buckets.get(check_bucket(ref.bucket), check_key(ref.key))
    except (InvalidKey, ObjectNotFound):
        raise InvalidS3ObjectException(
            f"Unable to get object s3://{ref.bucket}/{ref.key}. "
            "Check object key, region and/or access permissions."
        ) from None
    if len(data) > max_object_bytes:
        raise ImageTooLargeException(
            f"Image size is too large: {len(data):,} bytes; the limit is {max_object_bytes:,}."
        )
    return data
