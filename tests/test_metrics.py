"""Metrics: NME from the scheme's pair, failure rate, AUC, CED and per-subset summaries."""

import numpy as np
import pytest

from landmix import metrics


def _face():
    pts = np.zeros((68, 2), np.float32)
    pts[:, 0] = np.linspace(0, 100, 68)
    pts[36], pts[45] = (10, 50), (60, 50)  # inter-ocular 50 px
    return pts


def test_nme_divides_by_the_outer_eye_corner_distance():
    gt = _face()[None]
    pred = gt + np.array([3.0, 4.0], np.float32)  # 5 px off at every point
    assert metrics.nme(pred, gt) == pytest.approx([0.1])


def test_nme_rejects_wrong_shapes_and_degenerate_faces():
    with pytest.raises(ValueError):
        metrics.nme(np.zeros((1, 70, 2)), np.zeros((1, 70, 2)))
    with pytest.raises(ValueError, match="inter-ocular"):
        metrics.nme(np.zeros((1, 68, 2)), np.zeros((1, 68, 2)))


def test_failure_rate_auc_and_ced():
    errors = np.array([0.0, 0.02, 0.05, 0.2])
    assert metrics.failure_rate(errors) == 0.25
    x, y = metrics.ced(errors)
    assert y[0] == 0.25 and y[-1] == 0.75 and np.all(np.diff(y) >= 0)
    assert metrics.auc(np.zeros(5)) == pytest.approx(1.0, abs=1e-3)
    assert metrics.auc(np.full(5, 0.5)) == 0.0
    # uniform errors on [0, 0.1]: the CED is the diagonal, area 1/2
    assert metrics.auc(np.linspace(0, 0.1, 10001)) == pytest.approx(0.5, abs=1e-3)


def test_summary_and_per_subset():
    s = metrics.summary(np.array([0.04, 0.06, 0.2]))
    assert set(s) == {"nme", "fr@10", "auc@10", "n"} and s["n"] == 3 and s["fr@10"] == pytest.approx(1 / 3)
    per = metrics.per_subset(np.array([0.04, 0.06, 0.2]), ["afw", "helen", "helen"])
    assert per["afw"]["n"] == 1 and per["helen"]["n"] == 2 and per["all"]["n"] == 3


def test_subset_of_reads_300w_folder_names():
    assert metrics.subset_of("/data/300w/afw/123_1.jpg") == "afw"
    assert metrics.subset_of("helen/trainset/1.jpg") == "helen"
    assert metrics.subset_of("x/y.png") == "other"
