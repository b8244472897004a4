"""Figures checked as pictures, not as files: decode a PNG and look at what it shows.

img = read_png(path_or_bytes)          # (H, W, 3) uint8 RGB; fails unless it decodes
assert_drawn(img, (300, 500), (400, 700))  # a plot of about that size, with something drawn on it
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read_png(data: bytes | Path) -> np.ndarray:
    """The PNG's pixels as (H, W, 3) uint8 RGB."""
    raw = Path(data).read_bytes() if isinstance(data, Path) else data
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "the PNG does not decode"
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def assert_drawn(
    img: np.ndarray, height: tuple[int, int], width: tuple[int, int], min_colours: int = 8
) -> None:
    """A plot on a white page: its size within the ranges, ink (non-white pixels) on 1-70 % of it, at least
    `min_colours` distinct colours (not one flat fill), and coloured pixels (the data's lines and markers; axes
    and text are grey) on at least 0.2 % of it: empty axes fail."""
    h, w = img.shape[:2]
    assert height[0] <= h <= height[1] and width[0] <= w <= width[1], f"size {h}x{w}"
    ink = (img < 250).any(-1).mean()
    assert 0.01 <= ink <= 0.7, f"{ink:.1%} of the figure is drawn on"
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    assert colours >= min_colours, f"{colours} colours"
    coloured = (img.max(-1).astype(int) - img.min(-1) > 60).mean()
    assert coloured >= 0.002, f"only {coloured:.2%} of the figure is coloured: no data drawn"
