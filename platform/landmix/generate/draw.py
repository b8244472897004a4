"""What a face is drawn with: the seg classes (`SEG`) and the primitives that draw on an image and its mask.

Polygons with sub-pixel vertices (`SHIFT` fractional bits), anti-aliased in the image and hard-edged in the
mask; soft fields stamped at sub-pixel points (bilinear splats, Gaussian bumps); colours as OpenCV takes them.

Seg ids follow FaceSynthetics as released, whose left/right name the IMAGE side: the image-left eye (points
36-41, pupil 68) is 4 "left eye", the image-right eye (42-47, pupil 69) is 3; brows 6 / 5; ears 8 / 7. Hands
and objects in front of the face are 255 (ignore).
"""

from __future__ import annotations

import cv2
import numpy as np

SEG = {
    "bg": 0,
    "skin": 1,
    "nose": 2,
    "eye_r": 3,
    "eye_l": 4,
    "brow_r": 5,
    "brow_l": 6,
    "ear_r": 7,
    "ear_l": 8,
    "mouth": 9,
    "lip_top": 10,
    "lip_bottom": 11,
    "neck": 12,
    "hair": 13,
    "beard": 14,
    "clothing": 15,
    "glasses": 16,
    "headwear": 17,
    "facewear": 18,
    "ignore": 255,
}
SHIFT = 4  # fixed-point bits for sub-pixel polygon vertices


def fixed(pts: np.ndarray) -> np.ndarray:
    """(N, 1, 2) int32: points (..., 2) in pixels as OpenCV's fixed-point vertices (`SHIFT` fractional bits)."""
    return np.round(np.asarray(pts, np.float64) * (1 << SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def fill(img, seg, pts, color, cls=None):
    """Fill the polygon pts (N, 2) with `color` in img (anti-aliased) and, when cls is given, with class cls in
    seg (hard-edged)."""
    cv2.fillPoly(img, [fixed(pts)], color, cv2.LINE_AA, SHIFT)
    if cls is not None:
        cv2.fillPoly(seg, [fixed(pts)], int(cls), cv2.LINE_8, SHIFT)


def of_class(seg: np.ndarray, *names: str) -> np.ndarray:
    """(n, n) bool: where seg holds one of the SEG classes `names` (a lookup table: np.isin sorts per call)."""
    table = np.zeros(256, bool)
    table[[SEG[k] for k in names]] = True
    return table[seg]


def colour(rgb) -> tuple:
    """An RGB triple as the tuple of floats OpenCV draws with, clipped to 0..255."""
    return tuple(float(v) for v in np.clip(rgb, 0, 255))


def ellipse(centre, axes, angle_deg, n=24) -> np.ndarray:
    """(n, 2): points round the ellipse of `axes` (half-widths, px) about `centre`, turned by angle_deg."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    a = np.radians(angle_deg)
    x, y = axes[0] * np.cos(t), axes[1] * np.sin(t)
    return np.stack([centre[0] + x * np.cos(a) - y * np.sin(a), centre[1] + x * np.sin(a) + y * np.cos(a)], 1)


def box(pts: np.ndarray, shape: tuple, before: float, after: float) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the whole-pixel box round `pts` (N, 2), `before` px above and left of them and `after` px
    below and right, clipped to an image of `shape`; empty when x1 <= x0 or y1 <= y0."""
    x0, y0 = np.floor(pts.min(0) - before).astype(int)
    x1, y1 = np.ceil(pts.max(0) + after).astype(int)
    h, w = shape[:2]
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def times(img: np.ndarray, field: np.ndarray) -> np.ndarray:
    """img (n, n, 3) float32 times field (n, n) float32 in every channel (OpenCV: 4x numpy's broadcast)."""
    return cv2.multiply(img, cv2.merge([field, field, field]))


def splat(field: np.ndarray, pts: np.ndarray, amp) -> None:
    """Add amp at sub-pixel points (bilinear), in place; points outside are dropped."""
    h, w = field.shape
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    amp = np.broadcast_to(np.asarray(amp, np.float64), (len(pts),))
    x0, y0 = np.floor(pts[:, 0]).astype(int), np.floor(pts[:, 1]).astype(int)
    fx, fy = pts[:, 0] - x0, pts[:, 1] - y0
    for dx, dy, wt in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        x, y = x0 + dx, y0 + dy
        ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        np.add.at(field, (y[ok], x[ok]), (amp * wt)[ok])


def blobs(n: int, groups: list[tuple[np.ndarray, float, float]]) -> np.ndarray:
    """Sum of Gaussian bumps: groups of (points (K, 2), sigma px, height px at the peak), each stamped into its
    own +-3 sigma window (a blur of the whole image per group cost more than the rest of the step); a group's
    windows are computed at once, into the image padded by the widest window, so none is clipped."""
    pad = 2 * max(int(np.ceil(3 * max(float(sigma), 0.3))) for _, sigma, _ in groups)  # a window's centre
    out = np.zeros((n + 2 * pad, n + 2 * pad), np.float32)
    for pts, sigma, height in groups:
        sigma = max(float(sigma), 0.3)
        r = int(np.ceil(3 * sigma))
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        centre = np.round(pts).astype(int)
        keep = np.all((centre > -r - 1) & (centre < n + r), axis=1)  # a window overlapping the image
        pts, centre = pts[keep], centre[keep]
        offsets = np.arange(-r, r + 1)
        # (K, 2, W)
        g = np.exp(-((centre[:, :, None] + offsets - pts[:, :, None]) ** 2) / (2 * sigma * sigma))
        tiles = (height * g[:, 1, :, None] * g[:, 0, None, :]).astype(np.float32)
        for (x, y), tile in zip(centre + pad - r, tiles):
            out[y : y + 2 * r + 1, x : x + 2 * r + 1] += tile
    return out[pad : pad + n, pad : pad + n]
