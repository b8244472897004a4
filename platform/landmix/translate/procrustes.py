"""Similarity alignment of 2D shapes: each face onto a reference (Umeyama), and the Procrustes mean shape. The
learned translator works in these pose-normalised coordinates."""

from __future__ import annotations

import numpy as np

from landmix.schemes import Scheme


def align(pts: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Similarities (no reflection) taking each face onto ref, least squares (Umeyama).

    pts: (N, K, 2), ref: (K, 2). Returns a (N, 2, 2) = scale * rotation and t (N, 2): a @ p + t ~ ref.
    """
    pts = np.asarray(pts, np.float64)
    mu, mu_ref = pts.mean(1), ref.mean(0)
    p, q = pts - mu[:, None], ref - mu_ref
    # For 2D similarity: a = [[c, -s], [s, c]] with (c, s) = (sum p.q, sum p x q) / sum |p|^2.
    denom = (p**2).sum((1, 2))
    c = (p * q).sum((1, 2)) / denom
    s = (p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]).sum(1) / denom
    a = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    t = mu_ref - np.einsum("nij,nj->ni", a, mu)
    return a, t


def mean_shape(pts: np.ndarray, scheme: Scheme, iters: int = 4) -> np.ndarray:
    """Generalised Procrustes mean of pts (N, K, 2), upright (eye line along +x), centred, unit RMS."""
    ref = pts[0] - pts[0].mean(0)
    for _ in range(iters):
        a, t = align(pts, ref)
        ref = (np.einsum("nij,nkj->nki", a, pts) + t[:, None]).mean(0)
        ref = ref - ref.mean(0)
        ref = ref / np.sqrt((ref**2).sum(1).mean())
    eye_l = ref[list(scheme.groups["eye_image_left"])].mean(0)
    eye_r = ref[list(scheme.groups["eye_image_right"])].mean(0)
    ang = np.arctan2(*(eye_r - eye_l)[::-1])
    rot = np.array([[np.cos(-ang), -np.sin(-ang)], [np.sin(-ang), np.cos(-ang)]])
    return ref @ rot.T
