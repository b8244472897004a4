"""Losses: wing loss shape and continuity, Gaussian heatmap targets, and a loss that trains."""

import math

import torch

from landmix.config import ModelConfig
from landmix.losses import gaussian_heatmaps, landmark_loss, wing_loss
from landmix.models import create_model


def test_wing_loss_is_zero_at_the_target_and_continuous_at_w():
    p = torch.zeros(1, 68, 2)
    assert float(wing_loss(p, p)) == 0.0
    w, eps = 10.0, 2.0
    below = wing_loss(torch.full((1, 1, 1), w - 1e-4), torch.zeros(1, 1, 1), w, eps)
    above = wing_loss(torch.full((1, 1, 1), w + 1e-4), torch.zeros(1, 1, 1), w, eps)
    assert abs(float(below) - float(above)) < 1e-3
    assert abs(float(below) - w * math.log1p(w / eps)) < 1e-3


def test_wing_loss_is_log_like_for_small_errors_and_l1_for_large():
    x = torch.tensor([[[0.5]], [[50.0]]], requires_grad=True)
    (grad,) = torch.autograd.grad(wing_loss(x, torch.zeros_like(x)) * 2, [x])
    assert grad[0].item() > grad[1].item()  # steeper near zero: small errors still matter
    assert abs(grad[1].item() - 1.0) < 1e-6


def test_gaussian_heatmap_peaks_at_the_point():
    pts = torch.tensor([[[37.5, 21.5]]])  # cell (9, 5) centre at stride 4
    hm = gaussian_heatmaps(pts, 16, 4)
    assert hm.shape == (1, 1, 16, 16)
    assert float(hm[0, 0, 5, 9]) == 1.0 and int(hm.flatten().argmax()) == 5 * 16 + 9


def test_each_head_loss_decreases_on_one_batch():
    x, y = torch.rand(4, 3, 64, 64), torch.rand(4, 68, 2) * 40 + 12
    for head in ("regression", "heatmap", "soft_argmax"):
        torch.manual_seed(0)
        model = create_model(ModelConfig(head=head, width=8, image_size=64))
        opt = torch.optim.Adam(model.parameters(), 3e-3)
        losses = []
        for _ in range(15):
            loss = landmark_loss(model(x), y, head, 64)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < losses[0], (head, losses)
