from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from visionloop.engines import registry
from visionloop.engines.backbones import Backbone, imagenet_class_names
from visionloop.engines.onnx_runtime import cached_onnx, default_cache_dir, is_valid
from visionloop.engines.preprocess import Preprocessing
from visionloop.engines.quantized import QuantizedBackbone
from visionloop.engines.registry import BackboneSpec, create_backbone, list_backbones, register_backbone
from visionloop.engines.tflite import TfliteBackbone
from visionloop.errors import InvalidImage, NotFound

REPO = Path(__file__).resolve().parents[2]


# --- registry -------------------------------------------------------------------------------


def test_bundled_backbones_are_listed_and_filtered() -> None:
    assert {"efficientnet-lite0", "efficientnet-lite2", "efficientnet-lite3-int8"} <= set(list_backbones())
    assert list_backbones("*lite2") == ["efficientnet-lite2"]
    assert list_backbones("no-such-*") == []
    assert registry.DEFAULT_BACKBONE in list_backbones()


def test_unknown_backbone_raises_not_found_listing_known_names() -> None:
    with pytest.raises(NotFound) as info:
        create_backbone("resnet-9000")
    message = str(info.value)
    assert "resnet-9000" in message
    assert "efficientnet-lite0" in message and "efficientnet-lite2" in message
    assert "hf:" in message


def test_register_backbone_names_by_function_and_passes_kwargs(tmp_path: Path) -> None:
    lite0 = create_backbone("efficientnet-lite0", cache_dir=tmp_path)

    @register_backbone
    def test_alias_backbone(**kwargs: object) -> Backbone:
        assert kwargs == {"cache_dir": tmp_path}
        return lite0

    try:
        assert "test-alias-backbone" in list_backbones()
        assert create_backbone("test-alias-backbone", cache_dir=tmp_path) is lite0
    finally:
        registry._FACTORIES.pop("test-alias-backbone")


# --- the contract every registered backbone meets --------------------------------------------


def test_spec_declares_pixels_outputs_and_version(backbone: Backbone) -> None:
    spec = backbone.spec
    assert spec.name in list_backbones()
    assert spec.input_size in (224, 260, 280)
    assert spec.preprocessing.resize_size == round(spec.input_size * 256 / 224)
    assert spec.preprocessing.interpolation == "bicubic"
    if isinstance(backbone, TfliteBackbone):  # uint8 input: raw pixels, quantised inside the model
        assert spec.preprocessing.mean == (0.0,) * 3 and spec.preprocessing.std == (1.0,) * 3
    else:
        assert spec.preprocessing.mean == (127.0,) * 3 and spec.preprocessing.std == (128.0,) * 3
    assert spec.embedding_dim == 1280 and spec.num_classes == 1000
    assert len(spec.version) > 8 and len(spec.fingerprint) == 20
    assert len(backbone.class_names) == 1000


def test_embed_shape_dtype_and_determinism(backbone: Backbone, jpegs: list[bytes]) -> None:
    first = backbone.embed(jpegs, batch_size=2)
    again = backbone.embed(jpegs, batch_size=2)
    assert first.shape == (len(jpegs), 1280) and first.dtype == np.float32
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, again)
    assert backbone.embed([]).shape == (0, 1280)


def test_batched_and_single_embeddings_agree(backbone: Backbone, jpegs: list[bytes]) -> None:
    batched = backbone.embed(jpegs, batch_size=32)
    singles = np.concatenate([backbone.embed([image]) for image in jpegs])
    np.testing.assert_allclose(batched, singles, atol=1e-5, rtol=0)


def test_a_view_runs_on_the_same_network(backbone: Backbone, jpegs: list[bytes]) -> None:
    p = backbone.spec.preprocessing
    view = backbone.with_preprocessing(dataclasses.replace(p, resize_size=round(p.resize_size * 1.5)))
    assert type(view) is type(backbone) and view.num_threads == backbone.num_threads
    assert view.spec.fingerprint != backbone.spec.fingerprint
    assert view.spec == dataclasses.replace(backbone.spec, preprocessing=view.spec.preprocessing)
    zoomed = view.embed(jpegs[:2])
    assert zoomed.shape == (2, 1280) and not np.array_equal(zoomed, backbone.embed(jpegs[:2]))
    same = backbone.with_preprocessing(p).embed(jpegs[:2])
    np.testing.assert_allclose(same, backbone.embed(jpegs[:2]), atol=1e-5, rtol=0)
    # views share the backbone's runtime and decoding pool (seven views, one session in memory)
    assert view._runtime is backbone and view.with_preprocessing(p)._runtime is backbone
    assert view.decode_pool() is backbone.decode_pool()
    if backbone.spec.name != "efficientnet-lite3-int8":
        assert view.session is backbone.session


def test_a_bad_image_is_reported_by_its_position(lite0: Backbone, make_jpeg: Callable[..., bytes]) -> None:
    images = [make_jpeg(seed) for seed in range(5)] + [b"not an image", make_jpeg(9)]
    with pytest.raises(InvalidImage) as info:
        lite0.embed(images, batch_size=2)
    assert info.value.details["index"] == 5 and "image 5" in str(info.value)


def test_onnx_agrees_with_torch(backbone: Backbone, jpegs: list[bytes]) -> None:
    if isinstance(backbone, TfliteBackbone):
        pytest.skip("a TFLite backbone has no torch module; test_tflite checks it against the .tflite graph")
    if isinstance(backbone, QuantizedBackbone):
        pytest.skip("an INT8 graph differs from its torch module; test_quantized compares it with fp32")
    batch = backbone.preprocess(jpegs[:1])
    embedding, logits = backbone.forward(batch)
    with torch.no_grad():
        t_embedding, t_logits = backbone.torch_module()(torch.from_numpy(batch))
    np.testing.assert_allclose(embedding, t_embedding.numpy(), atol=1e-4, rtol=0)
    assert logits is not None
    np.testing.assert_allclose(logits, t_logits.numpy(), atol=1e-4, rtol=0)


def test_imagenet_head_recognises_a_banana(backbone: Backbone, grocery_dir: Path) -> None:
    photos = sorted((grocery_dir / "Banana").glob("*.jpg"))[:3]
    assert photos, "no banana photos"
    for photo, top5 in zip(photos, backbone.classify([p.read_bytes() for p in photos]), strict=True):
        names = [name for name, _ in top5]
        assert "banana" in names, (photo.name, top5)
        assert top5[0][1] >= top5[-1][1]


def test_imagenet_class_names_are_in_index_order() -> None:
    names = imagenet_class_names()
    assert (names[0], names[1], names[954], names[999]) == ("tench", "goldfish", "banana", "toilet paper")


# --- the ONNX cache --------------------------------------------------------------------------


def _tiny_torch() -> torch.nn.Module:
    torch.manual_seed(0)

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor]:
            return (self.conv(images).relu().mean((2, 3)),)

    return Tiny().eval()


def _tiny_backbone(cache_dir: Path) -> Backbone:
    p = Preprocessing(input_size=32, resize_size=36, mean=(127.0,) * 3, std=(128.0,) * 3)
    spec = BackboneSpec(name="tiny-test", preprocessing=p, embedding_dim=8, num_classes=0, version="t1")
    return Backbone(spec, _tiny_torch, cache_dir=cache_dir, num_threads=1)


def test_corrupted_onnx_model_is_exported_again(tmp_path: Path, make_jpeg: Callable[..., bytes]) -> None:
    path = _tiny_backbone(tmp_path).onnx_path()
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # a partial write
    assert not is_valid(path)

    fresh = _tiny_backbone(tmp_path)
    assert fresh.onnx_path() == path and is_valid(path)
    assert path.read_bytes() == good
    assert fresh.embed([make_jpeg(1)]).shape == (1, 8)
    assert not list(tmp_path.glob(".*.tmp")), "temp files left behind"


@pytest.mark.parametrize("damage", ["truncate", "flip-a-byte", "drop-sidecar", "empty-sidecar"])
def test_onnx_cache_detects_damage(tmp_path: Path, damage: str) -> None:
    calls: list[int] = []

    def export() -> bytes:
        calls.append(1)
        return b"model bytes " * 100

    path = cached_onnx(tmp_path, "m/1", export)
    sidecar = path.with_name(path.name + ".sha256")
    good = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(good[:10])
    elif damage == "flip-a-byte":
        path.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
    elif damage == "drop-sidecar":
        sidecar.unlink()
    else:
        sidecar.write_text("")
    assert cached_onnx(tmp_path, "m/1", export) == path
    assert path.read_bytes() == good and is_valid(path)
    assert calls == [1, 1]


def test_cache_dir_defaults_to_the_environment_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VISIONLOOP_CACHE_DIR", str(tmp_path))
    assert create_backbone("efficientnet-lite0").cache_dir == tmp_path / "onnx"
    monkeypatch.delenv("VISIONLOOP_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "visionloop" / "onnx"


def test_valid_onnx_cache_is_not_exported_again(tmp_path: Path) -> None:
    calls: list[int] = []

    def export() -> bytes:
        calls.append(1)
        return b"model bytes"

    first = cached_onnx(tmp_path, "m/1", export)
    second = cached_onnx(tmp_path, "m/1", export)
    assert first == second and first.read_bytes() == b"model bytes"
    assert calls == [1]
    assert first.parent == tmp_path and "/" not in first.name


def test_serving_from_the_cache_never_imports_torch(
    lite0: Backbone, tmp_path: Path, make_jpeg: Callable[..., bytes]
) -> None:
    image = tmp_path / "image.jpg"
    image.write_bytes(make_jpeg(3))
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from visionloop.engines.registry import create_backbone
        backbone = create_backbone("efficientnet-lite0", cache_dir={str(lite0.cache_dir)!r})
        print(backbone.embed([Path({str(image)!r}).read_bytes()]).shape)
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "(1, 1280)" in result.stdout
