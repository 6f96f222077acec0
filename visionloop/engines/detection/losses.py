"""The FCOS losses on a batch of flattened head outputs: focal loss on the class scores of every
location, GIoU loss on the distances of the positive locations (weighted by their centerness target),
and binary cross-entropy on the centerness of the positive locations."""

from __future__ import annotations

import torch
from torch.nn import functional as F  # noqa: N812

ALPHA, GAMMA = 0.25, 2.0


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum of the sigmoid focal loss (Lin et al. 2017) over every element."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    alpha_t = ALPHA * target + (1 - ALPHA) * (1 - target)
    return (alpha_t * ce * (1 - p_t) ** GAMMA).sum()


def centerness(distances: torch.Tensor) -> torch.Tensor:
    """sqrt(min(l,r)/max(l,r) · min(t,b)/max(t,b)): 1 at a box centre, 0 at its edge."""
    lr, tb = distances[:, [0, 2]], distances[:, [1, 3]]
    ratio = (lr.min(1).values / lr.max(1).values) * (tb.min(1).values / tb.max(1).values)
    return ratio.clamp(min=0).sqrt()


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − GIoU of boxes given as l/t/r/b distances from the same point, one per row."""
    pl, pt, pr, pb = pred.unbind(1)
    tl, tt, tr, tb = target.unbind(1)
    pred_area, target_area = (pl + pr) * (pt + pb), (tl + tr) * (tt + tb)
    inter = (torch.min(pl, tl) + torch.min(pr, tr)) * (torch.min(pt, tt) + torch.min(pb, tb))
    union = pred_area + target_area - inter
    hull = (torch.max(pl, tl) + torch.max(pr, tr)) * (torch.max(pt, tt) + torch.max(pb, tb))
    iou = inter / union.clamp(min=1e-6)
    giou = iou - (hull - union) / hull.clamp(min=1e-6)
    return 1 - giou


def fcos_loss(
    cls: torch.Tensor,
    dist: torch.Tensor,
    ctr: torch.Tensor,
    cls_target: torch.Tensor,
    positive: torch.Tensor,
    dist_target: torch.Tensor,
) -> torch.Tensor:
    """The batch loss. ``cls`` (N, L, K) logits, ``dist`` (N, L, 4) distances in pixels, ``ctr`` (N, L)
    logits; ``cls_target`` (N, L, K) one-hot, ``positive`` (N, L) bool, ``dist_target`` (P, 4) pixels of
    the positives in the order of ``positive.nonzero()``."""
    n_pos = max(1.0, float(positive.sum()))
    loss = focal_loss(cls, cls_target) / n_pos
    if dist_target.shape[0]:
        ctr_target = centerness(dist_target)
        weight = ctr_target.sum().clamp(min=1e-6)
        loss = loss + (giou_loss(dist[positive], dist_target) * ctr_target).sum() / weight
        loss = loss + F.binary_cross_entropy_with_logits(ctr[positive], ctr_target, reduction="sum") / n_pos
    return loss
