"""FCOS target assignment: which feature-map locations learn which true box.

A location is positive for a box when it lies inside the box, within ``center_radius`` strides of the
box centre, and the box's size suits its level (the largest distance from the location to a side falls
in that level's range); among several boxes the smallest wins. A box that no location takes (tiny, or
between centres) is given the finest location nearest its centre, so every true box is learnt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from visionloop.core.entities import Box
from visionloop.engines.detection.features import STRIDES


@dataclass(frozen=True)
class Grid:
    """Every location of every level for one input size: centres (L, 2) in pixels, strides, level ranges."""

    centers: np.ndarray
    strides: np.ndarray
    low: np.ndarray
    high: np.ndarray


def grid(size: int, ranges: Sequence[float]) -> Grid:
    """Locations of all levels, finest first, row-major within a level (as ``head.flatten`` orders them)."""
    centers, strides, low, high = [], [], [], []
    bounds = [*ranges[1:], np.inf]
    for stride, lo, hi in zip(STRIDES, ranges, bounds, strict=True):
        n = size // stride
        ys, xs = np.mgrid[0:n, 0:n]
        pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32) * stride + stride / 2
        centers.append(pts)
        strides.append(np.full(len(pts), stride, np.float32))
        low.append(np.full(len(pts), lo, np.float32))
        high.append(np.full(len(pts), hi, np.float32))
    return Grid(*(np.concatenate(a) for a in (centers, strides, low, high)))


@dataclass(frozen=True)
class Targets:
    """One image's positives: location indices, class indices and l/t/r/b distances in pixels."""

    index: np.ndarray
    label: np.ndarray
    distances: np.ndarray


def assign(boxes: Sequence[Box], labels: Sequence[str], g: Grid, size: int, radius: float) -> Targets:
    """The positive locations of one image (see the module docstring)."""
    known = {name: i for i, name in enumerate(labels)}
    kept = [b for b in boxes if b.label in known and b.width > 0 and b.height > 0]
    if not kept:
        return Targets(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4), np.float32))
    xyxy = np.array([[b.left, b.top, b.left + b.width, b.top + b.height] for b in kept], np.float32) * size
    cls = np.array([known[b.label] for b in kept], np.int64)
    x, y = g.centers[:, 0:1], g.centers[:, 1:2]
    ltrb = np.stack([x - xyxy[:, 0], y - xyxy[:, 1], xyxy[:, 2] - x, xyxy[:, 3] - y], -1)  # (L, B, 4)
    inside = ltrb.min(-1) > 0
    cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
    reach = radius * g.strides[:, None]
    central = (np.abs(x - cx) < reach) & (np.abs(y - cy) < reach)
    extent = ltrb.max(-1)
    fits = (extent >= g.low[:, None]) & (extent <= g.high[:, None])
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    cost = np.where(inside & central & fits, area[None, :], np.inf)
    for b in np.flatnonzero(~np.isfinite(cost).any(0)):  # untaken box: nearest finest location
        finest = np.flatnonzero(g.strides == g.strides.min())
        d = (g.centers[finest, 0] - cx[b]) ** 2 + (g.centers[finest, 1] - cy[b]) ** 2
        cost[finest[np.argmin(d)], b] = 0.0
    best = cost.argmin(1)
    positive = np.isfinite(cost[np.arange(len(cost)), best])
    index = np.flatnonzero(positive)
    chosen = best[index]
    dist = np.maximum(ltrb[index, chosen], 0.5)  # a forced location may fall just outside a tiny box
    return Targets(index, cls[chosen], dist.astype(np.float32))
