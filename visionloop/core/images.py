"""Image rules shared by imports, uploads and detection: formats, byte and pixel limits, and where
image bytes live in the content-addressed store."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from visionloop.core.entities import ImageInfo
from visionloop.core.ports import ImageInspector, ObjectStore
from visionloop.errors import ImageTooLarge, InvalidImage, InvalidInput

IMAGES_BUCKET = "images"  # bucket of the internal store holding every dataset image by content hash
DIMENSION_ERROR = "ERROR_INVALID_IMAGE_DIMENSION"


@dataclass(frozen=True)
class ImageLimits:
    """Custom Labels' limits for training and test images."""

    formats: tuple[str, ...] = ("JPEG", "PNG")
    max_bytes: int = 15 * 1024 * 1024
    min_side: int = 64
    max_side: int = 4096
    max_aspect: float = 20.0


TRAINING_LIMITS = ImageLimits()


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image_key(digest: str) -> str:
    return f"sha256/{digest[:2]}/{digest}"


def check_image(data: bytes, inspector: ImageInspector, limits: ImageLimits = TRAINING_LIMITS) -> ImageInfo:
    """Inspect ``data`` and apply ``limits``; raise InvalidImage / ImageTooLarge / InvalidInput."""
    if not data:
        raise InvalidInput("the image is empty")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"the image is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes",
            code="ERROR_INVALID_IMAGE",
        )
    info = inspector.inspect(data, max_pixels=limits.max_side * limits.max_side)
    if info.format not in limits.formats:
        raise InvalidImage(f"the image is {info.format}; only {' and '.join(limits.formats)} are accepted")
    w, h = info.width, info.height
    code = DIMENSION_ERROR
    if max(w, h) > limits.max_side:
        raise ImageTooLarge(
            f"the image is {w}x{h} px; each side must be at most {limits.max_side} px", code=code
        )
    if min(w, h) < limits.min_side:
        raise InvalidInput(
            f"the image is {w}x{h} px; each side must be at least {limits.min_side} px", code=code
        )
    if max(w, h) / min(w, h) > limits.max_aspect:
        raise InvalidInput(
            f"the image is {w}x{h} px; the aspect ratio must be at most {limits.max_aspect:g}:1", code=code
        )
    return info


def store_image(store: ObjectStore, data: bytes, digest: str) -> None:
    """Keep the image bytes under their content hash (a no-op when already stored)."""
    key = image_key(digest)
    if not store.exists(IMAGES_BUCKET, key):
        store.put(IMAGES_BUCKET, key, data)


def store_images(store: ObjectStore, images: Sequence[tuple[str, bytes]]) -> None:
    """Keep many images (digest, bytes) at once; the ones already stored are skipped."""
    missing = {image_key(d): data for d, data in images if not store.exists(IMAGES_BUCKET, image_key(d))}
    store.put_many(IMAGES_BUCKET, list(missing.items()))


def load_image(store: ObjectStore, digest: str) -> bytes:
    return store.get(IMAGES_BUCKET, image_key(digest))
