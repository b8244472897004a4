"""Landmark detectors in plain torch: a backbone and one of five heads that read points out of it.

Every model maps images (B, 3, S, S) float in [0, 1] to `Output(pts, maps)`: pts (B, K, 2) in crop pixels
(0-based pixel centres) and the head's raw outputs that its loss needs (landmix.losses). Backbones give
feature maps at strides 4, 8, 16 and 32:
- "small": a ResNet-18-like stack of basic blocks, two per stage, `width` channels at stride 4;
- "mobilenet": MobileNetV2-style inverted residuals (1x1 expand, 3x3 depthwise, 1x1 project);
- "resnet50": ResNet-50's bottlenecks (the GPU preset; torchvision is not installed next to this torch).
Heads (docs/results/train.md measures them against each other at equal wall time):
- "regression": global average pooling + a linear layer (where features are is thrown away);
- "flat_regression": the stride-32 map reduced to 64 channels, flattened, two linear layers;
- "soft_argmax": a top-down feature pyramid to stride 4, K heatmaps read out by a spatial softmax
  expectation (integral regression), trained by L1 on the coordinates;
- "heatmap_offset": the same stride-4 pyramid, a score map per point (which cell holds it) and x/y offsets
  within the cell (PIPNet-style), decoded as the score-weighted mean of what the 3 x 3 cells around the
  best one say (each its centre + its offset);
- "simcc": the stride-4 pyramid's K maps, flattened, classified along x and along y separately into bins of
  1 / SIMCC_SPLIT pixel (SimCC), decoded by the expectation over each axis' bins.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from landmix.config import ModelConfig

SIMCC_SPLIT = 2  # SimCC bins per input pixel
DECODE_RADIUS = 1  # "heatmap_offset": the window of cells around the best one that vote (offset_decode)


class Output(NamedTuple):
    pts: torch.Tensor  # (B, K, 2) float32, crop pixels
    maps: tuple[torch.Tensor, ...] = ()  # the head's raw outputs for its loss; () for the regression heads


def _conv_bn(
    cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True
) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(True)) if act else nn.Sequential(*layers)


def _skip(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, cout, 3, stride), _conv_bn(cout, cout, 3, act=False))
        self.skip = _skip(cin, cout, stride)

    def forward(self, x):
        return F.relu(self.body(x) + self.skip(x))


class Bottleneck(nn.Module):
    """ResNet-50's block: 1x1 reduce, 3x3 (carries the stride), 1x1 expand x4."""

    def __init__(self, cin: int, mid: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(cin, mid, 1), _conv_bn(mid, mid, 3, stride), _conv_bn(mid, mid * 4, 1, act=False)
        )
        self.skip = _skip(cin, mid * 4, stride)

    def forward(self, x):
        return F.relu(self.body(x) + self.skip(x))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand (x6), 3x3 depthwise (carries the stride), 1x1 linear projection."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int = 6):
        super().__init__()
        mid = cin * expand
        self.body = nn.Sequential(
            _conv_bn(cin, mid, 1),
            _conv_bn(mid, mid, 3, stride, groups=mid),
            _conv_bn(mid, cout, 1, act=False),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class SmallBackbone(nn.Module):
    """Stem to stride 2, then four stages of two basic blocks at strides 4, 8, 16, 32."""

    def __init__(self, width: int):
        super().__init__()
        self.channels = (width, 2 * width, 3 * width, 4 * width)
        cin = max(8, width // 2)
        self.stem = _conv_bn(3, cin, 3, 2)
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


class MobileBackbone(SmallBackbone):
    """Stem 3x3/2, then four stages of inverted residuals (2, 3, 3, 2 blocks) at strides 4, 8, 16, 32."""

    def __init__(self, width: int):
        nn.Module.__init__(self)
        self.channels = (width // 2 + width // 4, width, 2 * width, 3 * width)  # 24, 32, 64, 96 at width 32
        cin = max(8, width // 2)
        self.stem = nn.Sequential(
            _conv_bn(3, cin, 3, 2), _conv_bn(cin, cin, 3, groups=cin), _conv_bn(cin, cin, 1)
        )
        stages = []
        for cout, n in zip(self.channels, (2, 3, 3, 2)):
            blocks = [InvertedResidual(cin, cout, 2)] + [
                InvertedResidual(cout, cout, 1) for _ in range(n - 1)
            ]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.ModuleList(stages)


class ResNet50Backbone(SmallBackbone):
    """ResNet-50 (3, 4, 6, 3 bottlenecks); stem 7x7/2 + maxpool, so the stages sit at strides 4..32."""

    def __init__(self):
        nn.Module.__init__(self)
        self.stem = nn.Sequential(_conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))
        self.channels = (256, 512, 1024, 2048)
        stages, cin = [], 64
        for i, (mid, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
            blocks = [Bottleneck(cin, mid, 1 if i == 0 else 2)] + [
                Bottleneck(mid * 4, mid, 1) for _ in range(n - 1)
            ]
            stages.append(nn.Sequential(*blocks))
            cin = mid * 4
        self.stages = nn.ModuleList(stages)


class Pyramid(nn.Module):
    """Top-down pathway (FPN-style) from stride 32 to stride 4: (B, mid, S/4, S/4) features."""

    def __init__(self, channels: tuple[int, ...], mid: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, mid, 1) for c in channels)
        self.smooth = _conv_bn(mid, mid, 3)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[-1](feats[-1])
        for lat, f in zip(reversed(self.lateral[:-1]), reversed(feats[:-1])):
            x = F.interpolate(x, size=f.shape[-2:], mode="bilinear", align_corners=False) + lat(f)
        return self.smooth(x)


def cell_centres(n: int, stride: int, device) -> torch.Tensor:
    """Input-pixel coordinate of the centre of each of n cells of a stride-`stride` map: (n,) float32."""
    return (torch.arange(n, device=device, dtype=torch.float32) + 0.5) * stride - 0.5


def soft_argmax(logits: torch.Tensor, stride: int) -> torch.Tensor:
    """(B, K, H, W) logits -> (B, K, 2) expected (x, y) in input pixels (pixel centres)."""
    b, k, h, w = logits.shape
    prob = logits.float().flatten(2).softmax(-1).view(b, k, h, w)
    x = (prob.sum(2) * cell_centres(w, stride, logits.device)).sum(-1)
    y = (prob.sum(3) * cell_centres(h, stride, logits.device)).sum(-1)
    return torch.stack([x, y], -1)


def offset_decode(
    scores: torch.Tensor, offsets: torch.Tensor, stride: int, radius: int = DECODE_RADIUS
) -> torch.Tensor:
    """Scores (B, K, H, W), offsets (B, 2K, H, W) in cells -> (B, K, 2) input pixels.

    Every cell of the (2 radius + 1)^2 window around a point's best cell says where the point is (its centre +
    its own offset); the answer is their mean weighted by the cells' softmax scores. radius 0 is PIPNet's
    decoding (the best cell + its offset). The window reads the score map's spread where a point sits near a
    cell border (measured in docs/results/train.md: 3.29 -> 3.17 % validation NME from the same weights)."""
    b, k, h, w = scores.shape
    flat = scores.detach().float().flatten(2)  # (B, K, HW)
    prob = flat.softmax(-1)
    best = flat.argmax(-1)
    bx, by = best % w, best // w
    off = offsets.float().view(b, k, 2, h * w)
    total, weight = (
        scores.new_zeros(b, k, 2, dtype=torch.float32),
        scores.new_zeros(b, k, dtype=torch.float32),
    )
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            x, y = bx + dx, by + dy
            inside = ((x >= 0) & (x < w) & (y >= 0) & (y < h)).float()
            idx = y.clamp(0, h - 1) * w + x.clamp(0, w - 1)  # (B, K)
            p = prob.gather(2, idx[..., None]).squeeze(-1) * inside
            o = off.gather(3, idx[:, :, None, None].expand(b, k, 2, 1)).squeeze(-1)
            total += p[..., None] * (torch.stack([x, y], -1).float() + 0.5 + o)
            weight += p
    return (total / weight[..., None]) * stride - 0.5


class LandmarkNet(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        k = cfg.num_points
        self.decode_radius = (
            DECODE_RADIUS  # "heatmap_offset" decoding's window (bench/train.py decode varies it)
        )
        self.backbone = {"small": SmallBackbone, "mobilenet": MobileBackbone}.get(
            cfg.backbone, ResNet50Backbone
        )(*(() if cfg.backbone == "resnet50" else (cfg.width,)))
        chans = self.backbone.channels
        if cfg.head == "regression":
            self.head = nn.Linear(chans[-1], k * 2)
        elif cfg.head == "flat_regression":
            cells = (cfg.image_size // 32) ** 2
            self.reduce = _conv_bn(chans[-1], 64, 1)
            self.head = nn.Sequential(
                nn.Flatten(), nn.Linear(64 * cells, 512), nn.ReLU(True), nn.Linear(512, k * 2)
            )
        else:
            mid = min(256, 2 * chans[0])
            self.pyramid = Pyramid(chans, mid)
            extra = 2 * k if cfg.head == "heatmap_offset" else 0
            self.head = nn.Conv2d(mid, k + extra, 1)
            if cfg.head == "simcc":
                cells = (cfg.image_size // 4) ** 2
                self.simcc_x = nn.Linear(cells, cfg.image_size * SIMCC_SPLIT)
                self.simcc_y = nn.Linear(cells, cfg.image_size * SIMCC_SPLIT)
        if cfg.head in ("regression", "flat_regression"):
            last = self.head if cfg.head == "regression" else self.head[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)  # start at the crop centre

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The backbone's maps at strides 4, 8, 16 and 32 of images (B, 3, S, S) float in [0, 1]."""
        return self.backbone((images - 0.5) / 0.25)

    def forward(self, images: torch.Tensor) -> Output:
        """images (B, 3, S, S) float in [0, 1]."""
        s, k = self.cfg.image_size, self.cfg.num_points
        feats = self.features(images)
        if self.cfg.head in ("regression", "flat_regression"):
            x = feats[-1].mean((2, 3)) if self.cfg.head == "regression" else self.reduce(feats[-1])
            offset = self.head(x).view(-1, k, 2)
            # offsets from the crop centre in units of the crop side; zero = the centre pixel (S - 1) / 2
            return Output(pts=offset.float() * s + (s - 1) / 2)
        maps = self.head(self.pyramid(feats))
        stride = s // maps.shape[-1]
        if self.cfg.head == "soft_argmax":
            return Output(pts=soft_argmax(maps, stride), maps=(maps,))
        if self.cfg.head == "heatmap_offset":
            scores, offsets = maps[:, :k], maps[:, k:]
            return Output(
                pts=offset_decode(scores, offsets, stride, self.decode_radius), maps=(scores, offsets)
            )
        flat = maps.flatten(2)  # (B, K, H*W)
        lx, ly = self.simcc_x(flat), self.simcc_y(flat)  # (B, K, S * SIMCC_SPLIT) logits over bins
        bins = cell_centres(lx.shape[-1], 1, lx.device) / SIMCC_SPLIT + (0.5 / SIMCC_SPLIT - 0.5)
        pts = torch.stack(
            [(lx.float().softmax(-1) * bins).sum(-1), (ly.float().softmax(-1) * bins).sum(-1)], -1
        )
        return Output(pts=pts, maps=(lx, ly))


def create_model(cfg: ModelConfig) -> LandmarkNet:
    return LandmarkNet(cfg)


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
