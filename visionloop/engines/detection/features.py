"""The frozen EfficientNet-Lite0 as a multi-scale feature extractor (strides 8, 16 and 32).

The image is resized to a square of the recipe's input size (ratios of the image stay ratios of the
square, so boxes need no letterbox bookkeeping) and normalised as the classifier's backbone does. The
network is the one ``backbones.efficientnet_lite0`` builds from the weights package; we read the
outputs of the last block of each stride instead of the pooled embedding. It runs through ONNX Runtime
(``onnx_pyramid``: about 4x faster than torch on one thread); torch runs it only to export the graph,
and in ``torch_features``, the reference the graph is checked against.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from visionloop.engines.backbones import efficientnet_lite0
from visionloop.engines.detection.onnx_pyramid import OUTPUT_NAMES, TappedNet, tapped_onnx
from visionloop.engines.onnx_runtime import OnnxSession
from visionloop.engines.preprocess import decode_image

if TYPE_CHECKING:
    import torch

STRIDES = (8, 16, 32)
_MEAN, _STD = 127.0, 128.0  # the Lite models' pixel normalisation (backbones._lite)


def image_array(data: bytes, size: int) -> np.ndarray:
    """Encoded image → float32 CHW array of ``size``×``size`` (squashed, normalised)."""
    image = decode_image(data, draft_size=size).resize((size, size), Image.Resampling.BILINEAR)
    hwc = np.asarray(image, dtype=np.float32)
    return ((hwc - _MEAN) / _STD).transpose(2, 0, 1).copy()


def _block_stride(block: Any) -> int:
    stride = block._block_args.stride
    return int(stride[0] if isinstance(stride, list | tuple) else stride)


class FeaturePyramid:
    """Lite0's feature maps at ``STRIDES``: a list of NCHW float32 tensors, finest first.

    The maps come from an ONNX Runtime session per input size on ``num_threads`` threads, its graph
    exported once and cached under ``cache_dir`` (default: the backbones' ONNX cache,
    ``onnx_runtime.default_cache_dir()``). Sets the process's torch threads to ``num_threads`` too, for
    the head (one by default: more ran ~10x slower on a loaded 2-core machine). Safe to share between
    threads.
    """

    def __init__(self, num_threads: int = 1, cache_dir: str | os.PathLike[str] | None = None) -> None:
        import torch

        self.num_threads = max(1, num_threads)
        torch.set_num_threads(self.num_threads)
        backbone = efficientnet_lite0(cache_dir=cache_dir)
        self.cache_dir, self._weights_version = backbone.cache_dir, backbone.spec.version
        encoder: Any = backbone.torch_module()  # efficientnet_lite_pytorch is untyped
        self.net: Any = encoder.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.taps, self.channels = self._taps()
        self.torch_net = TappedNet(self.net, self.taps).eval()
        self._sessions: dict[int, OnnxSession] = {}
        self._lock = threading.Lock()

    def _taps(self) -> tuple[dict[int, int], tuple[int, ...]]:
        """Index of the last block at each stride of STRIDES, and its channel count."""
        stride, last = 2, {}
        for i, block in enumerate(self.net._blocks):
            stride *= _block_stride(block)
            last[stride] = i
        taps = {last[s]: s for s in STRIDES}
        channels = tuple(int(self.net._blocks[i]._block_args.output_filters) for i in sorted(taps))
        return taps, channels

    def session(self, size: int) -> OnnxSession:
        """The ONNX Runtime session for ``size``×``size`` images; the first call for a size exports its
        graph (seconds) unless the cache holds it."""
        with self._lock:
            if size not in self._sessions:
                path = tapped_onnx(self.torch_net, self._weights_version, size, self.cache_dir)
                self._sessions[size] = OnnxSession(path, self.num_threads)
            return self._sessions[size]

    def warm_up(self, size: int) -> None:
        """Export or load the graph for ``size`` and run it once, so the first image is not slow."""
        self.of_arrays(np.zeros((1, 3, size, size), dtype=np.float32))

    def of_images(self, images: Sequence[bytes], size: int) -> list[torch.Tensor]:
        """Feature maps of encoded images."""
        return self.of_arrays(np.stack([image_array(data, size) for data in images]))

    def of_arrays(self, arrays: np.ndarray, *, flip: bool = False) -> list[torch.Tensor]:
        """Feature maps of a batch of ``image_array`` arrays (mirrored left-right with ``flip``)."""
        import torch

        _, channels, height, width = arrays.shape
        if channels != 3 or height != width:
            raise ValueError(f"expected a batch of square RGB arrays (N, 3, S, S), got {arrays.shape}")
        batch = np.ascontiguousarray(arrays[..., ::-1] if flip else arrays, dtype=np.float32)
        outputs = self.session(width).run(batch)
        return [torch.from_numpy(outputs[name]) for name in OUTPUT_NAMES]

    def torch_features(self, batch: torch.Tensor) -> list[torch.Tensor]:
        """The same maps computed by torch (the reference the exported graph is tested against)."""
        import torch

        with torch.inference_mode():
            return list(self.torch_net(batch))
