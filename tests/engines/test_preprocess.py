from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from visionloop.engines.backbones import Backbone
from visionloop.engines.preprocess import (
    Preprocessing,
    decode_image,
    image_size,
    normalised_levels,
    preprocess_batch,
    preprocess_image,
    resize_and_crop,
    to_array,
    to_codes,
)
from visionloop.engines.recipe import VIEWS, view_backbone
from visionloop.errors import InvalidImage

LITE = Preprocessing(input_size=224, resize_size=256, mean=(127.0,) * 3, std=(128.0,) * 3)


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def _solid(rgb: tuple[int, int, int], size: tuple[int, int] = (300, 200)) -> Image.Image:
    return Image.new("RGB", size, rgb)


def test_output_is_normalised_float32_chw() -> None:
    out = preprocess_image(_encode(_solid((255, 127, 0)), "PNG"), LITE)
    assert out.shape == (3, 224, 224) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], 1.0)
    np.testing.assert_allclose(out[1], 0.0)
    np.testing.assert_allclose(out[2], -127 / 128)


def test_png_with_alpha_is_flattened_on_white() -> None:
    image = Image.new("RGBA", (240, 240), (0, 0, 0, 0))  # fully transparent black …
    image.paste((200, 10, 10, 255), (0, 0, 240, 120))  # … with an opaque red top half
    out = preprocess_image(_encode(image, "PNG"), LITE)
    assert out.shape == (3, 224, 224)
    top, bottom = out[:, 20, 112] * 128 + 127, out[:, 200, 112] * 128 + 127
    np.testing.assert_allclose(top, (200, 10, 10), atol=1)
    np.testing.assert_allclose(bottom, (255, 255, 255), atol=1)


def test_palette_png_with_transparency_is_flattened_on_white() -> None:
    image = Image.new("P", (64, 64), 0)
    image.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    image.paste(1, (0, 0, 64, 32))
    image.info["transparency"] = 0
    rgb = decode_image(_encode(image, "PNG", transparency=0))
    assert rgb.mode == "RGB"
    assert rgb.getpixel((10, 10)) == (0, 200, 0) and rgb.getpixel((10, 50)) == (255, 255, 255)


def test_greyscale_jpeg_becomes_three_equal_channels() -> None:
    grey = Image.linear_gradient("L").resize((320, 240))
    out = preprocess_image(_encode(grey, "JPEG", quality=95), LITE)
    assert out.shape == (3, 224, 224)
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[1], out[2])
    assert out.std() > 0.1


def test_exif_orientation_is_applied() -> None:
    landscape = Image.new("RGB", (400, 200), (220, 20, 20))
    landscape.paste((20, 20, 220), (200, 0, 400, 200))  # red left half, blue right half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = _encode(landscape, "JPEG", quality=95, exif=exif.tobytes())

    upright = decode_image(data)
    assert upright.size == (200, 400)  # portrait once rotated
    top, bottom = upright.getpixel((100, 50)), upright.getpixel((100, 350))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 180 and top[2] < 60  # the left (red) half is now on top
    assert bottom[2] > 180 and bottom[0] < 60


def test_flip_mirrors_left_and_right() -> None:
    image = _solid((0, 0, 0), (300, 300))
    image.paste((255, 255, 255), (0, 0, 150, 300))
    data = _encode(image, "PNG")
    plain, flipped = preprocess_image(data, LITE), preprocess_image(data, LITE, flip=True)
    np.testing.assert_array_equal(plain[:, :, ::-1], flipped)


def test_short_side_is_resized_then_centre_cropped() -> None:
    # A wide image whose outer thirds are black: after resizing the short side to 256 and
    # cropping the centre 224, only the white middle third remains.
    image = _solid((0, 0, 0), (900, 300))
    image.paste((255, 255, 255), (300, 0, 600, 300))
    out = preprocess_image(_encode(image, "PNG"), LITE)
    np.testing.assert_allclose(out[:, :, 5:-5], 1.0, atol=0.02)


def test_squash_mode_keeps_the_whole_frame() -> None:
    squash = Preprocessing(
        input_size=32, resize_size=32, mean=(0.0,) * 3, std=(1.0,) * 3, resize_mode="squash"
    )
    image = _solid((0, 0, 0), (900, 300))
    image.paste((255, 255, 255), (0, 0, 90, 300))  # a white band on the far left
    out = preprocess_image(_encode(image, "PNG"), squash)
    assert out[0, 16, 0] > 250 and out[0, 16, 31] < 5


def test_large_jpeg_decoded_at_reduced_scale_matches_full_decode(make_jpeg: Callable[..., bytes]) -> None:
    data = make_jpeg(7, size=(2048, 1536))
    fast = preprocess_image(data, LITE)
    full = _full_decode_reference(data)
    assert np.abs(fast - full).mean() < 0.01  # DCT-domain downscaling differs only slightly


@pytest.mark.parametrize("size", [(348, 348), (348, 464), (640, 480), (1600, 900)])
def test_crop_window_resize_equals_resize_then_crop(size: tuple[int, int]) -> None:
    # PNG input, so no reduced-scale decoding: the result must match the reference to one level.
    rng = np.random.default_rng(size[0])
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    data = _encode(Image.fromarray(pixels), "PNG")
    np.testing.assert_allclose(preprocess_image(data, LITE), _full_decode_reference(data), atol=1.01 / 128)


def _full_decode_reference(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    scale = 256 / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
    left, top = round((image.width - 224) / 2), round((image.height - 224) / 2)  # as torchvision
    crop = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32)
    return ((crop - 127) / 128).transpose(2, 0, 1)


def test_parallel_batch_equals_one_by_one(make_jpeg: Callable[..., bytes]) -> None:
    images = [make_jpeg(seed) for seed in range(12)]
    with ThreadPoolExecutor(4) as pool:
        batch = preprocess_batch(images, LITE, executor=pool)
    assert batch.shape == (12, 3, 224, 224) and batch.dtype == np.float32
    for i, data in enumerate(images):
        np.testing.assert_array_equal(batch[i], preprocess_image(data, LITE))
    assert preprocess_batch([], LITE).shape == (0, 3, 224, 224)


@pytest.mark.parametrize("data", [b"", b"not an image", b"\xff\xd8\xff\xe0" + b"\0" * 64])
def test_unreadable_bytes_raise_invalid_image(data: bytes) -> None:
    with pytest.raises(InvalidImage):
        preprocess_image(data, LITE)


def test_a_bad_image_in_a_batch_names_its_index(make_jpeg: Callable[..., bytes]) -> None:
    images = [make_jpeg(1), make_jpeg(2), b"garbage", make_jpeg(3)]
    with pytest.raises(InvalidImage) as info:
        preprocess_batch(images, LITE)
    assert info.value.details["index"] == 2 and "image 2" in str(info.value)


def test_truncated_jpeg_raises_invalid_image(make_jpeg: Callable[..., bytes]) -> None:
    data = make_jpeg(4)
    with pytest.raises(InvalidImage):
        preprocess_image(data[: len(data) // 2], LITE)


def test_preprocessing_id_names_every_setting() -> None:
    other = Preprocessing(
        input_size=224, resize_size=256, mean=(127.0,) * 3, std=(128.0,) * 3, interpolation="bilinear"
    )
    assert LITE.id != other.id
    assert "224" in LITE.id and "256" in LITE.id and "bicubic" in LITE.id


# --- tiles (Preprocessing.region) ------------------------------------------------------------------------

QUADRANTS = {"tl": (230, 30, 30), "tr": (30, 200, 40), "bl": (40, 50, 220), "br": (240, 220, 20)}


def _quadrants(size: tuple[int, int]) -> Image.Image:
    w, h = size
    image = Image.new("RGB", size)
    image.paste(QUADRANTS["tl"], (0, 0, w // 2, h // 2))
    image.paste(QUADRANTS["tr"], (w // 2, 0, w, h // 2))
    image.paste(QUADRANTS["bl"], (0, h // 2, w // 2, h))
    image.paste(QUADRANTS["br"], (w // 2, h // 2, w, h))
    return image


def _tile(region: tuple[float, float, float, float] | None) -> Preprocessing:
    return dataclasses.replace(LITE, region=region)


@pytest.mark.parametrize("size", [(400, 400), (600, 400), (400, 600)])
@pytest.mark.parametrize("flip", [False, True])
def test_a_tile_view_shows_exactly_its_quarter(size: tuple[int, int], flip: bool) -> None:
    data = _encode(_quadrants(size), "PNG")
    for quarter, colour in QUADRANTS.items():
        out = preprocess_image(data, _tile(VIEWS[f"tile-{quarter}"].region), flip=flip)
        pixels = out * 128 + 127  # back to 0–255
        np.testing.assert_allclose(pixels.mean((1, 2)), colour, atol=1.0)
        np.testing.assert_allclose(pixels[:, 4:-4, 4:-4].min((1, 2)), colour, atol=1.0)
        np.testing.assert_allclose(pixels[:, 4:-4, 4:-4].max((1, 2)), colour, atol=1.0)
    centre = preprocess_image(data, _tile(VIEWS["tile-centre"].region)) * 128 + 127
    np.testing.assert_allclose(centre.mean((1, 2)), np.mean(list(QUADRANTS.values()), axis=0), atol=2.0)
    np.testing.assert_allclose(centre[:, 50, 50], QUADRANTS["tl"], atol=1.0)  # the quarters' inner corners
    np.testing.assert_allclose(centre[:, 170, 170], QUADRANTS["br"], atol=1.0)


def test_the_region_is_part_of_the_id() -> None:
    ids = {_tile(view.region).id for view in VIEWS.values()}
    assert len(ids) == len({view.region for view in VIEWS.values()}) == 6
    assert "-r" not in LITE.id  # whole-image ids are unchanged: their cached embeddings stay valid
    assert _tile((0.0, 0.0, 0.5, 0.5)).id != _tile((0.5, 0.0, 1.0, 0.5)).id
    assert _tile((0.0, 0.0, 0.5, 0.5)).id == _tile((0.0, 0.0, 0.5, 0.5)).id


def test_draft_size_leaves_a_tile_enough_pixels() -> None:
    assert LITE.draft_size == 256
    for view in VIEWS.values():
        if view.region is None:
            continue
        p = _tile(view.region)
        width = min(view.region[2] - view.region[0], view.region[3] - view.region[1])
        assert p.draft_size >= p.input_size / width
        assert p.draft_size >= p.resize_size / width - 0.5


def test_a_jpeg_tile_is_decoded_large_enough(make_jpeg: Callable[..., bytes]) -> None:
    data = make_jpeg(11, size=(2048, 2048))
    p = _tile(VIEWS["tile-tl"].region)
    decoded = decode_image(data, draft_size=p.draft_size)
    assert 2048 > min(decoded.size) >= p.draft_size  # reduced, but not below what the tile needs
    fast = preprocess_image(data, p)
    full = to_array(resize_and_crop(decode_image(data), p), p)  # no reduced-scale decoding at all
    too_small = to_array(resize_and_crop(decode_image(data, draft_size=LITE.draft_size), p), p)
    error, blurred = np.abs(fast - full).mean(), np.abs(too_small - full).mean()
    assert error < 0.01
    assert blurred > 2 * error  # the whole image's draft size would have upscaled the tile


@pytest.mark.parametrize("per_channel", [False, True])
def test_codes_are_the_table_of_each_pixel_level(per_channel: bool) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    table = rng.integers(0, 256, (3, 256) if per_channel else (256,), dtype=np.uint8)
    out = np.empty((224, 224, 3), dtype=np.uint8)
    to_codes(Image.fromarray(pixels), table, out)
    expected = np.stack([(table[c] if per_channel else table)[pixels[..., c]] for c in range(3)], axis=-1)
    np.testing.assert_array_equal(out, expected)


def test_normalised_levels_are_what_to_array_gives_each_level() -> None:
    p = dataclasses.replace(LITE, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
    levels = (np.arange(224 * 224) % 256).astype(np.uint8).reshape(224, 224)  # every level, each channel
    image = Image.fromarray(np.stack([levels, levels[::-1], levels.T], axis=-1))
    chw = np.stack([levels, levels[::-1], levels.T])
    expected = np.stack([normalised_levels(p)[c][chw[c]] for c in range(3)])
    np.testing.assert_array_equal(to_array(image, p), expected)


def test_image_size_reads_the_header_only() -> None:
    assert image_size(_encode(_solid((1, 2, 3), (640, 480)), "JPEG")) == (640, 480)
    assert image_size(_encode(_solid((1, 2, 3), (31, 70)), "PNG")) == (31, 70)
    assert image_size(b"not an image") is None


def test_whole_views_see_the_ends_of_an_oblong_image_centred_views_do_not(lite0: Backbone) -> None:
    image = _solid((0, 0, 0), (900, 300))
    image.paste((255, 255, 255), (0, 0, 90, 300))  # a white band on the far left
    data = _encode(image, "PNG")

    def pixels(view: str) -> np.ndarray:
        p = view_backbone("efficientnet-lite0", view, base=lite0).spec.preprocessing
        return preprocess_image(data, p, flip=VIEWS[view].flip)

    assert pixels("full").max() < -0.9 and pixels("tile-tl").max() < -0.9  # the centre is all black
    assert pixels("whole")[:, :, :10].min() > 0.9 and pixels("whole")[:, :, -10:].max() < -0.9
    assert pixels("whole-flip")[:, :, -10:].min() > 0.9
    assert pixels("whole-tl")[:, :, :30].min() > 0.9 and pixels("whole-tr").max() < -0.9
    # a square image: whole and centred views are the same pixels (and the same embeddings)
    square = _encode(
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 300, 3), np.uint8)), "PNG"
    )
    for centred, whole in (
        ("full", "whole"),
        ("tile-br", "whole-br"),
        ("tile-centre-flip", "whole-centre-flip"),
    ):
        a = view_backbone("efficientnet-lite0", centred, base=lite0).spec.preprocessing
        b = view_backbone("efficientnet-lite0", whole, base=lite0).spec.preprocessing
        assert a.id != b.id  # cached apart all the same
        np.testing.assert_array_equal(
            preprocess_image(square, a, flip=VIEWS[centred].flip),
            preprocess_image(square, b, flip=VIEWS[whole].flip),
        )
