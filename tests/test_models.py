"""Models: output shapes for every head and backbone, and the decoders on known maps."""

import math

import torch

from landmix.config import BACKBONES, HEADS, ModelConfig
from landmix.models import (
    SIMCC_SPLIT,
    ResNet50Backbone,
    create_model,
    num_parameters,
    offset_decode,
    soft_argmax,
)


def test_every_head_and_backbone_predicts_k_points_in_crop_pixels():
    x = torch.rand(2, 3, 64, 64)
    for backbone in (b for b in BACKBONES if b != "resnet50"):
        for head in HEADS:
            out = create_model(ModelConfig(backbone=backbone, head=head, width=8, image_size=64))(x)
            assert out.pts.shape == (2, 68, 2), (backbone, head)
            assert (len(out.maps) == 0) == (head in ("regression", "flat_regression"))
    maps = create_model(ModelConfig(head="heatmap_offset", width=8, image_size=64))(x).maps
    assert maps[0].shape == (2, 68, 16, 16) and maps[1].shape == (2, 136, 16, 16)  # stride 4: scores, offsets
    lx, ly = create_model(ModelConfig(head="simcc", width=8, image_size=64))(x).maps
    assert lx.shape == ly.shape == (2, 68, 64 * SIMCC_SPLIT)


def test_regression_heads_start_at_the_crop_centre():
    for head in ("regression", "flat_regression"):
        out = create_model(ModelConfig(head=head, width=8, image_size=64))(torch.rand(1, 3, 64, 64))
        assert torch.allclose(out.pts, torch.full_like(out.pts, 31.5)), head


def test_resnet50_backbone_is_resnet50_sized():
    backbone = ResNet50Backbone()
    assert 23e6 < num_parameters(backbone) < 24e6  # torchvision's resnet50 minus its fc: 23.5M
    feats = backbone(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [256, 512, 1024, 2048]
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]


def test_mobilenet_is_several_times_smaller_than_the_small_resnet():
    small = num_parameters(create_model(ModelConfig(backbone="small")).backbone)
    mobile = num_parameters(create_model(ModelConfig(backbone="mobilenet")).backbone)
    assert mobile * 2 < small


def test_decoders_find_a_peak_at_its_pixel_centre():
    logits = torch.full((1, 68, 16, 16), -50.0)
    logits[0, :, 5, 9] = 50.0  # cell (x=9, y=5) at stride 4 -> pixel centre (9.5*4-0.5, 5.5*4-0.5)
    want = torch.tensor([37.5, 21.5])
    assert torch.allclose(soft_argmax(logits, 4)[0, 0], want, atol=1e-3)
    offsets = torch.zeros(1, 136, 16, 16)
    assert torch.allclose(offset_decode(logits, offsets, 4)[0, 0], want)
    offsets[0, 0::2][:, 5, 9] = 0.25  # a quarter cell to the right (x offsets are channels 0, 2, 4, ...)
    assert torch.allclose(offset_decode(logits, offsets, 4)[0, 0], want + torch.tensor([1.0, 0.0]))


def test_offset_decode_averages_the_votes_of_the_cells_around_the_best_one():
    scores = torch.full((1, 68, 16, 16), -50.0)
    scores[0, :, 5, 9], scores[0, :, 5, 10] = 1.0, 1.0 + math.log(3)  # 1/4 and 3/4 of the probability
    offsets = torch.zeros(1, 136, 16, 16)
    offsets[0, 0::2, 5, 9] = 0.8  # both cells say x = 10.3 cells
    offsets[0, 0::2, 5, 10] = -0.2
    want = torch.tensor([10.3 * 4 - 0.5, 5.5 * 4 - 0.5])
    assert torch.allclose(offset_decode(scores, offsets, 4)[0, 0], want, atol=1e-4)
    offsets[0, 0::2, 5, 9] = 0.0  # the left cell now says x = 9.5 cells: the mean moves by a quarter of that
    assert torch.allclose(offset_decode(scores, offsets, 4)[0, 0], want - torch.tensor([0.8, 0.0]), atol=1e-4)
    # the best cell only
    assert torch.allclose(offset_decode(scores, offsets, 4, radius=0)[0, 0], want, atol=1e-4)
    scores[0, :, 0, 0] = 30.0  # a best cell in the corner: the window's cells outside the map do not vote
    assert torch.allclose(offset_decode(scores, offsets, 4)[0, 0], torch.tensor([1.5, 1.5]), atol=1e-3)


def test_soft_argmax_interpolates_between_cells():
    logits = torch.full((1, 68, 8, 8), -50.0)
    logits[0, :, 2, 3] = 10.0
    logits[0, :, 2, 4] = 10.0
    assert abs(float(soft_argmax(logits, 1)[0, 0, 0]) - 3.5) < 1e-3
