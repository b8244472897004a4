"""Figures: PNG bytes that MLflow stores as artifacts."""

import numpy as np

from landmix import figures


def test_figures_are_pngs():
    png = figures.predictions_png(
        np.zeros((3, 32, 32, 3), np.uint8), np.full((3, 68, 2), 10.0), np.full((3, 68, 2), 20.0)
    )
    assert png[:4] == b"\x89PNG" and figures.ced_png({"x": np.array([0.01])})[:4] == b"\x89PNG"
