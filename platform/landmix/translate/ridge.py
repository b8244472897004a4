"""Fitting the learned translator: a ridge map of the residual from the fixed table, in pose-normalised
coordinates, with its penalty chosen by cross-validation.

Every face is first aligned to a reference shape by a similarity (landmix.translate.procrustes), so the map sees
pose-normalised shapes; a ridge regression predicts the residual from the fixed map in those coordinates (strong
regularisation falls back to the fixed map, an infinite one, `OFFSET_ONLY`, to the per-point offset), and the
inverse similarity takes the prediction back to pixels. Fitting always adds the mirrored pairs and the reference
is made mirror-symmetric, so the ridge solution is exactly flip-equivariant: translating a flipped face equals
flipping the translated face.
"""

from __future__ import annotations

import math

import numpy as np

try:  # BLAS threads only hurt on these small matrices (and stall on a busy machine)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn (an mlflow dependency)
    from contextlib import nullcontext as threadpool_limits

from landmix.schemes import IBUG68, SYNTH70, Scheme, flip_points
from landmix.translate.procrustes import align, mean_shape
from landmix.translate.translator import Translator, table_matrix


def _mirror(pts: np.ndarray, scheme: Scheme) -> np.ndarray:
    """Reflect about x = 0 and permute indices: the mirror image in normalised coordinates."""
    return flip_points(pts, 1.0, scheme)  # x -> 1 - 1 - x = -x


def _ridge_path(x: np.ndarray, r: np.ndarray, alphas) -> list[tuple[np.ndarray, np.ndarray]]:
    """Ridge fits r ~ x @ w + b (intercept unpenalised) for every alpha from one eigendecomposition.

    x: (N, D), r: (N, E). Returns [(w (D, E), b (E,)), ...], one per alpha.
    """
    mx, mr = x.mean(0), r.mean(0)
    xc = x - mx
    with threadpool_limits(1):
        s, v = np.linalg.eigh(xc.T @ xc)
        proj = v.T @ (xc.T @ (r - mr))  # (D, E)
        out = []
        for alpha in alphas:
            w = v @ (proj / (np.maximum(s, 0.0) + alpha)[:, None])
            out.append((w, mr - mx @ w))
    return out


# the ridge penalties `fit` chooses among by cross-validation
RIDGE_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
OFFSET_ONLY = (math.inf,)  # as `alphas`: an infinite penalty leaves the per-point offset alone


def fit(
    x_src: np.ndarray,
    y_dst: np.ndarray,
    src: Scheme = SYNTH70,
    dst: Scheme = IBUG68,
    alphas: tuple[float, ...] = RIDGE_ALPHAS,
    folds: int = 5,
    seed: int = 0,
    modes: int = 0,
) -> Translator:
    """Fit the ridge translator on paired faces x_src (N, K_src, 2) -> y_dst (N, K_dst, 2), pixels.

    The penalty is chosen by `folds`-fold cross-validation over `alphas` (error in reference units).
    modes > 0: the map reads only the source shapes' first `modes` principal components (of the pose-normalised
    shapes and their mirror images: head pose, mouth opening, ..), not every coordinate: the residual is the
    per-point offset plus a linear function of those few numbers. Stored as the same full map.
    """
    x, y = np.asarray(x_src, np.float64), np.asarray(y_dst, np.float64)
    src.validate(x)
    dst.validate(y)
    if len(x) != len(y) or len(x) < folds:
        raise ValueError(f"need as many source as target faces, at least {folds}; got {len(x)} and {len(y)}")
    base = table_matrix(src, dst)
    ref = mean_shape(np.concatenate([x, flip_points(x, 0.0, src)]), src)
    ref = (ref + _mirror(ref, src)) / 2  # exactly symmetric: the fit is flip-equivariant
    a, t = align(x, ref)
    xn = np.einsum("nij,nkj->nki", a, x) + t[:, None]
    yn = np.einsum("nij,nkj->nki", a, y) + t[:, None]
    # Mirrored pairs: a face and its mirror image carry the same label convention.
    xn = np.concatenate([xn, _mirror(xn, src)])
    yn = np.concatenate([yn, _mirror(yn, dst)])
    feats = xn.reshape(len(xn), -1)
    resid = (yn - np.einsum("ij,njk->nik", base, xn)).reshape(len(yn), -1)
    if modes:  # the ridge reads (feats - mean) @ project: the first `modes` principal components, (D, modes)
        if not 0 < modes < feats.shape[1]:
            raise ValueError(
                f"modes={modes}: use 1 .. {feats.shape[1] - 1} principal components of the source shapes"
            )
        mean = feats.mean(0)
        project = np.linalg.svd(feats - mean, full_matrices=False)[2][:modes].T
        feats = (feats - mean) @ project

    n = len(x)
    fold = np.random.default_rng(seed).permutation(n) % folds
    fold = np.concatenate([fold, fold])  # a mirrored pair stays in one fold
    errors = np.zeros(len(alphas))
    for k in range(folds):
        for j, (w, b) in enumerate(_ridge_path(feats[fold != k], resid[fold != k], alphas)):
            errors[j] += ((feats[fold == k] @ w + b - resid[fold == k]) ** 2).sum()
    alpha = float(alphas[int(np.argmin(errors))])
    ((w, b),) = _ridge_path(feats, resid, [alpha])
    if modes:  # back to a map of the coordinates: (x - mean) @ project @ w + b
        w = project @ w
        b = b - mean @ w
    return Translator(src, dst, base, ref=ref, weight=w, bias=b, alpha=alpha)
