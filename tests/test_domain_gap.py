"""The visual-gap measure: crops framed alike, statistics that read what they claim, a classifier that
separates what differs and does not separate what does not, and `landmix gap` on the shared faces."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from _png import assert_drawn, read_png
from landmix import domain_gap, gap_classifier, image_stats
from landmix.generate import generator_version, make_sample


def _noise_crops(n: int, sigma: float, seed: int, size: int = 32, smooth: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(128, sigma, (n, size, size, 3)).astype(np.float32)
    if smooth:
        x = np.stack([cv2.GaussianBlur(c, (0, 0), smooth) for c in x])
    return np.clip(x, 0, 255).astype(np.uint8)


def test_face_crops_frame_the_inner_points_whatever_the_jaw():
    s = make_sample(0, 3, 160)
    a = domain_gap.face_crops([s.image], [s.annotator], 64, seed=0, jitter=0)
    pts70 = np.vstack([s.xray[:68], s.xray[68:]])  # x-ray labels: a different jaw, the same inner points
    b = domain_gap.face_crops([s.image], [pts70], 64, seed=0, jitter=0)
    assert a.shape == (1, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    grey = domain_gap.face_crops([s.image[..., 0]], [s.annotator], 64, seed=0, jitter=0)
    assert np.array_equal(grey[0, ..., 0], grey[0, ..., 2])


def test_image_stats_read_noise_spectrum_and_colour():
    flat = np.full((8, 128, 128, 3), 120, np.uint8)
    noisy = np.clip(flat + np.random.default_rng(0).normal(0, 6, flat.shape), 0, 255).astype(np.uint8)
    s = image_stats.image_stats(noisy)
    # luma of iid noise
    assert np.allclose(s["noise"], 6 * np.sqrt(0.299**2 + 0.587**2 + 0.114**2), rtol=0.15)
    assert abs(np.median(s["spectral_slope"])) < 0.3  # white noise: a flat spectrum
    smooth = image_stats.image_stats(_noise_crops(8, 40, 1, size=128, smooth=2.0))
    assert np.all(smooth["spectral_slope"] < -1.5) and np.all(smooth["high_freq"] < s["high_freq"])
    red = flat.copy()
    red[..., 0] = 250
    r = image_stats.image_stats(red)
    assert (
        np.allclose(r["red"], 250)
        and np.all(r["saturation"] > 0.4)
        and np.allclose(r["contrast"], 0, atol=1e-6)
    )
    table = image_stats.stats_table({"a": s, "b": r})
    assert "| spectral_slope |" in table and table.count("\n") == len(image_stats.STAT_NAMES) + 1


def test_classifier_separates_what_differs_and_not_what_does_not():
    recipe = gap_classifier.ClassifierRecipe(folds=4, epochs=20, width=8)
    sharp, smooth = _noise_crops(40, 30, 0), _noise_crops(40, 30, 1, smooth=1.5)
    differ = gap_classifier.classify(sharp, smooth, recipe, seed=0)
    assert differ["accuracy"] >= 0.9 and differ["auc"] >= 0.95
    same = gap_classifier.classify(sharp, _noise_crops(40, 30, 2), recipe, seed=0)
    assert same["accuracy"] <= 0.75  # one distribution: near chance (80 crops; 0.5 +- 0.11 at 95 %)
    assert len(same["prob"]) == 80 and sum(same["label"]) == 40
    with pytest.raises(ValueError, match="equal crop counts"):
        gap_classifier.classify(sharp, smooth[:30], recipe)


def test_summary_pools_repeats_with_wilson_intervals():
    runs = [
        {"accuracy": 0.75, "accuracy_synthetic": 1.0, "accuracy_real": 0.5, "auc": 0.8, "n": 20},
        {"accuracy": 0.5, "accuracy_synthetic": 0.5, "accuracy_real": 0.5, "auc": 0.6, "n": 20},
    ]
    s = gap_classifier.summarise(runs)
    assert s["accuracy"] == pytest.approx(0.625) and s["accuracy_synthetic"] == pytest.approx(0.75)
    assert s["accuracy_ci"][0] < 0.625 < s["accuracy_ci"][1] and s["auc"] == pytest.approx(0.7)
    lo, hi = gap_classifier.wilson(50, 100)
    assert lo == pytest.approx(0.404, abs=1e-3) and hi == pytest.approx(0.596, abs=1e-3)
    assert math.isclose(sum(gap_classifier.wilson(0, 10)), gap_classifier.wilson(0, 10)[1])


def test_gap_config_refuses_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="sources"):
        domain_gap.GapConfig(out=tmp_path, sources=("photos",))
    with pytest.raises(ValueError, match="n=4"):
        domain_gap.GapConfig(out=tmp_path, n=4)


def test_landmix_gap_on_the_shared_faces(shared_data, tmp_path):
    from landmix import cli

    rc = cli.main(["gap", "--out", str(tmp_path), "--n", "10", "--repeats", "1", "--size", "48", "--look"])
    assert rc == 0
    result = json.loads((tmp_path / "gap.json").read_text())
    assert set(result["sources"]) == {"generated", "facesynthetics"}
    assert result["config"]["look"] == [] and result["generator_version"] == generator_version(())  # flat
    for s in result["sources"].values():
        assert s["n"] == 10 and s["repeats"] == 1
        # 10 crops a class: each accuracy counts crops (k / 10), the whole one is the mean of the two classes'
        for key in ("accuracy_synthetic", "accuracy_real"):
            assert s[key] * 10 == pytest.approx(round(s[key] * 10)), (key, s[key])
        assert s["accuracy"] == pytest.approx((s["accuracy_synthetic"] + s["accuracy_real"]) / 2), s
        assert s["accuracy_ci"][0] <= s["accuracy"] <= s["accuracy_ci"][1] and 0 <= s["auc"] <= 1
    assert set(result["stats"]) == {"real", "generated", "facesynthetics"}
    assert_drawn(read_png(tmp_path / "gap.png"), (200, 3000), (200, 4000), min_colours=50)
    assert "| generated |" in (tmp_path / "gap.md").read_text()
