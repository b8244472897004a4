"""Training losses, one per head (landmix.models): what each head's outputs are trained against.

Coordinates enter as percent of the crop side, so a loss means the same thing at 64, 96 or 256 px:
- regression heads and "soft_argmax": L1 on the coordinates (wing loss is kept for comparison);
- "heatmap_offset": PIPNet's split into which cell holds the point and where in it: cross-entropy of the
  score map over its cells (PIPNet's MSE against a one-hot map collapses to all-zero scores at stride 4,
  where a point's cell is 1 of 576 at 96 px; measured in docs/results/train.md), plus L1 of the x/y offsets
  at that cell only, in cells;
- "simcc": cross-entropy of each axis' bin logits against a Gaussian label (sigma in pixels), as SimCC.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from landmix.models import SIMCC_SPLIT, Output

SIMCC_SIGMA = 1.5  # pixels: the spread of SimCC's smoothed 1-D labels
OFFSET_WEIGHT = 1.0  # PIPNet's weight of the offset term against the score term


def wing_loss(pred: torch.Tensor, target: torch.Tensor, w: float = 10.0, eps: float = 2.0) -> torch.Tensor:
    """Mean wing loss over all coordinates (Feng et al. 2018). pred, target: (B, K, 2) in any common unit."""
    d = (pred - target).abs()
    c = w - w * math.log1p(w / eps)
    return torch.where(d < w, w * torch.log1p(d / eps), d - c).mean()


def offset_loss(scores: torch.Tensor, offsets: torch.Tensor, pts: torch.Tensor, stride: int) -> torch.Tensor:
    """scores (B, K, H, W), offsets (B, 2K, H, W) in cells; pts (B, K, 2) input pixels."""
    b, k, h, w = scores.shape
    cell = (pts + 0.5) / stride  # continuous cell coordinates: cell i spans [i, i + 1)
    ij = cell.floor().long()
    ij[..., 0].clamp_(0, w - 1)
    ij[..., 1].clamp_(0, h - 1)
    idx = ij[..., 1] * w + ij[..., 0]  # (B, K)
    # (B, HW, K) logits vs (B, K)
    score_loss = F.cross_entropy(scores.float().flatten(2).transpose(1, 2), idx)
    off = offsets.float().view(b, k, 2, h * w).gather(3, idx[:, :, None, None].expand(b, k, 2, 1)).squeeze(-1)
    off_loss = F.l1_loss(off, cell - ij.float() - 0.5)
    return score_loss + OFFSET_WEIGHT * off_loss


def simcc_loss(lx: torch.Tensor, ly: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """lx, ly (B, K, bins) logits; pts (B, K, 2) input pixels; Gaussian labels of SIMCC_SIGMA pixels."""
    centres = (torch.arange(lx.shape[-1], device=lx.device, dtype=torch.float32) + 0.5) / SIMCC_SPLIT - 0.5
    loss = 0.0
    for logits, coord in ((lx, pts[..., 0]), (ly, pts[..., 1])):
        target = torch.exp(-((centres - coord[..., None]) ** 2) / (2 * SIMCC_SIGMA**2))
        target = target / target.sum(-1, keepdim=True).clamp(min=1e-6)
        loss = loss + -(target * logits.float().log_softmax(-1)).sum(-1).mean()
    return loss


def landmark_loss(out: Output, target_pts: torch.Tensor, head: str, image_size: int) -> torch.Tensor:
    """The loss each head trains with. target_pts: (B, K, 2) crop pixels."""
    if head == "heatmap_offset":
        scores, offsets = out.maps
        return offset_loss(scores, offsets, target_pts, image_size // scores.shape[-1])
    if head == "simcc":
        return simcc_loss(*out.maps, target_pts)
    scale = 100.0 / image_size
    return F.l1_loss(out.pts * scale, target_pts * scale)
