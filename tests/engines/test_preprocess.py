from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from visionloop.engines.preprocess import (
    Preprocessing,
    decode_image,
    preprocess_batch,
    preprocess_image,
)
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
