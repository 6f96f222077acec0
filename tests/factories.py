"""Plain functions that build test data: images, projects, manifests."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

from visionloop.core.entities import Box, Project, TaskType
from visionloop.core.projects import create_project
from visionloop.core.services import Services
from visionloop.settings import Settings, load_settings
from visionloop.storage.s3 import S3Options


def image_bytes(
    width: int = 96, height: int = 80, color: tuple[int, int, int] = (200, 30, 30), fmt: str = "JPEG"
) -> bytes:
    """A real image; different colours give different content hashes."""
    img = Image.new("RGB", (width, height), color)
    for x in range(0, width, 7):  # some structure so JPEG encoding is not trivial
        img.putpixel((x, (x * 3) % height), (x % 256, 255 - x % 256, 128))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def photo(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A generated 'photo': blurred random shapes, different for every seed, so that unlike
    image_bytes' flat colours two seeds also differ to a perceptual hash."""
    rng = random.Random(seed)
    img = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(80):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        w, h = rng.randrange(10, 60), rng.randrange(10, 60)
        draw.ellipse((x, y, x + w, y + h), fill=tuple(rng.randrange(256) for _ in range(3)))
    return img.filter(ImageFilter.GaussianBlur(1))


def photo_bytes(seed: int, size: tuple[int, int] = (320, 240), quality: int = 90) -> bytes:
    buf = io.BytesIO()
    photo(seed, size).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def unique_colour(i: int) -> tuple[int, int, int]:
    return (i % 256, (i // 256) % 256, (i * 37) % 256)


def make_project(svc: Services, name: str = "demo", task: TaskType = TaskType.CLASSIFICATION) -> Project:
    return create_project(svc, name, task)


def add_labelled_images(svc: Services, project: str, counts: dict[str, int]) -> None:
    """``counts[label]`` distinct plain images with that label in the project's TRAIN dataset."""
    from visionloop.core.datasets import add_image

    n = 0
    for label, count in counts.items():
        for _ in range(count):
            n += 1
            add_image(svc, project, image_bytes(color=unique_colour(n * 40)), f"{label}-{n}.jpg", [label])


def add_entries_without_phash(svc: Services, project: Project, n: int) -> None:
    """``n`` photos in TRAIN stored as entries were before perceptual hashes existed (labels a and b)."""
    from visionloop.core.entities import DatasetType, ImageInfo, NewEntry
    from visionloop.core.images import store_image
    from visionloop.core.projects import ensure_dataset

    train = ensure_dataset(svc, project, DatasetType.TRAIN)
    new = []
    for i in range(n):
        data = photo_bytes(i + 1)
        info = svc.inspector.inspect(data)
        store_image(svc.store, data, info.content_hash)
        old_info = ImageInfo(info.format, info.width, info.height, info.size_bytes, info.content_hash)
        new.append(NewEntry(old_info, f"s3://bkt/{chr(ord('a') + i)}.jpg", ("a" if i % 2 else "b",)))
    svc.repo.add_entries(train.id, new, svc.clock.now())


def write_folder_dataset(root: Path, labels: dict[str, int], size: tuple[int, int] = (96, 80)) -> Path:
    """``root/<label>/<label>_<i>.jpg`` with distinct images; returns root."""
    n = 0
    for label, count in labels.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            n += 1
            (root / label / f"{label}_{i}.jpg").write_bytes(image_bytes(*size, color=unique_colour(n)))
    return root


def classification_line(source_ref: str, label: str, attr: str = "label") -> str:
    meta = {
        "class-name": label,
        "confidence": 1,
        "type": "groundtruth/image-classification",
        "human-annotated": "yes",
        "creation-date": "2024-01-01T00:00:00",
    }
    return json.dumps({"source-ref": source_ref, attr: 0, f"{attr}-metadata": meta})


def detection_line(
    source_ref: str, boxes: list[tuple[str, int, int, int, int]], size: tuple[int, int]
) -> str:
    names = sorted({b[0] for b in boxes})
    ids = {n: i for i, n in enumerate(names)}
    value: dict[str, Any] = {
        "image_size": [{"width": size[0], "height": size[1], "depth": 3}],
        "annotations": [
            {"class_id": ids[n], "left": x, "top": y, "width": w, "height": h} for n, x, y, w, h in boxes
        ],
    }
    meta = {
        "objects": [{"confidence": 1} for _ in boxes],
        "class-map": {str(i): n for n, i in ids.items()},
        "type": "groundtruth/object-detection",
        "human-annotated": "yes",
        "creation-date": "2024-01-01T00:00:00",
    }
    return json.dumps({"source-ref": source_ref, "bounding-box": value, "bounding-box-metadata": meta})


SHAPES = ("disc", "tile")


def shapes_scene(seed: int, size: int = 224) -> tuple[bytes, tuple[Box, ...]]:
    """A JPEG of 1-2 shapes (red discs, blue tiles, 40-90 px at 224 px) on a striped, noisy background,
    with their boxes in ratios: a detection task a detector learns in seconds."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    stripes = np.sin(x / rng.uniform(4, 20) + y / rng.uniform(6, 30))[..., None] * 30
    pixels = rng.integers(70, 170, 3) + stripes + rng.normal(0, 12, (size, size, 3))
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    draw, boxes = ImageDraw.Draw(image), []
    for _ in range(int(rng.integers(1, 3))):
        side = int(rng.integers(40, 90) * size / 224)
        left, top = (int(v) for v in rng.integers(0, size - side, 2))
        label = SHAPES[int(rng.integers(0, 2))]
        shape = draw.ellipse if label == "disc" else draw.rectangle
        shape(
            [left, top, left + side - 1, top + side - 1],
            fill=(210, 40, 40) if label == "disc" else (40, 40, 210),
        )
        boxes.append(Box(label, left / size, top / size, side / size, side / size))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue(), tuple(boxes)


GREY_SHAPE_COLOURS = {"red": (220, 30, 30), "blue": (30, 40, 220)}


def grey_shape(
    rng: random.Random, label: str, size: tuple[int, int] = (160, 120)
) -> tuple[bytes, tuple[int, int, int, int]]:
    """A grey JPEG with one rectangle of the label's colour (red or blue), and its box in pixels: what
    the colour engine's detector (engines/fake.py) finds."""
    width, height = size
    w, h = rng.randint(30, 60), rng.randint(30, 50)
    x, y = rng.randint(0, width - w), rng.randint(0, height - h)
    image = Image.new("RGB", size, (128, 128, 128))
    ImageDraw.Draw(image).rectangle([x, y, x + w - 1, y + h - 1], fill=GREY_SHAPE_COLOURS[label])
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=95)
    return buf.getvalue(), (x, y, w, h)


def s3_server_settings(data_dir: Path, s3: S3Options) -> Settings:
    """A server's settings with its internal store and every bucket on the S3 server ``s3`` (no workers)."""
    return load_settings(
        {
            "data_dir": str(data_dir),
            "workers": 0,
            "store_url": "s3://visionloop-store/store",
            "buckets_url": "s3://",
            "s3_endpoint_url": s3.endpoint_url,
            "s3_region": s3.region,
            "s3_access_key_id": s3.access_key_id,
            "s3_secret_access_key": s3.secret_access_key,
        },
        environ={},
    )
