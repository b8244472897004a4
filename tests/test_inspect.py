"""`landmix inspect` on small manifests of the shared data: files written, spread and outliers sensible."""

from __future__ import annotations

import json

import cv2
import numpy as np

from _fixtures import real_rows, synthetic_rows, write_manifest
from landmix import cli, inspect


def test_inspect_writes_figures_and_finds_a_corrupted_label(shared_data, tmp_path):
    rows = real_rows(shared_data, 40)
    bad = np.asarray(rows[5]["landmarks"], np.float32)
    rows[5]["landmarks"] = bad[np.random.default_rng(0).permutation(68)].tolist()  # shuffled labels
    real = write_manifest(rows, tmp_path / "real.parquet")
    syn = write_manifest(synthetic_rows(shared_data, 20), tmp_path / "syn.parquet")
    out = tmp_path / "inspect"
    assert cli.main(["inspect", str(real), str(syn), "--out", str(out), "--n", "8", "--worst", "4"]) == 0
    for name in ("real_sheet", "real_outliers", "syn_sheet", "syn_outliers", "spread"):
        image = cv2.imread(str(out / f"{name}.png"))
        assert image is not None and image.std() > 5, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["real"]["outliers"][0]["id"] == rows[5]["id"]
    assert summary["syn"]["faces"] == 20 and summary["syn"]["scheme"] == "synth70"


def test_contour_points_spread_most_on_real_faces(shared_data):
    rows = real_rows(shared_data, 80)
    pts = np.array([r["landmarks"] for r in rows], np.float64)
    s = inspect.label_spread(pts)
    jaw, eyes = s["per_point"][:17].mean(), s["per_point"][36:48].mean()
    assert jaw > 1.5 * eyes
    np.testing.assert_allclose(np.linalg.norm(s["mean"][36] - s["mean"][45]), 1.0, rtol=1e-6)
