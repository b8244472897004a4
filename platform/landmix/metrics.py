"""Landmark accuracy: per-image NME, failure rate and AUC at a threshold, the CED curve, per subset.

NME of one face = mean point-to-point error / the distance between the scheme's normalising pair on the
ground truth (the outer eye corners, "inter-ocular", for IBUG68). Failure rate @t = share of faces with
NME > t. The CED curve is the share of faces with NME <= x for x in [0, t]; AUC @t is its area / t.
Jitter (a video's points): the frame-to-frame displacement the truth's own motion does not explain.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from landmix.schemes import IBUG68, Scheme, interocular

THRESHOLD = 0.10


def nme(pred: np.ndarray, gt: np.ndarray, scheme: Scheme = IBUG68, points=slice(None)) -> np.ndarray:
    """Per-image NME. pred, gt: (N, K, 2) in the same pixels -> (N,) float64. points: the points averaged
    (e.g. slice(0, 17), the jaw); the normaliser is always the whole face's."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    scheme.validate(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ")
    norm = interocular(gt, scheme)
    if np.any(norm <= 0):
        raise ValueError("ground truth with zero inter-ocular distance: check the labels' scheme")
    return np.linalg.norm(pred[:, points] - gt[:, points], axis=-1).mean(-1) / norm


def jitter(pred: np.ndarray, gt: np.ndarray, scheme: Scheme = IBUG68) -> np.ndarray:
    """Per point and pair of consecutive frames with a face in both: |(p_t - p_t-1) - (g_t - g_t-1)| / the
    inter-ocular distance of g_t. pred, gt: (T, K, 2) tracks, NaN where no face -> flat float64 array."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    d = np.diff(pred, axis=0) - np.diff(gt, axis=0)  # (T-1, K, 2)
    e = np.linalg.norm(d, axis=-1) / interocular(gt[1:], scheme)[:, None]
    return e[~np.isnan(e).any(axis=1)].ravel()


def ced(errors: np.ndarray, threshold: float = THRESHOLD, steps: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): y[i] = share of errors <= x[i], x in [0, threshold]."""
    x = np.linspace(0.0, threshold, steps)
    e = np.sort(np.asarray(errors, np.float64))
    y = np.searchsorted(e, x, side="right") / max(len(e), 1)
    return x, y


def auc(errors: np.ndarray, threshold: float = THRESHOLD) -> float:
    """Area under the CED curve up to `threshold`, normalised to [0, 1]."""
    x, y = ced(errors, threshold)
    return float(np.sum((y[1:] + y[:-1]) * 0.5 * np.diff(x)) / threshold)


def failure_rate(errors: np.ndarray, threshold: float = THRESHOLD) -> float:
    return float(np.mean(np.asarray(errors) > threshold)) if len(errors) else float("nan")


def summary(errors: np.ndarray, threshold: float = THRESHOLD) -> dict[str, float]:
    """{"nme", "fr@10", "auc@10", "n"} for an array of per-image NMEs (threshold in the names as percent)."""
    e = np.asarray(errors, np.float64)
    t = f"{round(threshold * 100):d}"
    return {
        "nme": float(e.mean()) if len(e) else float("nan"),
        f"fr@{t}": failure_rate(e, threshold),
        f"auc@{t}": auc(e, threshold) if len(e) else float("nan"),
        "n": int(len(e)),
    }


def per_subset(errors: np.ndarray, subsets: Sequence[str], threshold: float = THRESHOLD) -> dict[str, dict]:
    """summary() for each distinct subset label (e.g. "afw", "helen") plus "all"."""
    e, s = np.asarray(errors), np.asarray(list(subsets))
    out = {name: summary(e[s == name], threshold) for name in sorted(set(s.tolist()))}
    out["all"] = summary(e, threshold)
    return out


def subset_of(image_path: str) -> str:
    """300-W subset from a path: the first known subset folder name in it, else "other"."""
    parts = [p.lower() for p in str(image_path).replace("\\", "/").split("/")]
    for name in ("afw", "helen", "lfpw", "ibug", "menpo", "facesynthetics"):
        if any(p.startswith(name) for p in parts):
            return name
    return "other"
