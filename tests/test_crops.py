"""Crops: point mapping through crop+resize, crop statistics, the fitted distribution and its draws."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from landmix import crops


def _face(n: int = 68, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 1, (n, 2)) * [80, 100] + [150, 120]).astype(np.float32)  # (K, 2)


def test_crop_image_keeps_points_on_their_pixels_with_padding():
    image = np.zeros((300, 400, 3), np.uint8)
    pts = np.array([[20.0, 30.0], [380.0, 250.0], [200.0, 150.0]], np.float32)
    for x, y in pts.astype(int):
        cv2.circle(image, (int(x), int(y)), 4, (255, 255, 255), -1)
    box = (-60.0, -90.0, 500.0)  # leaves the image on the top and left: zero padding there
    crop, out = crops.crop_image(image, pts, box, 128)
    assert crop.shape == (128, 128, 3) and out.dtype == np.float32
    yy, xx = np.mgrid[:128, :128]
    for x, y in out:
        near = (np.abs(xx - x) < 4) & (np.abs(yy - y) < 4)
        g = crop[..., 0].astype(float) * near
        centroid = np.array([(g * xx).sum(), (g * yy).sum()]) / g.sum()
        assert np.abs(centroid - [x, y]).max() < 0.35
    assert crop[:10, :10].max() == 0  # padding


def test_box_for_reproduces_scale_and_offset():
    pts = _face()[None].repeat(3, 0)
    boxes = np.array(
        [crops.box_for(pts[0], s, dx, dy) for s, dx, dy in [(2.0, 0, 0), (1.4, 0.1, -0.05), (3, 0, 0.2)]]
    )
    stats = crops.box_stats(pts, boxes)
    np.testing.assert_allclose(stats[:, 0], [2.0, 1.4, 3.0], atol=0.02)
    np.testing.assert_allclose(stats[:, 1:3], [[0, 0], [0.1, -0.05], [0, 0.2]], atol=0.01)
    np.testing.assert_allclose(stats[:, 3], 1.0)


def test_whole_image_stats_match_a_centred_crop():
    pts = _face()
    box = crops.box_for(pts, 2.0)
    crop, cpts = crops.crop_image(np.zeros((400, 400, 3), np.uint8), pts, box, 256)
    stats = crops.crop_stats(cpts[None], 256, 256)[0]
    np.testing.assert_allclose(stats, [2.0, 0, 0, 1.0], atol=0.02)


def test_distribution_fits_and_samples_deterministically_per_id():
    rng = np.random.default_rng(1)
    stats = np.column_stack(
        [
            np.exp(rng.normal(np.log(1.8), 0.1, 4000)),
            rng.normal(0.05, 0.02, 4000),
            rng.normal(-0.1, 0.03, 4000),
            np.ones(4000),
        ]
    )
    dist = crops.CropDistribution.fit(stats)
    np.testing.assert_allclose(dist.mean, [np.log(1.8), 0.05, -0.1], atol=0.01)
    assert dist.canonical_scale == pytest.approx(1.8, rel=0.01)
    draws = np.array([dist.sample(f"face{i}", seed=0) for i in range(2000)])
    np.testing.assert_allclose(np.log(draws[:, 0]).std(), 0.1, rtol=0.1)
    assert dist.sample("face7", 0) == dist.sample("face7", 0) != dist.sample("face7", 1)


def test_distribution_save_load_and_plot(tmp_path):
    dist = crops.CropDistribution.fit(
        np.column_stack([np.linspace(1.5, 2.5, 10), np.zeros((10, 2)), np.ones(10)])
    )
    dist.save(tmp_path / "d.json")
    assert crops.CropDistribution.load(tmp_path / "d.json") == dist
    crops.plot_coverage({"a": np.ones((5, 4)), "b": np.full((5, 4), 2.0)}, tmp_path / "c.png")
    assert cv2.imread(str(tmp_path / "c.png")) is not None


def test_fit_needs_two_faces():
    with pytest.raises(ValueError, match="at least 2"):
        crops.CropDistribution.fit(np.ones((1, 4)))
