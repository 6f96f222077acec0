"""Large images (over imaging.LARGE_PIXELS, which only the analysis operations accept) decode reduced, in
bounded memory: measured in a fresh process on a real 9000x9000 PNG, and checked pixel for pixel against
decoding the whole image and reducing it."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
from PIL import Image

from visionloop.core.analyzing import ANALYSIS_LIMITS
from visionloop.core.images import check_image
from visionloop.engines.preprocess import decode_image
from visionloop.errors import InvalidImage
from visionloop.imaging import LARGE_PIXELS, PillowInspector, decode_reduced

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def big_png(width: int, height: int, colour: int = 2, exif: bytes = b"", trns: bytes = b"") -> bytes:
    """A real 8-bit PNG written row by row (never held whole), every row with another of the five
    filters, so that decoding in strips must carry each strip's last row over to the next."""
    stride = width * CHANNELS[colour]
    deflate = zlib.compressobj(6)
    data = bytearray()
    for y in range(height):
        seed = bytes((x * 7 + y * 3) % 256 for x in range(64))
        row = (seed * (stride // 64 + 1))[:stride]
        data += deflate.compress(bytes([y % 5]) + row)
    data += deflate.flush()
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))
    if colour == 3:
        out += chunk(b"PLTE", bytes(range(256)) * 3)
    if trns:
        out += chunk(b"tRNS", trns)
    if exif:
        out += chunk(b"eXIf", exif)
    for i in range(0, len(data), 65536):
        out += chunk(b"IDAT", bytes(data[i : i + 65536]))
    return out + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("size", "colour", "trns"),
    [
        ((4200, 4100), 2, b""),  # RGB, 3 strips
        ((2000, 9000), 3, bytes(range(0, 256, 3))),  # palette with transparency
        ((4300, 4000), 0, b""),  # grey
        ((3000, 6000), 6, b""),  # RGBA
    ],
)
def test_strips_equal_the_whole_image_reduced(size: tuple[int, int], colour: int, trns: bytes) -> None:
    assert size[0] * size[1] > LARGE_PIXELS
    data = big_png(*size, colour=colour, trns=trns)
    with Image.open(io.BytesIO(data)) as img:
        reduced = decode_reduced(img, data, 320)
    with Image.open(io.BytesIO(data)) as whole:
        whole.load()
        full = whole.convert("RGBA") if "transparency" in whole.info or whole.mode == "P" else whole
        factor = min(size) // 320
        expected = full.reduce(factor)
    if whole.mode == "P" and not trns:
        expected = expected.convert("RGB")
    assert reduced.size == expected.size == (-(-size[0] // factor), -(-size[1] // factor))
    assert reduced.mode == expected.mode and reduced.tobytes() == expected.tobytes()


def test_a_large_png_keeps_its_orientation_and_truncation_is_caught() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: width and height swap
    data = big_png(6000, 3000, exif=exif.tobytes()[6:])
    info = check_image(data, PillowInspector(), ANALYSIS_LIMITS)
    assert (info.width, info.height) == (3000, 6000) and info.phash is not None
    assert decode_image(data, draft_size=320).size == (334, 667)  # reduced by 3000 // 320 = 9
    assert decode_image(data).size == (1500, 3000)  # at most LARGE_PIXELS pixels
    cut = data[: len(data) // 2]
    for decode in (lambda: check_image(cut, PillowInspector(), ANALYSIS_LIMITS), lambda: decode_image(cut)):
        with pytest.raises(InvalidImage, match="truncated"):
            decode()


def test_a_9000_px_png_costs_little_memory(tmp_path: Path) -> None:
    """Checking and decoding a 9000x9000 PNG (about 600 KB) for analysis took 388 MB (the check) and
    311 MB (the decode) more than the process had; now both stay far below 200 MB, and the memory is
    given back."""
    path = tmp_path / "big.png"
    path.write_bytes(big_png(9000, 9000))
    script = textwrap.dedent(
        f"""
        import os, resource
        from visionloop.core.analyzing import ANALYSIS_LIMITS
        from visionloop.core.images import check_image
        from visionloop.engines.preprocess import decode_image
        from visionloop.imaging import PillowInspector
        def rss():
            with open(f"/proc/{{os.getpid()}}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20
        data = open({str(path)!r}, "rb").read()
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        check_image(data, PillowInspector(), ANALYSIS_LIMITS)
        decode_image(data, draft_size=320)
        decode_image(data)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(peak - base, rss() - base)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    grew, kept = map(int, out.stdout.split())
    assert grew < 200, f"decoding took {grew} MB"
    assert kept < 60, f"{kept} MB stayed in use"
