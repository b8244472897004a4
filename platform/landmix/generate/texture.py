"""The textures the look's steps lay on the drawn surfaces: skin, eyes and hair (landmix.generate.look).

- skin step: `skin_texture` (pores, mottling, redness on the cheeks and nose, freckles, blemishes) and
  `makeup` (coloured lips, darkened upper lids) on some faces.
- eyes step: `eye_detail` (iris streaks, a dark limbal ring, the upper lid's shadow on the sclera, lashes).
- hair step: `hair_strands` (noise streaked along the hair's fall) on hair, beard and brows.
Each draws from its step's own rng and works in place on the image, or returns a factor to multiply it by.
"""

from __future__ import annotations

import cv2
import numpy as np

from landmix.generate.draw import blobs, box, splat


def skin_texture(rng: np.random.Generator, face, skin_mask: np.ndarray) -> np.ndarray:
    """(n, n, 3) float32 multiplicative skin texture around 1: pores, mottling, redness, freckles, blemishes."""
    n, mm, p = face.size, face.px_per_mm, face.xray
    pores = cv2.GaussianBlur(rng.standard_normal((n, n), dtype=np.float32), (0, 0), max(0.4, 0.4 * mm))
    cells = int(rng.integers(4, 12))
    mottle = cv2.resize(
        rng.normal(0, 1, (cells, cells)).astype(np.float32), (n, n), interpolation=cv2.INTER_CUBIC
    )
    grain = 1 + pores * np.float32(rng.uniform(0.008, 0.03)) + mottle * np.float32(rng.uniform(0.01, 0.05))
    red = blobs(n, [(np.stack([(p[2] + p[31]) / 2, (p[14] + p[35]) / 2, p[30]]), 9 * mm, 1.0)])
    redness = red * np.float32(rng.uniform(0, 0.12))
    spots = np.zeros((n, n), np.float32)
    if rng.random() < 0.25:  # freckles over the nose and cheeks
        k = int(rng.integers(20, 150))
        centre = np.stack([(p[2] + p[31]) / 2, (p[14] + p[35]) / 2, p[29]])[rng.integers(3, size=k)]
        splat(spots, centre + rng.normal(0, 10 * mm, (k, 2)), rng.uniform(0.3, 1.0, k))
    if rng.random() < 0.4:  # a few blemishes anywhere on the face
        k = int(rng.integers(1, 6))
        splat(spots, p[rng.integers(68, size=k)] + rng.normal(0, 8 * mm, (k, 2)), rng.uniform(0.5, 1.2, k))
    spots = cv2.GaussianBlur(spots, (0, 0), max(0.5, 0.6 * mm))
    off = skin_mask == 0
    channels = []  # one 2D field per channel: numpy is slow on a trailing axis of 3
    for red_k, spot_k in ((0.3, 0.35), (-0.5, 0.5), (-0.4, 0.55)):
        c = grain * (1 + redness * np.float32(red_k)) * (1 - spots * np.float32(spot_k))
        c[off] = 1
        channels.append(c)
    return cv2.merge(channels)


def makeup(rng: np.random.Generator, img: np.ndarray, lips: np.ndarray, lids: np.ndarray) -> None:
    """On about a third of faces: coloured lips and darkened upper lids (masks (n, n) bool), in place."""
    if rng.random() < 0.3:
        img[lips] = (
            img[lips] * 0.55
            + np.array([rng.uniform(120, 200), rng.uniform(20, 70), rng.uniform(40, 90)], np.float32) * 0.45
        )
    if rng.random() < 0.3:
        img[lids] *= np.float32(rng.uniform(0.6, 0.85)) * (1 + rng.normal(0, 0.08, 3)).astype(np.float32)


def eye_detail(
    rng: np.random.Generator, img: np.ndarray, eye: np.ndarray, pupil: np.ndarray, iris_r: float, mm: float
) -> None:
    """Iris streaks and a dark limbal ring, the upper lid's shadow, lashes; clipped to the eye, in place."""
    x0, y0, x1, y1 = box(eye, img.shape, 4 * mm + 2, 3)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(inside, [np.round((eye - [x0, y0]) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    r = np.hypot(xx - pupil[0], yy - pupil[1])
    ang = np.arctan2(yy - pupil[1], xx - pupil[0])
    streak = 1 + 0.18 * np.sin(ang * rng.integers(9, 17) + rng.uniform(0, 6)) * (r < iris_r)
    ring = 1 - 0.45 * np.exp(-(((r - iris_r) / max(0.35, 0.12 * iris_r)) ** 2))
    top = eye[[1, 2]].mean(0)[1]
    lid = 1 - 0.35 * np.clip(1 - (yy - top) / max(1.0, 0.5 * np.ptp(eye[:, 1]) + 1), 0, 1)
    f = (streak * ring * lid)[..., None].astype(np.float32)
    roi = img[y0:y1, x0:x1]
    roi[:] = np.where(inside[..., None] > 0, roi * f, roi)
    lash = (float(rng.uniform(10, 40)),) * 3
    t = np.linspace(0, 1, 4, endpoint=False)[None, :, None]
    # 4 per segment
    roots = (eye[[0, 1, 2], None] + (eye[[1, 2, 3]] - eye[[0, 1, 2]])[:, None] * t).reshape(-1, 2)
    tips = roots + np.stack([rng.normal(0, 0.6, len(roots)), -rng.uniform(1.2, 2.2, len(roots))], 1) * mm
    # (12, 2, 2) segments, 4 fractional bits
    lashes = np.round(np.stack([roots, tips], 1) * 16).astype(np.int32)
    cv2.polylines(img, list(lashes), False, lash, 1, cv2.LINE_AA, 4)


def hair_strands(
    rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, down: np.ndarray, mm: float
) -> None:
    """Streaked noise along the hair's fall (the head's down axis, perturbed) on mask (n, n) bool, in place."""
    if not mask.any():
        return
    n = mask.shape[0]
    k = max(3, int(round(12 * mm)) | 1)
    kernel = np.zeros((k, k), np.float32)
    d = down + rng.normal(0, 0.3, 2)
    d /= np.linalg.norm(d) + 1e-6
    c = k // 2
    cv2.line(kernel, (int(c - d[0] * c), int(c - d[1] * c)), (int(c + d[0] * c), int(c + d[1] * c)), 1.0, 1)
    kernel /= kernel.sum()
    streak = cv2.filter2D(rng.standard_normal((n, n), dtype=np.float32), -1, kernel)
    streak /= streak.std() + 1e-6
    amp = np.float32(rng.uniform(0.15, 0.35))
    img[mask] *= np.clip(1 + amp * streak[mask], 0.3, 2.0)[:, None]
