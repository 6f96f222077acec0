"""Head outputs → detections: scores, boxes in ratios, per-class non-maximum suppression (numpy)."""

from __future__ import annotations

import numpy as np

from visionloop.core.entities import Box
from visionloop.engines.detection.recipe import DetectorRecipe
from visionloop.engines.detection.records import Detection
from visionloop.engines.detection.targets import Grid


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (n, 4) with every box of ``b`` (m, 4), both x1/y1/x2/y2."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    out: np.ndarray = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS, highest score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        order = rest[iou_matrix(boxes[i : i + 1], boxes[rest])[0] <= iou]
    return np.array(keep, dtype=np.int64)


def decode(scores: np.ndarray, distances: np.ndarray, g: Grid, recipe: DetectorRecipe) -> list[Detection]:
    """One image: ``scores`` (L, K) in 0..1, ``distances`` (L, 4) l/t/r/b in pixels → detections,
    highest confidence first, after per-class NMS and the recipe's limits."""
    loc, cls = np.nonzero(scores >= recipe.score_threshold)
    conf = scores[loc, cls]
    if conf.size > recipe.pre_nms_top:
        top = np.argpartition(-conf, recipe.pre_nms_top)[: recipe.pre_nms_top]
        loc, cls, conf = loc[top], cls[top], conf[top]
    c = g.centers[loc]
    d = distances[loc]
    xyxy = np.clip(np.concatenate([c - d[:, :2], c + d[:, 2:]], 1) / recipe.input_size, 0.0, 1.0)
    found: list[Detection] = []
    for k in np.unique(cls):
        sel = np.flatnonzero(cls == k)
        for i in sel[nms(xyxy[sel], conf[sel], recipe.nms_iou)]:
            x1, y1, x2, y2 = (float(v) for v in xyxy[i])
            if x2 > x1 and y2 > y1:
                box = Box(recipe.labels[k], x1, y1, x2 - x1, y2 - y1)
                found.append(Detection(recipe.labels[k], float(conf[i]), box))
    found.sort(key=lambda det: -det.confidence)
    return found[: recipe.max_detections]
