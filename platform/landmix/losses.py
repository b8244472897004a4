"""Training losses for the three heads: wing loss on coordinates, Gaussian-heatmap MSE.

Coordinates enter the wing loss as percent of the crop side, so its width (10) and curvature (2) mean
the same thing at 64, 112 or 256 px (Feng et al. 2018 used w=10, eps=2 on pixels of ~256 px crops).
"""

from __future__ import annotations

import math

import torch

from landmix.models import Output


def wing_loss(pred: torch.Tensor, target: torch.Tensor, w: float = 10.0, eps: float = 2.0) -> torch.Tensor:
    """Mean wing loss over all coordinates. pred, target: (B, K, 2) in any common unit."""
    d = (pred - target).abs()
    c = w - w * math.log1p(w / eps)
    return torch.where(d < w, w * torch.log1p(d / eps), d - c).mean()


def gaussian_heatmaps(pts: torch.Tensor, size: int, stride: int, sigma: float = 1.5) -> torch.Tensor:
    """Targets (B, K, size, size) with peak 1 at each point; pts (B, K, 2) input pixels; sigma in cells."""
    grid = torch.arange(size, device=pts.device, dtype=torch.float32)
    cx = (pts[..., 0] + 0.5) / stride - 0.5  # cell coordinates of the point
    cy = (pts[..., 1] + 0.5) / stride - 0.5
    gx = torch.exp(-((grid - cx[..., None]) ** 2) / (2 * sigma**2))  # (B, K, W)
    gy = torch.exp(-((grid - cy[..., None]) ** 2) / (2 * sigma**2))  # (B, K, H)
    return gy[..., :, None] * gx[..., None, :]


def heatmap_loss(logits: torch.Tensor, pts: torch.Tensor, image_size: int) -> torch.Tensor:
    """MSE between heatmap logits (B, K, H, W) and Gaussian targets, scaled so it starts near 1."""
    size = logits.shape[-1]
    target = gaussian_heatmaps(pts, size, image_size // size)
    return ((logits.float() - target) ** 2).mean() * 100.0


def landmark_loss(out: Output, target_pts: torch.Tensor, head: str, image_size: int) -> torch.Tensor:
    """The loss each head trains with. target_pts: (B, K, 2) crop pixels."""
    if head == "heatmap":
        return heatmap_loss(out.heatmaps, target_pts, image_size)
    scale = 100.0 / image_size
    return wing_loss(out.pts * scale, target_pts * scale)
