"""The detector's frozen backbone as an ONNX graph: Lite0's stem and blocks up to the last tapped one,
whose outputs are the tapped feature maps.

Why ONNX Runtime: on one CPU thread, with all graph optimisations, it runs this network in about a
quarter of torch's time (44 against 165 ms an image at 512 px, 18 against 56 at 320), with features
within 2e-5 of torch's relative to each map's largest value (bench/research/exp17_detection_onnx.py).
The graph is exported from the installed weights package once per input size (the batch is dynamic)
and cached by ``onnx_runtime.cached_onnx`` beside the classifier's backbones.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from visionloop.engines.onnx_runtime import cached_onnx, export_onnx

# Bump when the exported graph changes for the same weights and size (it keys the cache).
PYRAMID_EXPORT_VERSION = "1"
# One output per tap, finest first; prefixed so no value inside the graph has the same name.
OUTPUT_NAMES = ("visionloop_stride8", "visionloop_stride16", "visionloop_stride32")


class TappedNet(torch.nn.Module):
    """NCHW images → the outputs of the blocks at ``taps`` (indices into ``net._blocks``), finest first.
    The blocks after the last tap are not run."""

    def __init__(self, net: Any, taps: Iterable[int]) -> None:
        super().__init__()
        self.net = net  # an efficientnet_lite_pytorch EfficientNet (untyped)
        self.taps = frozenset(taps)
        self.depth = max(self.taps) + 1

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(images)))
        outs = []
        for i, block in enumerate(net._blocks[: self.depth]):
            x = block(x)
            if i in self.taps:
                outs.append(x)
        return tuple(outs)


def tapped_onnx(module: TappedNet, weights_version: str, size: int, cache_dir: Path) -> Path:
    """The cached graph of ``module`` for ``size``×``size`` images, exported first if missing or corrupted.
    ``weights_version`` is the backbone's (it changes with the weights file and the backbone's export)."""
    if len(module.taps) != len(OUTPUT_NAMES):
        raise ValueError(f"{len(module.taps)} taps for {len(OUTPUT_NAMES)} outputs")
    key = f"efficientnet-lite0-pyramid-{weights_version}.p{PYRAMID_EXPORT_VERSION}-{size}px"
    return cached_onnx(cache_dir, key, lambda: export_onnx(module, size, OUTPUT_NAMES))
