"""Image properties on pictures whose answer is known: brightness, contrast, sharpness, colours,
foreground and background."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from visionloop.analysis.properties import dominant_colors, image_properties, nearest_css, simplified_color
from visionloop.core.records.analysis import BoundingBox


def _checker(size: int = 256, cell: int = 8) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size]
    grid = (((x // cell) + (y // cell)) % 2 * 255).astype(np.uint8)
    return Image.fromarray(np.stack([grid] * 3, axis=-1))


def test_brightness_and_contrast() -> None:
    dark = image_properties(Image.new("RGB", (120, 90), (20, 20, 20))).quality
    light = image_properties(Image.new("RGB", (120, 90), (235, 235, 235))).quality
    assert dark.brightness < 10 < 90 < light.brightness
    assert dark.contrast == 0 and light.contrast == 0
    assert image_properties(_checker()).quality.contrast == pytest.approx(100, abs=1)


def test_sharpness_drops_with_blur() -> None:
    sharp = image_properties(_checker()).quality.sharpness
    blurred = image_properties(_checker().filter(ImageFilter.GaussianBlur(6))).quality.sharpness
    assert sharp > 90 and blurred < 30


def test_dominant_colours_are_named_and_sum_to_the_picture() -> None:
    half = np.zeros((100, 200, 3), dtype=np.uint8)
    half[:, :150] = (220, 20, 30)
    half[:, 150:] = (20, 40, 200)
    colours = dominant_colors(half.reshape(-1, 3))
    assert [c.simplified_color for c in colours] == ["red", "blue"]
    assert colours[0].pixel_percent == pytest.approx(75, abs=1)
    assert colours[0].hex_code == f"#{colours[0].red:02x}{colours[0].green:02x}{colours[0].blue:02x}"
    assert colours[0].css_color == "crimson"
    assert dominant_colors(half.reshape(-1, 3), 1) == colours[:1]
    assert dominant_colors(half.reshape(-1, 3), 0) == ()


def test_colour_names() -> None:
    assert nearest_css((255, 0, 0)) == "red" and nearest_css((0, 0, 0)) == "black"
    assert nearest_css((128, 128, 128)) == "gray"
    named = {
        (0, 0, 0): "black", (255, 255, 255): "white", (128, 128, 128): "grey", (230, 30, 30): "red",
        (255, 160, 0): "orange", (240, 230, 30): "yellow", (30, 200, 40): "green", (0, 128, 128): "teal",
        (20, 40, 220): "blue", (130, 30, 200): "purple", (255, 105, 180): "pink", (120, 70, 20): "brown",
    }  # fmt: skip
    for rgb, name in named.items():
        assert simplified_color(rgb) == name, rgb


def test_foreground_is_the_objects_or_the_centre() -> None:
    picture = np.full((200, 200, 3), (30, 30, 200), dtype=np.uint8)
    picture[50:150, 50:150] = (240, 240, 20)  # a yellow square in the middle of blue
    image = Image.fromarray(picture)
    centre = image_properties(image)
    assert centre.foreground and centre.background
    assert centre.foreground.dominant_colors[0].simplified_color == "yellow"
    assert centre.background.dominant_colors[0].simplified_color == "blue"
    assert centre.foreground.quality.brightness > centre.background.quality.brightness
    assert centre.foreground.quality.contrast is None  # contrast is for the whole image only
    boxed = image_properties(image, [BoundingBox(0.25, 0.25, 0.5, 0.5)])
    assert boxed.foreground and boxed.foreground.dominant_colors[0].pixel_percent > 85
