"""The frozen EfficientNet-Lite0 as a multi-scale feature extractor (strides 8, 16 and 32).

The image is resized to a square of the recipe's input size (ratios of the image stay ratios of the
square, so boxes need no letterbox bookkeeping) and normalised as the classifier's backbone does. The
network is the one ``backbones.efficientnet_lite0`` builds from the weights package; we read the
outputs of the last block of each stride instead of the pooled embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from visionloop.engines.backbones import efficientnet_lite0
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
    """Lite0's feature maps at ``STRIDES``: a list of NCHW tensors, finest first. Sets the process's
    torch threads to ``num_threads`` (one by default: more ran ~10x slower on a loaded 2-core machine)."""

    def __init__(self, num_threads: int = 1) -> None:
        import torch

        torch.set_num_threads(max(1, num_threads))
        encoder: Any = efficientnet_lite0().torch_module()  # efficientnet_lite_pytorch is untyped
        self.net: Any = encoder.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.taps, self.channels = self._taps()

    def _taps(self) -> tuple[dict[int, int], tuple[int, ...]]:
        """Index of the last block at each stride of STRIDES, and its channel count."""
        stride, last = 2, {}
        for i, block in enumerate(self.net._blocks):
            stride *= _block_stride(block)
            last[stride] = i
        taps = {last[s]: s for s in STRIDES}
        channels = tuple(int(self.net._blocks[i]._block_args.output_filters) for i in sorted(taps))
        return taps, channels

    def __call__(self, batch: torch.Tensor) -> list[torch.Tensor]:
        import torch

        with torch.inference_mode():
            net = self.net
            x = net._swish(net._bn0(net._conv_stem(batch)))
            outs = []
            for i, block in enumerate(net._blocks):
                x = block(x)
                if i in self.taps:
                    outs.append(x)
                if len(outs) == len(STRIDES):
                    break
            return outs

    def of_images(self, images: Sequence[bytes], size: int) -> list[torch.Tensor]:
        """Feature maps of encoded images."""
        return self.of_arrays(np.stack([image_array(data, size) for data in images]))

    def of_arrays(self, arrays: np.ndarray, *, flip: bool = False) -> list[torch.Tensor]:
        """Feature maps of a batch of ``image_array`` arrays (mirrored left-right with ``flip``)."""
        import torch

        return self(torch.from_numpy(arrays[..., ::-1].copy() if flip else arrays))
