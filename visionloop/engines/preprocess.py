"""Image bytes → normalised float32 NCHW batches, decoded once and in parallel.

Pillow releases the GIL while it decodes and resizes, so a thread pool scales over cores.
JPEGs are decoded at a reduced scale with ``Image.draft`` when the target is much smaller.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps

from visionloop.errors import InvalidImage
from visionloop.imaging import LARGE_PIXELS, decode_reduced

# Bump when the pixels produced for a given Preprocessing change (it keys the embedding cache).
PREPROCESS_VERSION = "1"

ResizeMode = Literal["shorter", "squash"]
Interpolation = Literal["bicubic", "bilinear", "nearest"]
_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True)
class Preprocessing:
    """How a backbone wants its pixels.

    ``resize_mode="shorter"`` resizes the short side to ``resize_size``, ``"squash"`` resizes
    both sides to ``resize_size`` (ignoring the aspect ratio); both then centre-crop ``input_size``.
    ``mean`` and ``std`` are in 0–255 pixel units: ``x = (pixel - mean) / std``.
    ``region`` (left, top, right, bottom as fractions of that square) shows only part of it, resized
    to the input size: a tile of the image seen closer (small objects, small defects).
    """

    input_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize_mode: ResizeMode = "shorter"
    interpolation: Interpolation = "bicubic"
    region: tuple[float, float, float, float] | None = None

    @property
    def id(self) -> str:
        """A stable string naming these pixels (used in cache keys)."""
        mean = ",".join(f"{v:g}" for v in self.mean)
        std = ",".join(f"{v:g}" for v in self.std)
        region = "" if self.region is None else "-r" + ",".join(f"{v:g}" for v in self.region)
        return (
            f"p{PREPROCESS_VERSION}-{self.resize_mode}{self.resize_size}-crop{self.input_size}"
            f"-{self.interpolation}-m{mean}-s{std}{region}"
        )

    @property
    def draft_size(self) -> int:
        """The smallest side a JPEG may be decoded at without losing pixels this preprocessing uses."""
        side = max(self.resize_size, self.input_size)
        if self.region is None:
            return side
        left, top, right, bottom = self.region
        return round(side / max(1e-3, min(right - left, bottom - top)))


def decode_image(data: bytes, draft_size: int | None = None) -> Image.Image:
    """Decode bytes to an RGB image, upright per its EXIF orientation, alpha flattened on white.

    ``draft_size`` lets a JPEG decode at the smallest scale whose sides stay ≥ that size. An image over
    ``LARGE_PIXELS`` decodes reduced (a PNG too), with bounded memory: see ``imaging.decode_reduced``.
    """
    try:
        opened = Image.open(io.BytesIO(data))
        image: Image.Image = opened
        if opened.width * opened.height > LARGE_PIXELS:
            image = decode_reduced(opened, data, draft_size)
        else:
            if draft_size is not None and opened.format == "JPEG":
                opened.draft("RGB", (draft_size, draft_size))
            opened.load()
        ImageOps.exif_transpose(image, in_place=True)
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"image too large to decode: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImage(f"cannot decode image: {exc}") from exc
    return _to_rgb(image)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the image's header (nothing decoded), or None when it cannot be read."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            return opened.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def resize_and_crop(image: Image.Image, p: Preprocessing) -> Image.Image:
    """Resize per ``p`` and centre-crop to ``p.input_size`` square."""
    size, width, height = p.input_size, image.width, image.height
    side = max(p.resize_size, size)
    if p.resize_mode == "squash":
        new_w = new_h = side
    else:
        scale = side / min(width, height)
        new_w, new_h = round(width * scale), round(height * scale)
    sx, sy = new_w / width, new_h / height
    left, top = round((new_w - size) / 2), round((new_h - size) / 2)
    # Resampling only the crop window of the source equals resize-then-crop, for less work.
    box = (left / sx, top / sy, (left + size) / sx, (top + size) / sy)
    if p.region is not None:
        x0, y0, x1, y1 = box
        rl, rt, rr, rb = p.region
        box = (x0 + rl * (x1 - x0), y0 + rt * (y1 - y0), x0 + rr * (x1 - x0), y0 + rb * (y1 - y0))
    return image.resize((size, size), _RESAMPLE[p.interpolation], box=box)


def to_array(image: Image.Image, p: Preprocessing, out: np.ndarray | None = None) -> np.ndarray:
    """Normalise an RGB image of the input size into a float32 CHW array (written to ``out``)."""
    hwc = np.asarray(image, dtype=np.uint8)
    if out is None:
        out = np.empty((3, p.input_size, p.input_size), dtype=np.float32)
    return _normalise(hwc.transpose(2, 0, 1), p, out)


def _normalise(levels: np.ndarray, p: Preprocessing, out: np.ndarray) -> np.ndarray:
    """``(levels - mean) / std`` per channel (axis 0) in float32, as every caller must compute it."""
    shape = (3,) + (1,) * (levels.ndim - 1)
    mean = np.asarray(p.mean, dtype=np.float32).reshape(shape)
    inv_std = (1.0 / np.asarray(p.std, dtype=np.float64)).astype(np.float32).reshape(shape)
    np.subtract(levels, mean, out=out, dtype=np.float32)
    np.multiply(out, inv_std, out=out)
    return out


def normalised_levels(p: Preprocessing) -> np.ndarray:
    """float32 ``(3, 256)``: the value :func:`to_array` gives each pixel level in each channel."""
    levels = np.broadcast_to(np.arange(256, dtype=np.uint8), (3, 256))
    return _normalise(levels, p, np.empty((3, 256), dtype=np.float32))


def to_codes(image: Image.Image, table: np.ndarray, out: np.ndarray) -> np.ndarray:
    """An RGB image of the input size as uint8 HWC codes, ``table[level]`` (``(256,)``, the same for
    every channel) or ``table[channel, level]`` (``(3, 256)``), written to ``out``. Pillow maps the
    levels (``Image.point``): a third less CPU than numpy's indexing, which widens them to int64."""
    lut = np.broadcast_to(table, (3, 256)).ravel().tolist()
    np.copyto(out, np.asarray(image.point(lut)))
    return out


def preprocess_image(
    data: bytes, p: Preprocessing, *, flip: bool = False, out: np.ndarray | None = None
) -> np.ndarray:
    """One image's bytes → float32 CHW array; ``flip`` mirrors it left–right (test-time augmentation)."""
    image = resize_and_crop(decode_image(data, draft_size=p.draft_size), p)
    if flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return to_array(image, p, out=out)


def preprocess_views(
    data: bytes,
    views: Sequence[tuple[Preprocessing, bool]],
    outs: Sequence[np.ndarray],
    tables: Sequence[np.ndarray] | None = None,
) -> None:
    """One image's bytes → one array per (preprocessing, flip) view, written to ``outs``: exactly the
    pixels :func:`preprocess_image` gives per view, for less work. The image is decoded once per draft
    size, and a view and its mirror image share one resampling and one normalisation (the mirror image
    is the same array read right to left).

    With ``tables`` (one per view, see :func:`to_codes`) each view is written as uint8 HWC codes instead
    of float32 CHW: what a network that takes quantized pixels reads (QuantizedBackbone.pixel_input)."""
    decoded: dict[int, Image.Image] = {}
    done: dict[Preprocessing, tuple[np.ndarray, bool]] = {}  # the first array of each preprocessing
    width_axis = 2 if tables is None else 1
    for k, ((p, flip), out) in enumerate(zip(views, outs, strict=True)):
        if p in done:
            first, mirrored = done[p]
            out[...] = np.flip(first, width_axis) if flip != mirrored else first
            continue
        if p.draft_size not in decoded:
            decoded[p.draft_size] = decode_image(data, draft_size=p.draft_size)
        image = resize_and_crop(decoded[p.draft_size], p)
        if flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        array = to_array(image, p, out=out) if tables is None else to_codes(image, tables[k], out)
        done[p] = (array, flip)


class PendingBatch:
    """A batch whose images are being preprocessed in a thread pool."""

    def __init__(self, array: np.ndarray, futures: Sequence[Future[Any]], offset: int = 0) -> None:
        self._array = array
        self._futures = futures
        self._offset = offset

    def result(self) -> np.ndarray:
        """Wait for every image and return the NCHW batch; the first bad image raises InvalidImage."""
        for index, future in enumerate(self._futures):
            try:
                future.result()
            except InvalidImage as exc:
                self.cancel()
                position = self._offset + index
                raise InvalidImage(f"image {position}: {exc.message}", index=position) from exc
        return self._array

    def cancel(self) -> None:
        """Drop the images not started yet."""
        for future in self._futures:
            future.cancel()


def submit_batch(
    images: Sequence[bytes], p: Preprocessing, executor: Executor, *, flip: bool = False, offset: int = 0
) -> PendingBatch:
    """Start preprocessing ``images`` on ``executor``, one task per image, into one NCHW array.

    ``offset`` is the position of ``images[0]`` in the caller's list, for error messages.
    """
    array = np.empty((len(images), 3, p.input_size, p.input_size), dtype=np.float32)
    futures = [
        executor.submit(preprocess_image, data, p, flip=flip, out=array[i]) for i, data in enumerate(images)
    ]
    return PendingBatch(array, futures, offset)


def preprocess_views_batch(
    images: Sequence[bytes],
    views: Sequence[tuple[Preprocessing, bool]],
    executor: Executor,
    *,
    offset: int = 0,
    tables: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Many images in several views of one input size, in parallel: float32 ``(views, n, 3, size, size)``,
    or with ``tables`` uint8 codes ``(views, n, size, size, 3)`` (see :func:`preprocess_views`).

    Each image is decoded once (per draft size) for all its views; the first bad image raises
    InvalidImage naming its position (``offset`` + index)."""
    sizes = {p.input_size for p, _ in views}
    if len(sizes) != 1:
        raise ValueError(f"views of one batch must share an input size, got {sorted(sizes)}")
    size = sizes.pop()
    if tables is None:
        array = np.empty((len(views), len(images), 3, size, size), dtype=np.float32)
    else:
        array = np.empty((len(views), len(images), size, size, 3), dtype=np.uint8)
    futures = [
        executor.submit(preprocess_views, data, views, [array[k, i] for k in range(len(views))], tables)
        for i, data in enumerate(images)
    ]
    return PendingBatch(array, futures, offset).result()


def preprocess_batch(
    images: Sequence[bytes], p: Preprocessing, *, flip: bool = False, executor: Executor | None = None
) -> np.ndarray:
    """Preprocess many images in parallel into a float32 NCHW array."""
    if executor is not None:
        return submit_batch(images, p, executor, flip=flip).result()
    with ThreadPoolExecutor(max_workers=default_workers()) as pool:
        return submit_batch(images, p, pool, flip=flip).result()


def default_workers() -> int:
    """Threads for decoding: one per core."""
    return os.cpu_count() or 1
