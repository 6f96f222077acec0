"""The Pillow image inspector (implements core.ports.ImageInspector): identifies the format, reads the
size after EXIF orientation, refuses oversized images before decoding them, and decodes the whole
image once so that truncated or corrupt files are caught at import time rather than at training time.
From that decoded image it also computes a 64-bit difference hash (dHash) for finding near-duplicates."""

from __future__ import annotations

import hashlib
import io
import warnings

from PIL import Image, UnidentifiedImageError

from visionloop.core.entities import ImageInfo
from visionloop.errors import ImageTooLarge, InvalidImage

# formats Pillow may report for files users call JPEG or PNG (MPO: phone JPEGs with a depth map)
_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG"}
_TRANSPOSED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
DEFAULT_MAX_PIXELS = 10_000 * 10_000  # the largest image any Rekognition operation takes


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
