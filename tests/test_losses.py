"""Losses: wing loss shape and continuity, PIPNet and SimCC targets, and every head's loss trains."""

import math

import torch

from landmix.config import HEADS, ModelConfig
from landmix.losses import landmark_loss, offset_loss, simcc_loss, wing_loss
from landmix.models import SIMCC_SPLIT, create_model


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


def test_offset_loss_is_zero_for_the_right_cell_and_offset():
    pts = torch.tensor([[[37.5, 21.5]]])  # the centre of cell (x=9, y=5) at stride 4
    scores = torch.full((1, 1, 16, 16), -30.0)
    scores[0, 0, 5, 9] = 30.0  # all the probability on the right cell
    offsets = torch.zeros(1, 2, 16, 16)
    assert float(offset_loss(scores, offsets, pts, 4)) < 1e-6
    offsets[0, 0, 5, 9] = 0.5  # half a cell off in x
    assert abs(float(offset_loss(scores, offsets, pts, 4)) - 0.25) < 1e-5  # L1 mean over x and y
    scores[0, 0, 5, 10] = 30.0  # half the probability on the wrong cell: ln 2 more
    assert abs(float(offset_loss(scores, offsets, pts, 4)) - 0.25 - math.log(2)) < 1e-5


def test_simcc_loss_is_smallest_for_logits_peaked_at_the_point():
    pts = torch.tensor([[[20.0, 40.0]]])
    bins = 64 * SIMCC_SPLIT
    centres = (torch.arange(bins) + 0.5) / SIMCC_SPLIT - 0.5

    def peaked(at):
        return -((centres - at) ** 2)[None, None] / 2.0

    right = simcc_loss(peaked(20.0), peaked(40.0), pts)
    wrong = simcc_loss(peaked(30.0), peaked(40.0), pts)
    assert float(right) < float(wrong)


def test_each_head_loss_decreases_on_one_batch():
    x, y = torch.rand(4, 3, 64, 64), torch.rand(4, 68, 2) * 40 + 12
    for head in HEADS:
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
