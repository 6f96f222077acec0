"""Hugging Face ``transformers`` vision encoders by model id or local path, run like the bundled ones.

``create_backbone("hf:facebook/dinov2-small")`` reads the image processor's settings into our
:class:`Preprocessing`, exports the encoder's pooled output to ONNX once, and serves it through
ONNX Runtime. ``transformers`` is an optional extra, imported only here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from visionloop.engines.backbones import EXPORT_VERSION, Backbone
from visionloop.engines.onnx_runtime import file_checksum
from visionloop.engines.preprocess import Interpolation, Preprocessing, ResizeMode
from visionloop.engines.registry import HF_PREFIX, BackboneSpec
from visionloop.errors import NotFound, Unavailable

if TYPE_CHECKING:
    import torch

_RESAMPLE: dict[int, Interpolation] = {0: "nearest", 2: "bilinear", 3: "bicubic"}
_HASHED = ("config.json", "preprocessor_config.json", "*.safetensors", "*.safetensors.index.json", "*.bin")


def _transformers() -> ModuleType:
    try:
        return importlib.import_module("transformers")
    except ImportError as exc:
        raise Unavailable("Hugging Face backbones need transformers: pip install 'visionloop[hf]'") from exc


def _size(value: Any, *keys: str) -> int | None:
    for key in keys:
        found = value.get(key) if isinstance(value, dict) else getattr(value, key, None)
        if found:
            return int(found)
    return None


def preprocessing_from_processor(processor: Any) -> Preprocessing:
    """Our Preprocessing equivalent to a transformers image processor's settings."""
    size = getattr(processor, "size", None) or {}
    shortest = _size(size, "shortest_edge")
    side = _size(size, "height", "width")
    mode: ResizeMode = "shorter" if shortest else "squash"
    resize = shortest or side or 224
    crop = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else None
    input_size = (_size(crop, "height", "width") if crop else None) or resize
    scale = float(processor.rescale_factor) if getattr(processor, "do_rescale", True) else 1.0
    if getattr(processor, "do_normalize", True):
        mean = tuple(float(m) / scale for m in processor.image_mean)
        std = tuple(float(s) / scale for s in processor.image_std)
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0 / scale,) * 3
    resample = _RESAMPLE.get(int(getattr(processor, "resample", 3) or 3), "bicubic")
    return Preprocessing(
        input_size=input_size,
        resize_size=resize,
        mean=(mean[0], mean[1], mean[2]),
        std=(std[0], std[1], std[2]),
        resize_mode=mode,
        interpolation=resample,
    )


def _model_dir(transformers: ModuleType, model: str) -> Path:
    if Path(model).is_dir():
        return Path(model)
    try:
        config = transformers.utils.cached_file(model, "config.json")
    except OSError as exc:
        raise NotFound(f"Hugging Face model {model!r} not found: {exc}", name=model) from exc
    return Path(config).parent


def _version(folder: Path) -> str:
    # A hub snapshot folder is named by its commit; a local folder is hashed file by file.
    if folder.parent.name == "snapshots":
        return folder.name[:16]
    digest = hashlib.sha256()
    for pattern in _HASHED:
        for path in sorted(folder.glob(pattern)):
            digest.update(f"{path.name}:{file_checksum(path.resolve())}\n".encode())
    return digest.hexdigest()[:16]


def _encoder(transformers: ModuleType, model: str) -> torch.nn.Module:
    import torch

    class PooledEncoder(torch.nn.Module):
        """A transformers vision model returning its pooled image embedding."""

        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net
            self.image_features = hasattr(net, "get_image_features")

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor]:
            if self.image_features:
                out = self.net.get_image_features(pixel_values=images)
            else:
                out = self.net(pixel_values=images)
            pooled = out if isinstance(out, torch.Tensor) else getattr(out, "pooler_output", None)
            if pooled is None:
                hidden = out.last_hidden_state
                pooled = hidden.mean(1) if hidden.dim() == 3 else hidden.mean((2, 3))
            return (pooled.flatten(1) if pooled.dim() > 2 else pooled,)

    net = transformers.AutoModel.from_pretrained(model)
    return PooledEncoder(net).eval()


def create_hf_backbone(
    model: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    num_threads: int | None = None,
) -> Backbone:
    """A Backbone for a transformers vision encoder given by hub id or local folder.

    The ONNX model is exported on first use (this needs torch) and cached; the embedding size is
    read from it.
    """
    transformers = _transformers()
    folder = _model_dir(transformers, model)
    try:
        processor = transformers.AutoImageProcessor.from_pretrained(model)
    except (OSError, ValueError) as exc:
        raise NotFound(f"no image processor for Hugging Face model {model!r}: {exc}", name=model) from exc
    name = HF_PREFIX + model
    spec = BackboneSpec(
        name=name,
        preprocessing=preprocessing_from_processor(processor),
        embedding_dim=0,
        num_classes=0,
        version=f"{_version(folder)}.x{EXPORT_VERSION}",
    )
    backbone = Backbone(
        spec, lambda: _encoder(transformers, model), cache_dir=cache_dir, num_threads=num_threads
    )
    size = spec.input_size
    embedding, _ = backbone.forward(np.zeros((1, 3, size, size), dtype=np.float32))
    backbone.spec = dataclasses.replace(spec, embedding_dim=int(embedding.shape[1]))
    return backbone
