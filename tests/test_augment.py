"""Augmentation: identity at strength 0, points follow the pixels, the flip permutes indices, seeds."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest

from landmix import augment
from landmix.schemes import IBUG68, flip_points


def _crop(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    pts = rng.uniform(30, 98, (68, 2)).astype(np.float32)
    return image, pts


def test_strength_zero_is_identity():
    image, pts = _crop()
    out, p = augment.make_augmenter(augment.preset("none"), 128, seed=0)(image, pts)
    assert out is image and np.array_equal(p, pts)


def test_points_follow_pixels_through_geometry_and_flip():
    aug = augment.Augmenter(1.0, 128, seed=3, photometric=False)
    yy, xx = np.mgrid[:128, :128]
    for _ in range(25):
        image = np.zeros((128, 128, 3), np.uint8)
        cv2.circle(image, (50, 60), 2, (255, 255, 255), -1)
        pts = np.full((68, 2), 10.0, np.float32)
        pts[36] = (50, 60)  # the image-left eye corner sits on the dot
        out, p = aug(image, pts)
        g = out.sum(-1).astype(float)
        centroid = np.array([(g * xx).sum(), (g * yy).sum()]) / g.sum()
        hits = np.linalg.norm(p - centroid, axis=1) < 0.5
        assert hits.any(), "no point follows the dot"
        # after a flip the dot's point is 45 (the image-right corner), else still 36
        assert set(np.flatnonzero(hits)) <= {36, 45}


def test_out_size_returns_the_jittered_centre_of_a_context_crop():
    """Training hands the augmenter a context crop and takes back the model-input crop, its centre: at
    strength 0 exactly the centre; at any strength the points still follow the pixels."""
    image, pts = _crop()
    out, p = augment.make_augmenter(0.0, 128, seed=0, out_size=96)(image, pts)
    assert (
        out.shape == (96, 96, 3) and np.array_equal(out, image[16:112, 16:112]) and np.allclose(p, pts - 16)
    )
    aug = augment.Augmenter(1.0, 128, out_size=96, seed=1, photometric=False)
    yy, xx = np.mgrid[:96, :96]
    for _ in range(10):
        dot = np.zeros((128, 128, 3), np.uint8)
        cv2.circle(dot, (64, 60), 2, (255, 255, 255), -1)
        pts = np.full((68, 2), 64.0, np.float32)
        pts[30] = (64, 60)  # the nose tip (on the midline: the flip keeps its index)
        out, p = aug(dot, pts)
        g = out.sum(-1).astype(float)
        assert out.shape == (96, 96, 3) and g.sum() > 0
        centroid = np.array([(g * xx).sum(), (g * yy).sum()]) / g.sum()
        assert np.linalg.norm(p[30] - centroid) < 0.6


def test_flip_permutes_indices_through_the_scheme():
    image, pts = _crop()
    aug = augment.Augmenter(1e-9, 128, seed=0)  # transforms off (p ~ 0), the flip on half the time
    flipped = 0
    for _ in range(20):
        out, p = aug(image, pts)
        if np.array_equal(out, image):
            np.testing.assert_allclose(p, pts, atol=1e-4)
        else:
            flipped += 1
            assert np.array_equal(out, image[:, ::-1])
            np.testing.assert_allclose(p, flip_points(pts, 128, IBUG68), atol=1e-4)
    assert 3 <= flipped <= 17


def test_full_strength_keeps_shapes_and_is_seeded():
    image, pts = _crop()
    a, b = augment.make_augmenter(1.0, 128, seed=7), augment.make_augmenter(1.0, 128, seed=7)
    for _ in range(8):
        (ia, pa), (ib, pb) = a(image, pts), b(image, pts)
        assert ia.shape == (128, 128, 3) and ia.dtype == np.uint8 and pa.shape == (68, 2)
        assert np.array_equal(ia, ib) and np.array_equal(pa, pb)


def test_augmenter_pickles_for_ray_workers():
    aug = augment.make_augmenter(augment.PRESETS["medium"], 128, seed=1)
    aug(*_crop())
    clone = pickle.loads(pickle.dumps(aug))
    out, p = clone(*_crop())
    assert out.shape == (128, 128, 3)


def test_bad_strength_and_preset_say_what_is_allowed():
    with pytest.raises(ValueError, match="must lie in"):
        augment.make_augmenter(1.5, 128)
    with pytest.raises(ValueError, match="heavy"):
        augment.preset("extreme")
