"""Models: output shapes for every head and backbone, and the heatmap decoders on known maps."""

import torch

from landmix.config import ModelConfig
from landmix.models import ResNet50Backbone, argmax_decode, create_model, num_parameters, soft_argmax


def test_every_head_predicts_k_points_in_crop_pixels():
    x = torch.rand(2, 3, 64, 64)
    for head in ("regression", "heatmap", "soft_argmax"):
        out = create_model(ModelConfig(head=head, width=8, image_size=64))(x)
        assert out.pts.shape == (2, 68, 2)
        assert (out.heatmaps is None) == (head == "regression")
        if out.heatmaps is not None:
            assert out.heatmaps.shape == (2, 68, 16, 16)  # stride 4


def test_regression_head_starts_at_the_crop_centre():
    out = create_model(ModelConfig(head="regression", width=8, image_size=64))(torch.rand(1, 3, 64, 64))
    assert torch.allclose(out.pts, torch.full_like(out.pts, 31.5))


def test_resnet50_backbone_is_resnet50_sized():
    backbone = ResNet50Backbone()
    assert 23e6 < num_parameters(backbone) < 24e6  # torchvision's resnet50 minus its fc: 23.5M
    feats = backbone(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [256, 512, 1024, 2048]
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]


def test_decoders_find_a_peak_at_its_pixel_centre():
    logits = torch.full((1, 68, 16, 16), -50.0)
    logits[0, :, 5, 9] = 50.0  # cell (x=9, y=5) at stride 4 -> pixel centre (9.5*4-0.5, 5.5*4-0.5)
    want = torch.tensor([37.5, 21.5])
    assert torch.allclose(soft_argmax(logits, 4)[0, 0], want, atol=1e-3)
    assert torch.allclose(argmax_decode(logits, 4)[0, 0], want, atol=1.01)  # quarter-cell refinement


def test_soft_argmax_interpolates_between_cells():
    logits = torch.full((1, 68, 8, 8), -50.0)
    logits[0, :, 2, 3] = 10.0
    logits[0, :, 2, 4] = 10.0
    assert abs(float(soft_argmax(logits, 1)[0, 0, 0]) - 3.5) < 1e-3
