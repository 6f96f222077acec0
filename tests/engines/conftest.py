from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionloop.core.entities import TaskType
from visionloop.core.ports import TrainingExample, TrainingSpec
from visionloop.engines.backbones import Backbone
from visionloop.engines.registry import create_backbone, list_backbones

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


JpegFactory = Callable[..., bytes]


def make_jpeg(seed: int, size: tuple[int, int] = (320, 240), quality: int = 90) -> bytes:
    """A JPEG with smooth gradients and a few blocks, different for each seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    channels = [(np.sin(x / rng.uniform(5, 40) + rng.uniform(0, 6)) * 0.5 + 0.5) * 255 for _ in range(3)]
    pixels = np.stack(channels, axis=-1)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        pixels[y0 : y0 + 40, x0 : x0 + 60] = rng.integers(0, 256, 3)
    buf = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def synthetic_spec(
    images: dict[str, bytes], n_train: int, hyperparams: dict[str, object], **fields: object
) -> TrainingSpec:
    """A two-label spec on ``images`` (keyed by hash, made with make_jpeg): labels alternate, each image
    its own group, the first ``n_train`` (by hash) TRAIN and the rest TEST; EfficientNet-Lite0, fast."""
    examples = [TrainingExample(h, ("a" if i % 2 else "b",), f"g{i}") for i, h in enumerate(sorted(images))]
    spec = TrainingSpec(
        project="p",
        version="v1",
        version_arn="arn",
        task=TaskType.CLASSIFICATION,
        labels=("a", "b"),
        train=tuple(examples[:n_train]),
        test=tuple(examples[n_train:]),
        backbone="efficientnet-lite0",
        mode="fast",
        seed=0,
        max_seconds=None,
        hyperparams=hyperparams,
    )
    return dataclasses.replace(spec, **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX cache for the session: each bundled backbone is exported once."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session", params=list_backbones())
def backbone(request: pytest.FixtureRequest, onnx_cache: Path) -> Backbone:
    """Every registered backbone, exported and warmed up."""
    created = create_backbone(request.param, cache_dir=onnx_cache)
    created.warm_up()
    return created


@pytest.fixture(scope="session")
def lite0(onnx_cache: Path) -> Backbone:
    created = create_backbone("efficientnet-lite0", cache_dir=onnx_cache)
    created.warm_up()
    return created


@pytest.fixture(scope="session")
def jpegs() -> list[bytes]:
    return [make_jpeg(seed) for seed in range(5)]


@pytest.fixture(name="make_jpeg")
def make_jpeg_fixture() -> JpegFactory:
    """``make_jpeg(seed, size=(320, 240), quality=90)`` → JPEG bytes."""
    return make_jpeg


@pytest.fixture
def grocery_dir() -> Path:
    """../shared/datasets/grocery-produce, or a skip saying it is absent."""
    path = DATASETS / "grocery-produce"
    if not path.is_dir():
        pytest.skip(f"{path} is absent: the shared datasets are not on this machine")
    return path
