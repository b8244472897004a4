"""Figures of a model's results as PNG bytes, ready to log as MLflow artifacts (Tracker.log_figure_files).

    ced_png({"test": errors})                    # (N,) per-face NME -> the CED curve, AUC in the legend
    predictions_png(images, pred, gt)            # faces with true (green) and predicted (red) points

matplotlib and OpenCV are imported when a figure is drawn, not at import.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from landmix.metrics import auc, ced


def ced_png(curves: dict[str, np.ndarray], threshold: float = 0.10) -> bytes:
    """A CED plot (share of faces with NME <= x) for each name -> per-image NMEs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for name, errors in curves.items():
        x, y = ced(errors, threshold)
        ax.plot(x, y, label=f"{name} (AUC {auc(errors, threshold):.3f}, n={len(errors)})")
    ax.set(xlabel="NME (inter-ocular)", ylabel="share of faces", xlim=(0, threshold), ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        fig.savefig(f.name, bbox_inches="tight")
        plt.close(fig)
        return Path(f.name).read_bytes()


def predictions_png(
    images: np.ndarray, pred: np.ndarray, gt: np.ndarray, cols: int = 4, scale: int = 2
) -> bytes:
    """A grid of faces: ground truth green, prediction red. images (N, S, S, 3) uint8; pts (N, K, 2)."""
    import cv2

    tiles = []
    for img, p, g in zip(images, pred, gt):
        t = cv2.resize(np.ascontiguousarray(img), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        for pts, color in ((g, (0, 255, 0)), (p, (255, 0, 0))):
            for x, y in (np.asarray(pts) + 0.5) * scale - 0.5:
                cv2.circle(t, (int(round(x)), int(round(y))), 1, color, -1)
        tiles.append(t)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + cols], 1) for i in range(0, len(tiles), cols)]
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
    return buf.tobytes()
