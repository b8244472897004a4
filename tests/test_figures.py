"""Figures: PNG bytes that MLflow stores as artifacts, decoded and looked at."""

import numpy as np

from _png import assert_drawn, read_png
from landmix import figures

GREEN, RED = (0, 255, 0), (255, 0, 0)


def test_predictions_grid_draws_truth_green_and_prediction_red_on_each_face():
    png = figures.predictions_png(
        np.zeros((3, 32, 32, 3), np.uint8), np.full((3, 68, 2), 10.0), np.full((3, 68, 2), 20.0)
    )
    img = read_png(png)
    assert img.shape == (64, 256, 3)  # 4 columns of 32 px faces at scale 2, the 4th tile empty
    for tile in range(3):
        x0 = 64 * tile
        assert tuple(img[40, x0 + 40]) == GREEN and tuple(img[20, x0 + 20]) == RED  # (p + 0.5) * 2 - 0.5
        assert tuple(img[5, x0 + 55]) == (0, 0, 0)  # the face itself (black here) elsewhere
    assert not img[:, 192:].any()  # the padding tile


def test_ced_plot_shows_its_curve():
    img = read_png(figures.ced_png({"x": np.array([0.01, 0.02, 0.05, 0.2])}))
    assert_drawn(img, (300, 450), (400, 560))
    blue = np.all(np.abs(img.astype(int) - (31, 119, 180)) < 30, -1)  # matplotlib's first line colour
    assert blue.sum() > 200, blue.sum()
