"""The light FCOS-style head trained on the frozen feature maps.

Each level's map is projected to ``width`` channels and merged top-down (the coarse, more semantic maps
are added to the finer ones, which helps classify small objects), then one shared tower of
depthwise-separable convolutions feeds three 1×1 outputs per location: class scores (sigmoid, focal
loss), distances to the box sides l/t/r/b (in strides, exp) and centerness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

Outputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # one level: classes, log-distances, centerness
PRIOR = 0.01  # initial class probability: background dominates, so the focal loss starts stable


class SeparableConv(nn.Module):
    """Depthwise 3×3, pointwise 1×1, group norm, ReLU: a 3×3 layer for ~1/8 of the multiply-adds."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
        self.pointwise = nn.Conv2d(width, width, 1, bias=False)
        self.norm = nn.GroupNorm(8, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.pointwise(self.depthwise(x))))


class FcosHead(nn.Module):
    """Feature maps (finest first) → per level (class logits, l/t/r/b log-distances, centerness logit)."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, width: int = 64, depth: int = 2) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in in_channels)
        self.smooth = nn.ModuleList(SeparableConv(width) for _ in in_channels)
        self.tower = nn.Sequential(*(SeparableConv(width) for _ in range(depth)))
        self.classes = nn.Conv2d(width, num_classes, 1)
        self.distances = nn.Conv2d(width, 4, 1)
        self.centerness = nn.Conv2d(width, 1, 1)
        self.scales = nn.Parameter(torch.ones(len(in_channels)))
        bias = self.classes.bias
        assert bias is not None
        nn.init.constant_(bias, -math.log((1 - PRIOR) / PRIOR))

    def forward(self, features: Sequence[torch.Tensor]) -> list[Outputs]:
        maps = [lateral(f) for lateral, f in zip(self.lateral, features, strict=True)]
        for i in range(len(maps) - 2, -1, -1):  # top-down: coarse into fine
            maps[i] = maps[i] + F.interpolate(maps[i + 1], size=maps[i].shape[-2:], mode="nearest")
        out = []
        for level, (smooth, x) in enumerate(zip(self.smooth, maps, strict=True)):
            x = self.tower(smooth(x))
            log_dist = (self.scales[level] * self.distances(x)).clamp(max=8.0)
            out.append((self.classes(x), log_dist, self.centerness(x)))
        return out


def flatten(outputs: Sequence[Outputs]) -> Outputs:
    """Per-level outputs → (N, L, classes), (N, L, 4), (N, L): all levels' locations, row-major,
    finest level first."""
    cls = torch.cat([c.flatten(2).transpose(1, 2) for c, _, _ in outputs], 1)
    dist = torch.cat([d.flatten(2).transpose(1, 2) for _, d, _ in outputs], 1)
    ctr = torch.cat([t.flatten(1) for _, _, t in outputs], 1)
    return cls, dist, ctr
