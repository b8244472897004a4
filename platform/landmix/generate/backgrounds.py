"""The backgrounds behind a generated face: the flat drawing's and the background step's.

`background` is the flat drawing's (and the re-composed renders', landmix.generate.recompose): a gradient, a
smooth random texture or clutter (rectangles, circles and lines in saturated colours), or a mix. The
background step (landmix.generate.look) paints `natural_background` instead: a natural-image spectrum
(1/f^beta noise in muted colours) with soft out-of-focus shapes; the flat background's draws are made either
way (`paint=False`), so that the rest of the sample draws what it draws in the flat drawing.
"""

from __future__ import annotations

import cv2
import numpy as np

from landmix.generate.draw import SHIFT, colour, fixed


def background(rng: np.random.Generator, size: int, paint: bool = True) -> np.ndarray | None:
    """(size, size, 3) float32: a gradient, a smooth texture or clutter, or a mix. paint=False makes the same
    draws from rng and paints nothing (returns None): the look's own background replaces it, and the rest of
    the sample must draw what it draws in the flat drawing."""
    kind = rng.integers(4)
    c0, c1 = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    img = None
    if paint:
        t = np.linspace(0, 1, size, dtype=np.float32)
        ramp = (np.float32(np.cos(a)) * t[None, :] + np.float32(np.sin(a)) * t[:, None] + 1.5) / 3
        img = c0 + (c1 - c0) * ramp[..., None]
    if kind >= 1:  # smooth random texture at a random scale
        cells = int(rng.integers(3, 24))
        noise = rng.uniform(-1, 1, (cells, cells, 3)).astype(np.float32)
        amp = rng.uniform(10, 70)
        if paint:
            img += cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC) * amp
    if kind >= 2:  # clutter: rectangles, circles and lines in random colours
        for _ in range(int(rng.integers(3, 14))):
            col, p = colour(rng.uniform(0, 255, 3)), rng.uniform(-0.2, 1.2, 4) * size
            shape = rng.integers(3)
            if shape == 0:
                if paint:
                    cv2.rectangle(img, fixed(p[:2])[0, 0], fixed(p[2:])[0, 0], col, -1, cv2.LINE_AA, SHIFT)
            elif shape == 1:
                radius = int(rng.uniform(0.03, 0.3) * size * 16)
                if paint:
                    cv2.circle(img, fixed(p[:2])[0, 0], radius, col, -1, cv2.LINE_AA, SHIFT)
            else:
                thick = max(1, int(rng.uniform(0.005, 0.04) * size))
                if paint:
                    cv2.line(img, fixed(p[:2])[0, 0], fixed(p[2:])[0, 0], col, thick, cv2.LINE_AA, SHIFT)
        if kind == 3:
            k = int(rng.integers(1, 4)) * 2 + 1
            if paint:
                img = cv2.GaussianBlur(img, (k, k), 0)
    return np.clip(img, 0, 255).astype(np.float32) if paint else None


def natural_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float32: 1/f^beta noise (beta 1.6-2.6; a pyramid of noise octaves, each octave's
    amplitude scaled by (size / cells)^(beta / 2 - 1)) in a muted palette, and blurred shapes."""
    beta = rng.uniform(1.6, 2.6)
    lum, cells = np.zeros((1, 1), np.float32), 1
    while cells < size:  # coarse to fine: upsample what is there, add this octave's noise
        cells = min(2 * cells, size)
        octave = rng.standard_normal((cells, cells), dtype=np.float32) * np.float32(
            (size / cells) ** (beta / 2 - 1)
        )
        lum = cv2.resize(lum, (cells, cells), interpolation=cv2.INTER_CUBIC) + octave
    lum = (lum - lum.mean()) / (lum.std() + 1e-6)
    base = rng.uniform(40, 200)
    tint = rng.normal(0, 0.12, 3).astype(np.float32)
    img = base * (1 + tint) + lum[..., None] * (rng.uniform(15, 50) * (1 + rng.normal(0, 0.15, 3))).astype(
        np.float32
    )
    for _ in range(int(rng.integers(0, 6))):  # out-of-focus objects: soft ellipses in muted colours
        c, ax = rng.uniform(-0.1, 1.1, 2) * size, rng.uniform(0.05, 0.5, 2) * size
        angle, sigma = rng.uniform(0, 180), rng.uniform(1, 6) * size / 128
        col = (base * (1 + rng.normal(0, 0.35, 3)) * rng.uniform(0.5, 1.5)).astype(np.float32)
        # blended only in the box the blurred ellipse can reach (its axes + the blur kernel's radius)
        reach = int(max(ax)) + int(np.ceil(4 * sigma)) + 2
        x0, y0 = max(int(c[0]) - reach, 0), max(int(c[1]) - reach, 0)
        x1, y1 = min(int(c[0]) + reach + 1, size), min(int(c[1]) + reach + 1, size)
        if x1 <= x0 or y1 <= y0:
            continue
        layer = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.ellipse(layer, (int(c[0]) - x0, int(c[1]) - y0), (int(ax[0]), int(ax[1])), angle, 0, 360, 1.0, -1)
        layer = cv2.GaussianBlur(layer, (0, 0), sigma)[..., None]
        roi = img[y0:y1, x0:x1]
        roi[:] = roi * (1 - layer) + col * layer
    return np.clip(img, 0, 255).astype(np.float32)
