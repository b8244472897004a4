"""Landmark detectors in plain torch: a backbone (small ResNet-ish or ResNet-50) and one of three heads.

Every model maps images (B, 3, S, S) float in [0, 1] to `Output(pts, heatmaps)`: pts (B, K, 2) in crop
pixels (0-based pixel centres) and, for heatmap heads, logits (B, K, S/4, S/4). Heads:
- "regression": global pooling + a linear layer to K*2 coordinates (trained with wing loss);
- "heatmap": a feature pyramid to stride 4, Gaussian-target MSE, decoded by argmax with a quarter-pixel
  refinement towards the larger neighbour (the classic HRNet decoding);
- "soft_argmax": the same heatmaps read out by a spatial softmax expectation (integral regression), so the
  coordinate loss trains them end to end and precision is not limited by the heatmap grid.
torchvision is not installed next to this torch, so the ResNet-50 bottleneck blocks are written here.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from landmix.config import ModelConfig


class Output(NamedTuple):
    pts: torch.Tensor  # (B, K, 2) float32, crop pixels
    heatmaps: torch.Tensor | None  # (B, K, H, W) logits at stride 4, or None for regression


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, 3, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x):
        return F.relu(self.conv2(self.conv1(x)) + self.skip(x))


class Bottleneck(nn.Module):
    """ResNet-50's block: 1x1 reduce, 3x3 (carries the stride), 1x1 expand x4."""

    def __init__(self, cin: int, mid: int, stride: int):
        super().__init__()
        cout = mid * 4
        self.body = nn.Sequential(
            _conv_bn(cin, mid, 1),
            _conv_bn(mid, mid, 3, stride),
            nn.Conv2d(mid, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x):
        return F.relu(self.body(x) + self.skip(x))


class SmallBackbone(nn.Module):
    """Stem to stride 2, then four stages of two basic blocks at strides 4, 8, 16, 32."""

    def __init__(self, width: int):
        super().__init__()
        w = width
        self.channels = (w, 2 * w, 3 * w, 4 * w)
        self.stem = _conv_bn(3, w // 2 if w >= 16 else w, 3, 2)
        cin = w // 2 if w >= 16 else w
        stages = []
        for cout in self.channels:
            stages.append(nn.Sequential(BasicBlock(cin, cout, 2), BasicBlock(cout, cout, 1)))
            cin = cout
        self.stages = nn.ModuleList(stages)

    def forward(self, x) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats  # strides 4, 8, 16, 32


class ResNet50Backbone(nn.Module):
    """ResNet-50 (3, 4, 6, 3 bottlenecks); stem 7x7/2 + maxpool, so the stages sit at strides 4..32."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(_conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))
        self.channels = (256, 512, 1024, 2048)
        stages, cin = [], 64
        for i, (mid, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
            blocks = [Bottleneck(cin, mid, 1 if i == 0 else 2)]
            blocks += [Bottleneck(mid * 4, mid, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = mid * 4
        self.stages = nn.ModuleList(stages)

    def forward(self, x) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class PyramidHeatmaps(nn.Module):
    """Top-down pathway (FPN-style) from stride 32 to stride 4, then K heatmap logits."""

    def __init__(self, channels: tuple[int, ...], k: int, mid: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, mid, 1) for c in channels)
        self.smooth = _conv_bn(mid, mid, 3)
        self.out = nn.Conv2d(mid, k, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[-1](feats[-1])
        for lat, f in zip(reversed(self.lateral[:-1]), reversed(feats[:-1])):
            x = F.interpolate(x, size=f.shape[-2:], mode="nearest") + lat(f)
        return self.out(self.smooth(x))


def soft_argmax(logits: torch.Tensor, stride: int) -> torch.Tensor:
    """(B, K, H, W) logits -> (B, K, 2) expected (x, y) in input pixels (pixel centres)."""
    b, k, h, w = logits.shape
    prob = logits.float().flatten(2).softmax(-1).view(b, k, h, w)
    xs = (torch.arange(w, device=logits.device, dtype=torch.float32) + 0.5) * stride - 0.5
    ys = (torch.arange(h, device=logits.device, dtype=torch.float32) + 0.5) * stride - 0.5
    x = (prob.sum(2) * xs).sum(-1)
    y = (prob.sum(3) * ys).sum(-1)
    return torch.stack([x, y], -1)


def argmax_decode(logits: torch.Tensor, stride: int) -> torch.Tensor:
    """(B, K, H, W) -> (B, K, 2): argmax, shifted a quarter cell towards the larger neighbour."""
    b, k, h, w = logits.shape
    flat = logits.detach().float().flatten(2)
    idx = flat.argmax(-1)
    y, x = (idx // w), (idx % w)
    hm = flat.view(b, k, h, w)
    xl, xr = (x - 1).clamp(min=0), (x + 1).clamp(max=w - 1)
    yu, yd = (y - 1).clamp(min=0), (y + 1).clamp(max=h - 1)

    def at(yy, xx):
        return hm.gather(2, yy[..., None, None].expand(b, k, 1, w)).squeeze(2).gather(2, xx[..., None]).squeeze(-1)

    dx = torch.sign(at(y, xr) - at(y, xl)) * 0.25
    dy = torch.sign(at(yd, x) - at(yu, x)) * 0.25
    grid = torch.stack([x.float() + dx, y.float() + dy], -1)
    return (grid + 0.5) * stride - 0.5


class LandmarkNet(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = ResNet50Backbone() if cfg.backbone == "resnet50" else SmallBackbone(cfg.width)
        chans = self.backbone.channels
        if cfg.head == "regression":
            self.head = nn.Linear(chans[-1], cfg.num_points * 2)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)  # start at the mean face: the crop centre
        else:
            self.head = PyramidHeatmaps(chans, cfg.num_points, mid=min(256, 2 * chans[0]))

    def forward(self, images: torch.Tensor) -> Output:
        """images (B, 3, S, S) float in [0, 1]."""
        s = self.cfg.image_size
        feats = self.backbone((images - 0.5) / 0.25)
        if self.cfg.head == "regression":
            offset = self.head(feats[-1].mean((2, 3))).view(-1, self.cfg.num_points, 2)
            # offsets from the crop centre in units of the crop side; zero = the centre pixel (S - 1) / 2
            return Output(pts=offset.float() * s + (s - 1) / 2, heatmaps=None)
        logits = self.head(feats)
        stride = s // logits.shape[-1]
        if self.cfg.head == "soft_argmax":
            return Output(pts=soft_argmax(logits, stride), heatmaps=logits)
        return Output(pts=argmax_decode(logits, stride), heatmaps=logits)


def create_model(cfg: ModelConfig) -> LandmarkNet:
    return LandmarkNet(cfg)


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
