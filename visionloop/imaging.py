"""The Pillow image inspector (implements core.ports.ImageInspector): identifies the format, reads the
size after EXIF orientation, refuses oversized images before decoding them, and decodes the whole
image once so that truncated or corrupt files are caught at import time rather than at training time.
From that decoded image it also computes a 64-bit difference hash (dHash) for finding near-duplicates.

Large images (over LARGE_PIXELS, which only the analysis operations accept) are decoded at a reduced
scale by :func:`decode_reduced` with bounded memory: a JPEG through Pillow's draft mode, a PNG in strips
of rows that are reduced one by one (a 9000x9000 PNG would otherwise take 324 MB as one Pillow image).
At most LARGE_DECODE_SLOTS such decodes run at once, and each gives its memory back to the system."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import io
import math
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from functools import cache

from PIL import Image, ImageFile, UnidentifiedImageError

from visionloop.core.entities import ImageInfo
from visionloop.errors import ImageTooLarge, InvalidImage

# formats Pillow may report for files users call JPEG or PNG (MPO: phone JPEGs with a depth map)
_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG"}
_TRANSPOSED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
DEFAULT_MAX_PIXELS = 10_000 * 10_000  # the largest image any Rekognition operation takes
LARGE_PIXELS = 4096 * 4096  # above this (the training and detection limit) images decode reduced
LARGE_DECODE_SLOTS = 2  # large decodes that may run at once
_LARGE_DECODES = threading.BoundedSemaphore(LARGE_DECODE_SLOTS)
HASH_SIDE = 512  # a large image is hashed from a reduction whose short side keeps this many pixels
STRIP_BYTES = 8 * 1024 * 1024  # rows of a large PNG decoded at once
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type → samples a pixel


class PillowInspector:
    def __init__(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.max_pixels = max_pixels

    def inspect(self, data: bytes, max_pixels: int | None = None) -> ImageInfo:
        limit = min(self.max_pixels, max_pixels or self.max_pixels)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as img:
                    fmt = _FORMATS.get(img.format or "")
                    if fmt is None:
                        raise InvalidImage(
                            f"the file is {img.format or 'an unknown format'}; only JPEG and PNG are accepted"
                        )
                    width, height = img.size
                    if width * height > limit:
                        raise ImageTooLarge(
                            f"the image is {width}x{height} px ({width * height:,} pixels); "
                            f"the limit is {limit:,} pixels",
                            code="ERROR_INVALID_IMAGE_DIMENSION",
                        )
                    if fmt == "PNG" and width * height > LARGE_PIXELS:  # (getexif() would decode it all)
                        reduced = decode_reduced(img, data, HASH_SIDE)
                        orientation = reduced.getexif().get(0x0112, 1)
                        phash = dhash(reduced)
                    else:
                        orientation = img.getexif().get(0x0112, 1)
                        if fmt == "JPEG":
                            img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
                        img.load()
                        phash = dhash(img)
        except (InvalidImage, ImageTooLarge):
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageTooLarge(f"the image is refused as a decompression bomb: {e}") from None
        except UnidentifiedImageError:
            raise InvalidImage("the file is not a readable JPEG or PNG image") from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise InvalidImage(f"the image is corrupt or truncated: {e}") from None
        if orientation in _TRANSPOSED:
            width, height = height, width
        return ImageInfo(fmt, width, height, len(data), hashlib.sha256(data).hexdigest(), phash)


def dhash(img: Image.Image) -> str | None:
    """The 64-bit difference hash: grayscale, 9x8 pixels, one bit per pair of horizontal neighbours
    (set when the left one is brighter), as 16 hex digits. EXIF orientation is not applied."""
    try:
        small = img.convert("L").resize((9, 8), Image.Resampling.BOX)
    except (OSError, ValueError):
        return None  # an unusual pixel mode: the image is still valid, it just has no hash
    px = small.tobytes()  # one byte per pixel, row by row
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (px[row * 9 + col] > px[row * 9 + col + 1])
    return f"{bits:016x}"


def decode_reduced(img: ImageFile.ImageFile, data: bytes, min_side: int | None = None) -> Image.Image:
    """Decode the opened ``img`` (whose bytes are ``data``) reduced so that its short side keeps at least
    ``min_side`` px, or (None) so that it has at most about LARGE_PIXELS pixels, without holding the whole
    image: a JPEG at the smallest draft scale that keeps them, an 8-bit non-interlaced PNG in strips of
    rows, each reduced by the same integer factor with ``Image.reduce`` (other PNGs are decoded whole, then
    reduced). EXIF orientation is not applied, but the result's ``getexif()`` has it; the result is
    loaded. For images over LARGE_PIXELS: at most LARGE_DECODE_SLOTS run at once. Pillow's errors
    (OSError, ValueError, SyntaxError, EOFError) pass through."""
    width, height = img.size
    if min_side is None:
        factor = math.ceil(math.sqrt(width * height / LARGE_PIXELS))
    else:
        factor = min(width, height) // max(1, min_side)
    factor = max(1, factor)
    with _LARGE_DECODES:
        try:
            if img.format == "JPEG":  # the smallest scale (1/2 .. 1/8) whose sides keep min_side
                side = (min_side, min_side) if min_side else (width // factor, height // factor)
                img.draft(img.mode, side)
                img.load()
                return img
            strips = _png_strips(img, data, factor)
            if strips is None:  # a PNG this reader does not stream (16-bit, interlaced): whole, then reduce
                img.load()
                whole = _reducible(img)
                return whole.reduce(factor) if factor > 1 else whole
            out: Image.Image | None = None
            top = 0
            for strip in strips:
                part = _reducible(strip).reduce(factor) if factor > 1 else _reducible(strip)
                if out is None:
                    out = Image.new(part.mode, (math.ceil(width / factor), math.ceil(height / factor)))
                out.paste(part, (0, top))
                top += part.height
            assert out is not None
            exif = next((body for kind, body in _png_chunks(data) if kind == b"eXIf"), None)
            if exif is not None:  # as Pillow keeps it, for getexif() and ImageOps.exif_transpose
                out.info["exif"] = b"Exif\x00\x00" + exif
            return out
        finally:
            _release_memory()


def _reducible(img: Image.Image) -> Image.Image:
    """``img`` in a mode Image.reduce takes, keeping its transparency as alpha."""
    if "transparency" in img.info:
        return img.convert("RGBA")
    if img.mode in ("L", "LA", "RGB", "RGBA"):
        return img
    return img.convert("RGBA" if img.mode.endswith("A") else "RGB")


def _png_strips(img: ImageFile.ImageFile, data: bytes, factor: int) -> Iterator[Image.Image] | None:
    """The rows of an 8-bit non-interlaced PNG as images of a few rows each (a multiple of ``factor``, so
    that reducing them one by one equals reducing the whole), or None for other PNGs. Pillow's PNG
    decoder ("zip") turns each strip's filtered rows into pixels, with the previous strip's last row in
    front, unfiltered, as the prior row that the filters of the strip's first row refer to."""
    chunks = list(_png_chunks(data)) if data.startswith(_PNG_SIGNATURE) else []
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13 or len(img.tile) != 1:
        return None
    _, _, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if depth != 8 or interlace != 0 or colour not in _PNG_CHANNELS or img.tile[0].codec_name != "zip":
        return None
    stride = img.width * _PNG_CHANNELS[colour]
    rows = max(factor, STRIP_BYTES // stride // factor * factor)
    return _decode_strips(img, [body for kind, body in chunks if kind == b"IDAT"], stride, rows)


def _decode_strips(
    img: ImageFile.ImageFile, compressed: list[bytes], stride: int, rows: int
) -> Iterator[Image.Image]:
    width, height = img.size
    inflate = zlib.decompressobj()
    chunks = iter(compressed)
    tail = b""  # compressed bytes not inflated yet
    prior = b""  # the previous strip's last row, unfiltered
    done = 0
    while done < height:
        n = min(rows, height - done)
        want = n * (stride + 1)
        filtered = bytearray(b"\0" + prior if prior else b"")
        want += len(filtered)
        while len(filtered) < want:  # inflate no more than the strip: a small PNG may hold 300 MB
            if not tail:
                body = next(chunks, None)
                if body is None:
                    raise OSError(
                        f"image file is truncated after {done + len(filtered) // (stride + 1)} rows"
                    )
                tail = body
            try:
                filtered += inflate.decompress(tail, want - len(filtered))
            except zlib.error as e:
                raise OSError(f"broken PNG image data: {e}") from None
            tail = inflate.unconsumed_tail
        first = 1 if prior else 0
        strip = Image.frombytes(
            img.mode, (width, n + first), zlib.compress(filtered, 0), "zip", img.tile[0].args
        )
        del filtered
        if first:
            strip = strip.crop((0, 1, width, n + 1))
        if img.palette is not None:
            strip.putpalette(img.palette)
        if "transparency" in img.info:
            strip.info["transparency"] = img.info["transparency"]
        prior = strip.crop((0, n - 1, width, n)).tobytes()
        done += n
        yield strip


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        yield kind, data[pos + 8 : pos + 8 + length]
        if kind == b"IEND":
            return
        pos += 12 + length


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def _release_memory() -> None:
    """Give freed heap memory back to the system (glibc keeps it otherwise, and a large decode's strips
    would stay in the process's resident memory)."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)
