"""Re-composed FaceSynthetics renders: the generator's second mode (`landmix generate --mode recompose`).

Each sample takes one render of a FaceSynthetics folder, cuts the person out with its seg mask, moves the
landmarks to a mildly different expression and pose (mouth opening, smile, brow raise, a few degrees of yaw
faked by shifting points by their mean-face depth), and warps the image with a thin-plate spline fitted to
those landmarks plus fixed anchors on a frame around the head. A random similarity (scale, roll, shift) maps it
into a `size` x `size` crop, composited on a procedural background (landmix.generate.backgrounds) under
a new light (direction, colour, exposure), then blurred and noised like the procedural faces.

Labels stay exact: the TPS is fitted from the new points to the old ones (the backward map that cv2.remap
needs), so it takes each new point exactly onto its old one, and the written labels are the new points through
the similarity. Only the x-ray labels are known for these renders, so no `_ldmks_annotator.txt` is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from landmix.generate.backgrounds import background
from landmix.generate.face3d import mean_shape
from landmix.schemes import IBUG68

LEFT_EYE, RIGHT_EYE = IBUG68.norm_pair  # the outer eye corners (the first 68 points are IBUG68's)

SUFFIXES = ("_ldmks.txt", "_seg.png", ".png")  # recomposed samples have no annotator-convention labels


def _tps_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Thin-plate spline coefficients (N + 3, 2) mapping src (N, 2) onto dst (N, 2) exactly."""
    n = len(src)
    d = np.sqrt(((src[:, None] - src[None]) ** 2).sum(-1))
    k = np.where(d > 0, d * d * np.log(d + 1e-12), 0.0)
    p = np.hstack([np.ones((n, 1)), src])
    a = np.zeros((n + 3, n + 3))
    a[:n, :n], a[:n, n:], a[n:, :n] = k, p, p.T
    b = np.zeros((n + 3, 2))
    b[:n] = dst
    # cv2.solve: a single-threaded LU; numpy's BLAS threads spin for ~50 ms on a busy machine for this 100 x 100
    ok, coef = cv2.solve(a + np.eye(n + 3) * 1e-8, b, flags=cv2.DECOMP_LU)
    if not ok:
        raise ValueError("thin-plate spline system is singular: two control points coincide")
    return coef


def _tps_eval(coef: np.ndarray, src: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Evaluate the spline of `_tps_fit(src, .)` at pts (M, 2) -> (M, 2)."""
    d = np.sqrt(((pts[:, None] - src[None]) ** 2).sum(-1))
    k = np.where(d > 0, d * d * np.log(d + 1e-12), 0.0)
    return k @ coef[: len(src)] + coef[-3] + pts @ coef[-2:]


def _new_expression(rng: np.random.Generator, pts: np.ndarray) -> np.ndarray:
    """(70, 2) landmarks moved to a mild new expression and pose, in the render's pixels."""
    new = pts.copy()
    iod = np.linalg.norm(pts[LEFT_EYE] - pts[RIGHT_EYE])
    down = pts[8] - pts[27]
    down /= np.linalg.norm(down) + 1e-9
    side = np.array([-down[1], down[0]])
    mouth = rng.uniform(0, 0.25) if rng.random() < 0.5 else 0.0
    new[[55, 56, 57, 58, 59, 65, 66, 67]] += down * mouth * iod
    new[[48, 54, 60, 64]] += down * mouth * 0.45 * iod
    new[5:12] += np.outer([0.45, 0.7, 0.9, 1, 0.9, 0.7, 0.45], down) * mouth * iod
    smile = rng.uniform(0, 0.08) if rng.random() < 0.5 else 0.0
    new[[48, 60]] += (-side - down * 0.8) * smile * iod
    new[[54, 64]] += (side - down * 0.8) * smile * iod
    new[17:27] -= down * rng.uniform(-0.03, 0.08) * iod
    # a few degrees of yaw: points move sideways by their mean-face depth (mm -> pixels via the eye distance)
    mean = mean_shape()
    depth = np.r_[mean[:68, 2], mean[68:, 2]]
    mm = iod / np.linalg.norm(mean[LEFT_EYE, :2] - mean[RIGHT_EYE, :2])
    new -= np.outer(np.sin(np.radians(rng.uniform(-8, 8))) * (depth - depth.mean()) * mm, side)
    return new


@lru_cache(maxsize=128)
def _load(root: str, sid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img = cv2.imread(os.path.join(root, f"{sid}.png"), cv2.IMREAD_COLOR)
    seg = cv2.imread(os.path.join(root, f"{sid}_seg.png"), cv2.IMREAD_UNCHANGED)
    pts = np.loadtxt(os.path.join(root, f"{sid}_ldmks.txt"), dtype=np.float64).reshape(-1, 2)
    if img is None or seg is None or pts.shape != (70, 2):
        raise ValueError(f"{root}/{sid}: want {sid}.png, {sid}_seg.png and 70 points in {sid}_ldmks.txt")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), seg, pts


@dataclass(frozen=True)
class Recomposer:
    """The renders of one FaceSynthetics folder (ids with an image, a seg mask and 70 landmarks)."""

    root: str
    ids: tuple[str, ...]

    @classmethod
    def load(cls, root) -> Recomposer:
        root = os.path.abspath(str(root))
        names = set(os.listdir(root)) if os.path.isdir(root) else set()
        ids = sorted(
            n[: -len("_seg.png")]
            for n in names
            if n.endswith("_seg.png")
            if {n[:-8] + ".png", n[:-8] + "_ldmks.txt"} <= names
        )
        if not ids:
            raise FileNotFoundError(
                f"{root}: no FaceSynthetics renders ({{id}}.png, _seg.png, _ldmks.txt) to recompose"
            )
        return cls(root, tuple(ids))

    def make(self, seed: int, index: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, None]:
        """(image (S, S, 3) uint8 RGB, seg (S, S) uint8, xray (70, 2) float32, None) for sample index of seed."""
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 1]))
        img, seg, pts = _load(self.root, self.ids[rng.integers(len(self.ids))])
        new = _new_expression(rng, pts)
        # frame: anchors that do not move keep the warp local to the face
        lo, hi = pts.min(0), pts.max(0)
        c, r = (lo + hi) / 2, (hi - lo).max()
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        ring = np.concatenate([c + np.stack([np.cos(t), np.sin(t)], 1) * r * f for f in (1.1, 2.5)])
        ctrl_dst = np.vstack([new, ring])
        coef = _tps_fit(ctrl_dst, np.vstack([pts, ring]))
        # similarity into the output crop: the 68-point box spans face_frac of the side, rolled and shifted
        scale = size * rng.uniform(0.4, 0.6) / r
        ang = np.radians(rng.normal(0, 10))
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]]) * scale
        shift = (size - 1) / 2 + rng.uniform(-0.06, 0.06, 2) * size - rot @ ((new.min(0) + new.max(0)) / 2)
        labels = (new @ rot.T + shift).astype(np.float32)
        # backward map on a coarse grid: output pixel -> warped render pixel -> original render pixel
        g = max(8, size // 4)
        grid = np.stack(np.meshgrid(np.linspace(0, size - 1, g), np.linspace(0, size - 1, g)), -1).reshape(
            -1, 2
        )
        src = _tps_eval(coef, ctrl_dst, (grid - shift) @ np.linalg.inv(rot).T)
        maps = cv2.resize(
            src.reshape(g, g, 2).astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR
        )
        out_seg = cv2.remap(
            seg, maps[..., 0], maps[..., 1], cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT
        )
        ds = min(1.0, scale * 1.25)  # shrink the render first (area filter) so remap does not alias
        small = cv2.resize(img, None, fx=ds, fy=ds, interpolation=cv2.INTER_AREA) if ds < 1 else img
        maps = ((maps + 0.5) * ds - 0.5).astype(np.float32)  # pixel centres of the shrunk render
        face = cv2.remap(small, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        out_seg[out_seg == 15] = 0 if rng.random() < 0.5 else 15  # keep or drop the clothing
        alpha = cv2.GaussianBlur((out_seg > 0).astype(np.float32), (3, 3), 0)[..., None]
        # new light: a linear ramp in a random direction, a colour, an exposure
        a = rng.uniform(0, 2 * np.pi)
        xs = np.linspace(-1, 1, size, dtype=np.float32)
        ramp = 1 + rng.uniform(0, 0.35) * (np.cos(a) * xs[None, :] + np.sin(a) * xs[:, None])
        light = ramp[..., None] * (rng.uniform(0.75, 1.2) * (1 + rng.normal(0, 0.06, 3))).astype(np.float32)
        out = background(rng, size) * (1 - alpha) + face.astype(np.float32) * light * alpha
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.2, 0.8) * size / 128)
        out += rng.normal(0, rng.uniform(1, 5), out.shape).astype(np.float32)
        return np.clip(out, 0, 255).astype(np.uint8), out_seg, labels, None
