"""Shape descriptors of 68-point faces (pose and expression) and the coverage gaps between two sets of faces.

    d = descriptors(pts)                          # (N, 68, 2) -> (N, 5): yaw, pitch, roll, mouth, eyes
    gaps = coverage_gaps(pool_d, synthetic_d)     # bins the pool fills and the synthetic faces barely do

The descriptors read the scheme's named points (`Scheme.named`: eye corners and lids, nose tip, mouth corners,
inner lips; the outer eye corners are its NME pair), inner points only: the jaw is where the synthetic and human
conventions differ. `landmix select` describes its pool with them and looks for the synthetic set's gaps.

Where the synthetic set lacks coverage (`coverage_gaps`): the pool's shapes and the synthetic faces' labels are
binned by each descriptor; a bin holding at least 2 % of the pool and under 2 % (and under half the pool's
share) of the synthetic faces is a gap (the generator's to-do list). A model's predictions lean towards the
mean shape, so a pool described by predicted points has its tails under-counted if anything: a gap reported is
there, some may be missed.
"""

from __future__ import annotations

import numpy as np

from landmix.schemes import IBUG68, Scheme, interocular

DESCRIPTORS = ("yaw", "pitch", "roll", "mouth", "eyes")
# A coverage gap: a descriptor bin with >= GAP_MIN_SHARE of the pool that the generator rarely makes (under
# GAP_RARE of the synthetic faces, and under 1 / GAP_RATIO of the pool's share).
GAP_MIN_SHARE, GAP_RARE, GAP_RATIO = 0.02, 0.02, 2.0
GAP_BINS = {
    "yaw": np.linspace(-1, 1, 11),
    "pitch": np.linspace(0, 1, 11),
    "roll": np.linspace(-45, 45, 10),
    "mouth": np.array([0, 0.05, 0.15, 0.3, 0.5, 0.8, 5.0]),
    "eyes": np.linspace(0, 0.6, 7),
}


def _dist(p: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(p[:, a] - p[:, b], axis=1)


def _opening(p: np.ndarray, scheme: Scheme, eye: str) -> np.ndarray:
    """An eye's eyelid gap (the mean of its two upper-lower pairs) over its width, corner to corner."""
    upper, lower = scheme.named[f"{eye}_upper_lid"], scheme.named[f"{eye}_lower_lid"]
    gap = sum(_dist(p, t, u) for t, u in zip(upper, lower)) / 2
    return gap / np.maximum(_dist(p, *scheme.named[f"{eye}_corners"]), 1e-6)


def descriptors(pts: np.ndarray, scheme: Scheme = IBUG68) -> np.ndarray:
    """Pose and expression of shapes (N, K, 2) -> (N, 5) yaw, pitch, roll, mouth, eyes, from inner points only:
    yaw: where the nose tip sits between the outer eye corners, -1..1 (0 = frontal; the sign is the image side);
    pitch: how far down the nose tip sits between the eye line and the mouth, 0..1;
    roll: the eye line's angle, degrees; mouth: inner-lip gap / inter-ocular; eyes: eyelid gap / eye width."""
    p = np.asarray(pts, np.float64)
    named = scheme.named
    le, re = p[:, scheme.norm_pair[0]], p[:, scheme.norm_pair[1]]  # outer eye corners, image left and right
    nose = p[:, named["nose_tip"][0]]
    dl, dr = np.linalg.norm(nose - le, axis=1), np.linalg.norm(nose - re, axis=1)
    iod = np.maximum(interocular(p, scheme), 1e-6)
    eye_mid, mouth_mid = (le + re) / 2, p[:, list(named["mouth_corners"])].mean(1)
    axis = mouth_mid - eye_mid
    depth = np.maximum(np.einsum("ij,ij->i", axis, axis), 1e-6)
    pitch = np.einsum("ij,ij->i", nose - eye_mid, axis) / depth
    roll = np.degrees(np.arctan2(re[:, 1] - le[:, 1], re[:, 0] - le[:, 0]))
    mouth = _dist(p, *named["inner_lips"]) / iod
    eyes = (_opening(p, scheme, "eye_image_left") + _opening(p, scheme, "eye_image_right")) / 2
    return np.column_stack([(dl - dr) / np.maximum(dl + dr, 1e-6), pitch, roll, mouth, eyes])


def coverage_gaps(pool: np.ndarray, synthetic: np.ndarray) -> list[dict]:
    """Descriptor bins the pool's faces fill and the synthetic faces barely do: (N, 5) and (M, 5) descriptors
    -> [{"descriptor", "bin": [lo, hi], "pool_share", "synthetic_share"}], largest ratio first."""
    pool, synthetic = np.asarray(pool, float), np.asarray(synthetic, float)
    pool = pool[~np.isnan(pool).any(1)]
    gaps = []
    for j, name in enumerate(DESCRIPTORS):
        edges = GAP_BINS[name]
        p = np.histogram(np.clip(pool[:, j], edges[0], edges[-1]), edges)[0] / max(len(pool), 1)
        s = np.histogram(np.clip(synthetic[:, j], edges[0], edges[-1]), edges)[0] / max(len(synthetic), 1)
        for b in np.flatnonzero((p >= GAP_MIN_SHARE) & (s < GAP_RARE) & (p > GAP_RATIO * s)):
            gaps.append(
                {
                    "descriptor": name,
                    "bin": [round(float(edges[b]), 3), round(float(edges[b + 1]), 3)],
                    "pool_share": round(float(p[b]), 4),
                    "synthetic_share": round(float(s[b]), 4),
                }
            )
    return sorted(gaps, key=lambda g: -g["pool_share"] / max(g["synthetic_share"], 1e-4))


def synthetic_descriptors(shards: str) -> np.ndarray:
    """Descriptors of the labelled synthetic faces of a `landmix prepare` folder (labels only: no decoding)."""
    import pyarrow.parquet as pq

    from landmix.pool import rows_where_synthetic, shard_folder

    table = rows_where_synthetic(
        pq.read_table(shard_folder(shards), columns=["landmarks", "is_synthetic"]), True
    )
    pts = np.asarray(table.column("landmarks").to_pylist(), np.float64).reshape(len(table), -1, 2)[
        :, : IBUG68.num_points
    ]
    return descriptors(pts)
