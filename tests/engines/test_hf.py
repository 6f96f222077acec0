"""Hugging Face encoders, tested on tiny randomly initialised models saved to disk: never downloaded."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from visionloop.engines.registry import create_backbone, is_backbone
from visionloop.errors import NotFound

transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed (pip install 'visionloop[hf]')"
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_dinov2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer DINOv2 (hidden size 32, 56 px) and its image processor, saved like a hub checkpoint."""
    folder = tmp_path_factory.mktemp("tiny-dinov2")
    torch.manual_seed(0)
    config = transformers.Dinov2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=56,
        patch_size=14,
    )
    transformers.Dinov2Model(config).save_pretrained(folder)
    processor = transformers.BitImageProcessor(
        size={"shortest_edge": 64},
        crop_size={"height": 56, "width": 56},
        do_center_crop=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        resample=3,
    )
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hf-onnx")


def test_tiny_dinov2_loads_by_path_and_embeds(
    tiny_dinov2: Path, hf_cache: Path, make_jpeg: Callable[..., bytes]
) -> None:
    name = f"hf:{tiny_dinov2}"
    assert is_backbone(name)
    backbone = create_backbone(name, cache_dir=hf_cache)
    spec = backbone.spec
    assert spec.name == name and spec.embedding_dim == 32 and spec.num_classes == 0
    p = spec.preprocessing
    assert (p.input_size, p.resize_size, p.resize_mode, p.interpolation) == (56, 64, "shorter", "bicubic")
    np.testing.assert_allclose(p.mean, (0.485 * 255, 0.456 * 255, 0.406 * 255), rtol=1e-6)
    np.testing.assert_allclose(p.std, (0.229 * 255, 0.224 * 255, 0.225 * 255), rtol=1e-6)

    images = [make_jpeg(seed) for seed in range(3)]
    embeddings = backbone.embed(images, batch_size=2)
    assert embeddings.shape == (3, 32) and embeddings.dtype == np.float32
    singles = np.concatenate([backbone.embed([image]) for image in images])
    np.testing.assert_allclose(embeddings, singles, atol=1e-5, rtol=0)

    batch = backbone.preprocess(images[:1])
    with torch.no_grad():
        (expected,) = backbone.torch_module()(torch.from_numpy(batch))
        pooled = transformers.AutoModel.from_pretrained(tiny_dinov2)(pixel_values=torch.from_numpy(batch))
    np.testing.assert_allclose(backbone.forward(batch)[0], expected.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(expected.numpy(), pooled.pooler_output.numpy(), atol=1e-6, rtol=0)
    assert list(hf_cache.glob("*.onnx")), "the export was not cached"


def test_our_pixels_match_the_hf_image_processor(
    tiny_dinov2: Path, hf_cache: Path, make_jpeg: Callable[..., bytes]
) -> None:
    data = make_jpeg(5, size=(96, 72), quality=100)
    backbone = create_backbone(f"hf:{tiny_dinov2}", cache_dir=hf_cache)
    ours = backbone.preprocess([data])
    processor = transformers.AutoImageProcessor.from_pretrained(tiny_dinov2)
    theirs = np.asarray(processor(images=Image.open(io.BytesIO(data)), return_tensors="np")["pixel_values"])
    assert ours.shape == theirs.shape == (1, 3, 56, 56)
    assert np.abs(ours - theirs).mean() < 0.05  # resampling implementations differ by a few levels


def test_clip_uses_its_projected_image_features(
    tmp_path: Path, hf_cache: Path, make_jpeg: Callable[..., bytes]
) -> None:
    torch.manual_seed(0)
    text = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    vision = dict(text, num_hidden_layers=2, image_size=32, patch_size=8)
    config = transformers.CLIPConfig(
        text_config=dict(text, vocab_size=100, bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=vision,
        projection_dim=16,
    )
    transformers.CLIPModel(config).save_pretrained(tmp_path)
    transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(tmp_path)

    backbone = create_backbone(f"hf:{tmp_path}", cache_dir=hf_cache)
    assert backbone.spec.embedding_dim == 16  # the projection, not the 32-wide hidden state
    images = [make_jpeg(1), make_jpeg(2)]
    batch = backbone.preprocess(images)
    with torch.no_grad():
        model = transformers.AutoModel.from_pretrained(tmp_path)
        features = model.get_image_features(pixel_values=torch.from_numpy(batch))
    # transformers 5 returns a model output whose pooler_output is the projection; 4.x a tensor.
    expected = features if isinstance(features, torch.Tensor) else features.pooler_output
    np.testing.assert_allclose(backbone.embed(images), expected.numpy(), atol=1e-4, rtol=0)


def test_missing_model_folder_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        create_backbone(f"hf:{tmp_path / 'nothing-here'}", cache_dir=tmp_path)


def test_without_transformers_the_error_says_how_to_install() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["transformers"] = None  # as if the package were not installed
        from visionloop.engines.registry import create_backbone
        from visionloop.errors import Unavailable
        try:
            create_backbone("hf:facebook/dinov2-small")
        except Unavailable as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'visionloop[hf]'" in result.stdout
