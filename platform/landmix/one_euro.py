"""The One Euro filter against landmark jitter, vectorised over points (numpy only).

Casiez, Roussel and Vogel, "1 Euro Filter: A Simple Speed-based Low-pass Filter for Noisy Input in Interactive
Systems", CHI 2012 (https://gery.casiez.net/1euro/). Each coordinate is smoothed by an exponential low-pass
filter whose cutoff frequency rises with the coordinate's speed:

    alpha(fc, dt) = 1 / (1 + tau / dt),  tau = 1 / (2 pi fc)
    dx_hat = lowpass(alpha(d_cutoff, dt); (x - x_hat_prev) / dt)       the speed, itself smoothed
    fc     = min_cutoff + beta * |dx_hat|
    x_hat  = lowpass(alpha(fc, dt); x)

A still point is smoothed hard (cutoff min_cutoff Hz: little jitter), a moving one lightly (little lag). Speeds
here are in units of the face's size per second (`scale`: the caller passes the inter-ocular distance of the
frame in pixels), so one `beta` serves faces of any size in the picture; the paper's speeds are in the
signal's own units.

    f = OneEuro(min_cutoff=4.0, beta=30.0)
    smooth = [f(points, t, scale) for points, t, scale in frames]   # points (K, 2), t in seconds
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroParams:
    """The filter's parameters (written beside every smoothed output)."""

    # the defaults: measured on a synthetic clip with known truth (bench/video.py, docs/results/video.md): the
    # lowest 90th-percentile jitter within 0.02 NME points of the raw; a lower cutoff or beta lags a moving face
    min_cutoff: float = 4.0  # Hz: the cutoff of a still point; lower = smoother and more lag at low speed
    beta: float = 30.0  # Hz per (face size / s): how fast the cutoff rises with speed; higher = less lag
    d_cutoff: float = 1.0  # Hz: the cutoff of the speed's own low-pass filter (the paper's default)

    def __post_init__(self):
        for name in ("min_cutoff", "d_cutoff"):
            if not getattr(self, name) > 0:
                raise ValueError(f"OneEuroParams.{name}={getattr(self, name)}: give a cutoff above 0 Hz")
        if self.beta < 0:
            raise ValueError(f"OneEuroParams.beta={self.beta}: give 0 (a fixed cutoff) or more")


def alpha(cutoff, dt: float):
    """The exponential smoothing factor of a low-pass filter with this cutoff (Hz) at time step dt (s)."""
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuro:
    """The filter's state for one face's points; `reset()` when the face is lost (a new face starts fresh)."""

    def __init__(self, params: OneEuroParams | None = None, **kwargs):
        self.params = params or OneEuroParams(**kwargs)
        self.reset()

    def reset(self) -> None:
        self.x = self.dx = self.t = None  # (K, 2) last smoothed points, (K, 2) their smoothed speed, seconds

    def __call__(self, points: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        """Smoothed points (K, 2) float64 for raw points (K, 2) at time t seconds; scale: the face's size in the
        points' units (speeds are divided by it before beta applies)."""
        x = np.asarray(points, np.float64)
        if self.x is None or t <= self.t:  # the first frame (or time not moving on) passes unchanged
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        p, dt = self.params, float(t) - self.t
        dx = (x - self.x) / dt
        self.dx = self.dx + alpha(p.d_cutoff, dt) * (dx - self.dx)
        speed = np.linalg.norm(self.dx, axis=-1, keepdims=True) / max(float(scale), 1e-9)  # per point
        a = alpha(p.min_cutoff + p.beta * speed, dt)
        self.x, self.t = self.x + a * (x - self.x), float(t)
        return self.x.copy()


def smooth_track(points: np.ndarray, times: np.ndarray, scales=None, params: OneEuroParams | None = None):
    """A whole track at once: points (T, K, 2), times (T,) s, scales (T,) or None -> smoothed (T, K, 2);
    frames whose points are NaN (no face) pass as NaN and restart the filter after them."""
    f = OneEuro(params)
    out = np.full(np.shape(points), np.nan)
    for i, (p, t) in enumerate(zip(points, times)):
        if np.isnan(p).any():
            f.reset()
            continue
        out[i] = f(p, t, 1.0 if scales is None else scales[i])
    return out
