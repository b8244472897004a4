"""Paired bootstrap of a study's trials and real-image equivalence: the numbers behind the report's intervals.

    boot = bootstrap(selected_trials, per_face_errors, n_boot=1000)    # (B, C) resampled mean NME per cell
    lo, hi = interval(boot.samples)                                      # 95 % percentile interval per cell
    equivalent_real_faces(nme, real_n, real_nme)                         # one NME on the real-only curve
    equivalent_real_faces_batch(samples, real_n, real_samples)           # every resample on its own curve

Seeds and test faces are resampled with replacement, the same draw for every cell (paired), so differences
between arms keep their correlation. Pure numpy and pandas: the report (`landmix.report`) owns the wording.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

CELL = ["strategy", "n_real"]


@dataclass(frozen=True)
class Bootstrap:
    """Each (strategy, n_real) cell's mean test NME over seeds, as measured and under B paired resamples."""

    cells: pd.DataFrame  # (C rows) strategy, n_real
    trials: pd.DataFrame  # the selected trials behind the cells
    point: np.ndarray  # (C,) mean over seeds of the trials' test NME, fraction
    samples: np.ndarray  # (B, C) the same under each resample; NaN where a resample drew none of its seeds
    n_faces: int  # test faces resampled (0: seeds only, no per-face errors given)


def bootstrap(
    selected: pd.DataFrame,
    errors: dict[str, np.ndarray] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    order: tuple[str, ...] = (),
) -> Bootstrap:
    """Resample seeds and test faces with replacement, B times, the same draw for every cell (paired), so that
    differences between arms keep their correlation. A cell's resampled NME is the mean over drawn seeds of
    the mean over drawn faces of that seed's per-face errors; without `errors` (None or empty), the trials'
    `nme` (seeds resampled only). Seeds are drawn from all the trials' seeds: a cell that lacks some has NaN
    in the resamples that drew none of its own. Cells are listed by strategy in `order` (others after), then
    n_real."""
    cells = selected[CELL].drop_duplicates()
    rank = cells["strategy"].map({s: i for i, s in enumerate(order)}).fillna(len(order))
    cells = cells.assign(_r=rank).sort_values(["_r", "n_real"]).drop(columns="_r").reset_index(drop=True)
    cell_of = {(s, n): i for i, (s, n) in enumerate(zip(cells["strategy"], cells["n_real"]))}
    col = np.array([cell_of[k] for k in zip(selected["strategy"], selected["n_real"])], dtype=int)  # (T,)
    seeds, seed_of = np.unique(selected["seed"].to_numpy(), return_inverse=True)  # (S,), (T,)
    member = np.zeros((len(selected), len(cells)))  # (T, C) one-hot: trial t belongs to cell c
    member[np.arange(len(selected)), col] = 1.0
    rng = np.random.default_rng(seed)
    w = rng.multinomial(len(seeds), np.full(len(seeds), 1 / len(seeds)), size=n_boot)[:, seed_of]  # (B, T)
    nme = selected["nme"].to_numpy(float)
    if not errors:  # None or {}: no per-face errors kept (e.g. the optimising mode)
        per_trial, n_faces = np.broadcast_to(nme, w.shape), 0  # (B, T)
    else:
        absent = [r for r in selected["run"] if r not in errors]
        if absent:
            raise ValueError(
                f"errors has no per-face test errors for finished run(s) {absent[:5]}: pass "
                "one array per row with status 'ok' (or errors=None to resample seeds only)"
            )
        e = np.stack([np.asarray(errors[r], float) for r in selected["run"]])  # (T, M); ragged arrays fail
        off = np.abs(e.mean(1) - nme) > 1e-4  # 0.01 % NME: far above float32 rounding
        if off.any():
            raise ValueError(
                f"the per-face errors of run(s) {list(selected['run'][off])[:5]} do not average "
                "to their nme: errors must be each trial's test faces, in the same order"
            )
        n_faces = e.shape[1]
        faces = rng.multinomial(n_faces, np.full(n_faces, 1 / n_faces), size=n_boot)  # (B, M) draw counts
        per_trial = faces @ e.T / n_faces  # (B, T)
    with np.errstate(invalid="ignore", divide="ignore"):
        samples = (w * per_trial) @ member / (w @ member)  # (B, C)
    point = np.bincount(col, weights=nme, minlength=len(cells)) / np.bincount(col, minlength=len(cells))
    return Bootstrap(cells, selected, point, samples, n_faces)


def interval(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column of (B, C) samples, ignoring NaN. Picks observed values (no
    interpolation), so that +inf (better than every real-only point) stays +inf and never becomes NaN."""
    q = [(1 - level) / 2, (1 + level) / 2]
    ends = [
        np.quantile(c[~np.isnan(c)], q, method="inverted_cdf") if (~np.isnan(c)).any() else [np.nan] * 2
        for c in np.asarray(samples, float).T
    ]
    lo, hi = np.array(ends, float).reshape(-1, 2).T
    return lo, hi


def equivalent_real_faces(nme: float, real_n: np.ndarray, real_nme: np.ndarray) -> float:
    """How many real-only faces give this NME on the real-only curve (n, nme), interpolated in log n.

    Returns +inf when `nme` beats the best real-only point (more real faces than were tried would be
    needed), and 0 when it is worse than the worst one. The real-only curve is made monotone
    (a running minimum over n) first, so that noise cannot give two answers.
    """
    order = np.argsort(real_n)
    n = np.asarray(real_n, dtype=float)[order]
    e = np.minimum.accumulate(np.asarray(real_nme, dtype=float)[order])
    keep = n > 0  # log-interpolation needs n > 0; real-only at n_real = 0 is not a trial
    n, e = n[keep], e[keep]
    if len(n) == 0:
        raise ValueError(
            "the real-only curve has no point with n_real > 0: add real_only trials to the sweep"
        )
    if nme < e[-1]:
        return math.inf
    if nme >= e[0]:
        return float(n[0]) if nme == e[0] else 0.0
    # e is non-increasing in n: find the segment [i, i+1] with e[i] >= nme > e[i+1].
    i = int(np.searchsorted(-e, -nme, side="right")) - 1
    i = min(max(i, 0), len(n) - 2)
    if e[i] == e[i + 1]:
        return float(n[i])
    t = (e[i] - nme) / (e[i] - e[i + 1])
    return float(math.exp(math.log(n[i]) + t * (math.log(n[i + 1]) - math.log(n[i]))))


def equivalent_real_faces_batch(nme: np.ndarray, real_n: np.ndarray, real_nme: np.ndarray) -> np.ndarray:
    """`equivalent_real_faces` for (B, C) NMEs at once, row b placed on its own real-only curve real_nme[b]
    ((B, R) at real_n (R,)): the bootstrap's thousands of placements in a few array operations. NaN where
    the NME or any point of its curve is NaN."""
    order = np.argsort(real_n)
    n = np.asarray(real_n, dtype=float)[order]
    keep = n > 0
    e = np.minimum.accumulate(np.asarray(real_nme, float)[:, order], axis=1)[:, keep]  # (B, R) running min
    n = n[keep]  # (R,)
    x = np.asarray(nme, float)  # (B, C)
    # segment [i, i+1] with e[i] >= x > e[i+1], as in the scalar version (e is non-increasing along R)
    i = np.clip((e[:, None, :] >= x[:, :, None]).sum(2) - 1, 0, max(len(n) - 2, 0))  # (B, C)
    j = np.minimum(i + 1, len(n) - 1)
    ei, ej = np.take_along_axis(e, i, axis=1), np.take_along_axis(e, j, axis=1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # the masked cases below
        t = (ei - x) / (ei - ej)
        inside = np.where(ei == ej, n[i], np.exp(np.log(n[i]) + t * (np.log(n[j]) - np.log(n[i]))))
    out = np.select([x < e[:, -1:], x > e[:, :1], x == e[:, :1]], [np.inf, 0.0, n[0]], inside)
    return np.where(np.isnan(x) | np.isnan(e).any(1, keepdims=True), np.nan, out)
