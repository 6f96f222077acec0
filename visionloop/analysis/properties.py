"""DetectLabels' IMAGE_PROPERTIES: brightness, sharpness and contrast, dominant colours (CSS keyword,
hex code, simplified name, share of pixels) for the whole image and a simple foreground / background
split. Plain numpy and Pillow on a downscaled copy, a few milliseconds per image.

How each figure is made (all 0–100):

* brightness: mean luma (BT.601) / 255;
* contrast: RMS contrast, the standard deviation of luma / 128, capped at 100;
* sharpness: variance of the Laplacian of luma at 512 px on the long side, through
  ``1 - exp(-variance / 300)`` (a blurred photo scores under 30, a crisp one over 80);
* dominant colours: median-cut to 16 colours on a 96 px copy, grouped by nearest CSS keyword,
  largest first;
* foreground: the union of the detected objects' boxes when there are any, else the centre of the
  image (the middle half of each side); background: the rest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache

import numpy as np
from PIL import Image, ImageColor

from visionloop.core.records.analysis import (
    BoundingBox,
    DominantColor,
    ImageProperties,
    ImageQuality,
    RegionProperties,
)

QUALITY_SIDE = 512  # long side for brightness, contrast and sharpness
COLOUR_SIDE = 96  # long side for dominant colours
PALETTE = 16  # median-cut colours before grouping by CSS keyword
SHARPNESS_SCALE = 300.0
DEFAULT_MAX_COLORS = 10
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@cache
def css_colors() -> tuple[tuple[str, np.ndarray], ...]:
    """CSS colour keywords (one name per colour) and their RGB values, from Pillow's table."""
    by_rgb: dict[tuple[int, int, int], str] = {}
    for name in sorted(ImageColor.colormap):
        rgb = ImageColor.getrgb(name)
        by_rgb.setdefault((rgb[0], rgb[1], rgb[2]), name)
    return tuple((name, np.array(rgb, dtype=np.float32)) for rgb, name in by_rgb.items())


def nearest_css(rgb: Sequence[float]) -> str:
    """The CSS keyword nearest to ``rgb`` by the "redmean" weighted distance."""
    names = css_colors()
    table = np.stack([value for _, value in names])
    r = np.asarray(rgb, dtype=np.float32)
    mean_r = (table[:, 0] + r[0]) / 2
    d = table - r
    dist = (2 + mean_r / 256) * d[:, 0] ** 2 + 4 * d[:, 1] ** 2 + (2 + (255 - mean_r) / 256) * d[:, 2] ** 2
    return names[int(np.argmin(dist))][0]


def simplified_color(rgb: Sequence[float]) -> str:
    """One of black, white, grey, red, orange, yellow, green, teal, blue, purple, pink, brown."""
    r, g, b = (float(c) / 255 for c in rgb)
    hi, lo = max(r, g, b), min(r, g, b)
    value, saturation = hi, (hi - lo) / hi if hi else 0.0
    if value < 0.18:
        return "black"
    if saturation < 0.15:
        return "white" if value > 0.85 else "grey"
    if hi == r:
        hue = (60 * (g - b) / (hi - lo)) % 360
    elif hi == g:
        hue = 60 * (b - r) / (hi - lo) + 120
    else:
        hue = 60 * (r - g) / (hi - lo) + 240
    if 10 <= hue < 45 and value < 0.6:
        return "brown"
    if hue < 15 or hue >= 345:
        return "pink" if saturation < 0.5 and value > 0.7 else "red"
    for limit, name in ((40, "orange"), (70, "yellow"), (165, "green"), (195, "teal"), (255, "blue")):
        if hue < limit:
            return name
    return "purple" if hue < 290 else "pink"


def dominant_colors(pixels: np.ndarray, max_colors: int = DEFAULT_MAX_COLORS) -> tuple[DominantColor, ...]:
    """Dominant colours of ``pixels`` (N×3 uint8), at most ``max_colors``, largest share first."""
    if max_colors <= 0 or len(pixels) == 0:
        return ()
    strip = Image.fromarray(np.ascontiguousarray(pixels.reshape(1, -1, 3)), "RGB")
    quantized = strip.quantize(colors=PALETTE, method=Image.Quantize.MEDIANCUT)
    palette = np.array(quantized.getpalette() or [], dtype=np.float32).reshape(-1, 3)
    counts = np.bincount(np.asarray(quantized).ravel(), minlength=len(palette))
    groups: dict[str, tuple[np.ndarray, int]] = {}
    for index in np.flatnonzero(counts):
        colour, n = palette[index], int(counts[index])
        name = nearest_css(colour)
        total, seen = groups.get(name, (np.zeros(3, dtype=np.float64), 0))
        groups[name] = (total + colour * n, seen + n)
    out = []
    for name, (total, n) in sorted(groups.items(), key=lambda item: -item[1][1])[:max_colors]:
        r, g, b = (round(float(c)) for c in total / n)
        out.append(
            DominantColor(
                red=r,
                green=g,
                blue=b,
                hex_code=f"#{r:02x}{g:02x}{b:02x}",
                css_color=name,
                simplified_color=simplified_color((r, g, b)),
                pixel_percent=round(100 * n / len(pixels), 2),
            )
        )
    return tuple(out)


def _resized(image: Image.Image, side: int) -> np.ndarray:
    scale = side / max(image.size)
    if scale < 1:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.BILINEAR,
        )
    return np.asarray(image, dtype=np.uint8)


def _laplacian(luma: np.ndarray) -> np.ndarray:
    out: np.ndarray = (
        luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4 * luma[1:-1, 1:-1]
    )
    return out


def _quality(luma: np.ndarray, mask: np.ndarray | None, contrast: bool) -> ImageQuality:
    values = luma if mask is None else luma[mask]
    if values.size == 0:
        return ImageQuality(0.0, 0.0, 0.0 if contrast else None)
    brightness = float(values.mean()) / 255 * 100
    lap = _laplacian(luma)
    inner = lap if mask is None else lap[mask[1:-1, 1:-1]]
    variance = float(inner.var()) if inner.size else 0.0
    sharpness = 100 * (1 - math.exp(-variance / SHARPNESS_SCALE))
    rms = min(100.0, float(values.std()) / 128 * 100) if contrast else None
    return ImageQuality(round(brightness, 2), round(sharpness, 2), None if rms is None else round(rms, 2))


def _box_mask(shape: tuple[int, int], boxes: Sequence[BoundingBox]) -> np.ndarray:
    h, w = shape
    mask = np.zeros((h, w), dtype=bool)
    if boxes:
        for b in boxes:
            x0, y0 = max(0, int(b.left * w)), max(0, int(b.top * h))
            x1, y1 = min(w, math.ceil((b.left + b.width) * w)), min(h, math.ceil((b.top + b.height) * h))
            mask[y0:y1, x0:x1] = True
    else:  # no object found: the centre of the picture
        mask[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    return mask


def image_properties(
    image: Image.Image, boxes: Sequence[BoundingBox] = (), max_colors: int = DEFAULT_MAX_COLORS
) -> ImageProperties:
    """The properties of an RGB image; ``boxes`` (ratios) are the objects that make the foreground."""
    rgb = _resized(image, QUALITY_SIDE)
    luma = rgb.astype(np.float32) @ _LUMA
    fg = _box_mask(luma.shape, boxes)
    if fg.all():  # the objects fill the picture: no background to tell apart
        fg = _box_mask(luma.shape, ())
    small = _resized(image, COLOUR_SIDE)
    small_fg = _box_mask(small.shape[:2], boxes)
    if small_fg.all():
        small_fg = _box_mask(small.shape[:2], ())
    pixels = small.reshape(-1, 3)
    return ImageProperties(
        quality=_quality(luma, None, contrast=True),
        dominant_colors=dominant_colors(pixels, max_colors),
        foreground=RegionProperties(_quality(luma, fg, False), dominant_colors(small[small_fg], max_colors)),
        background=RegionProperties(
            _quality(luma, ~fg, False), dominant_colors(small[~small_fg], max_colors)
        ),
    )
