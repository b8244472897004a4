"""The generator's face-shape prior, fitted on real faces: the mean near-frontal iBUG 68 shape and its principal
modes (identity and expression together), shipped as face_shape.json beside this file.

    python -m landmix.generate.shape_prior --data ../shared/data/300w       # refit; writes face_shape.json

The hand-set shape model it replaces drew lips that never closed (the inner lips of a neutral face 5 mm apart),
a mouth wider and lower at the corners, a longer nose and chin than the 300-W faces, and more spread in every
feature (docs/results/generate.md). The fit: the faces of the fixed real split's *train* part (never val or
test: every accuracy figure is measured on test), each similarity-aligned (centroid at 0, outer eye corners 36
and 45 on the x axis, 1 apart), kept when near frontal (the nose tip between the outer eye corners at 0.44-0.56
of their distance), each with its mirror image, so that the prior is left-right symmetric; then the mean and the
top `MODES` principal modes with their standard deviations, and the spread the modes leave. Pose is the
fitted after the shapes, from all the train faces (landmix.generate.pose_prior; the refit runs it and it writes
"head_pose" into the same file): only the frontal faces' shapes are taken from the data. The file holds shape and
pose statistics, no image and no face.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from landmix.schemes import IBUG68

FILE = Path(__file__).with_name("face_shape.json")
MODES = 16
# What is fitted after the shapes, from faces drawn with them, into the same file: the head pose
# (landmix.generate.pose_prior), then the light (landmix.generate.light_prior)
# The fits made on faces drawn from this prior, in order, each by its module's main: the head pose's estimate
# uses the mean face, and the light is fitted on faces drawn with the new shapes and pose.
LATER_FITS = {"head_pose": "landmix.generate.pose_prior", "light": "landmix.generate.light_prior"}
GAP_QUANTILES = 41  # the inner lips' gap's distribution: its quantiles at 0, 2.5, .. 100 %
FRONTAL = (0.44, 0.56)  # nose tip's place between the outer eye corners that counts as near frontal


def align(shapes: np.ndarray) -> np.ndarray:
    """(N, 68, 2) shapes similarity-aligned: centroid 0, outer eye corners (IBUG68.norm_pair) on the x axis, 1 apart."""
    shapes = np.asarray(shapes, np.float64)
    centred = shapes - shapes.mean(1, keepdims=True)
    left, right = IBUG68.norm_pair  # the outer eye corners
    d = centred[:, right] - centred[:, left]
    scale = np.linalg.norm(d, axis=1)
    cos, sin = d[:, 0] / scale, d[:, 1] / scale
    rot = np.stack([np.stack([cos, sin], 1), np.stack([-sin, cos], 1)], 1)  # rows: x along the eye line
    return np.einsum("nij,nkj->nki", rot, centred) / scale[:, None, None]


def frontal(aligned: np.ndarray) -> np.ndarray:
    """Bool (N,): the aligned shapes whose nose tip lies within FRONTAL of the outer eye corners' span."""
    r = (aligned[:, 30, 0] - aligned[:, 36, 0]) / (aligned[:, 45, 0] - aligned[:, 36, 0])
    return (r > FRONTAL[0]) & (r < FRONTAL[1])


def inner_lips_gap(aligned: np.ndarray) -> np.ndarray:
    """(N,) how far apart the inner lips are: the lower inner lip's points (65-67) below the upper's (61-63), mean."""
    return aligned[:, [65, 66, 67], 1].mean(1) - aligned[:, [61, 62, 63], 1].mean(1)


def mirror(aligned: np.ndarray) -> np.ndarray:
    """The aligned shapes' mirror images (x negated, points renumbered), aligned again."""
    return align(aligned[:, list(IBUG68.flip_perm)] * [-1.0, 1.0])


def fit(shapes: np.ndarray, modes: int = MODES) -> dict:
    """The prior of real (N, 68, 2) shapes (pixels, any pose): see the module docstring."""
    aligned = align(shapes)
    keep = aligned[frontal(aligned)]
    if len(keep) < 2 * modes:
        raise ValueError(
            f"{len(keep)} near-frontal faces of {len(shapes)}: too few to fit {modes} shape modes; "
            f"give a folder with more 300-W faces"
        )
    both = np.concatenate([keep, mirror(keep)]).reshape(2 * len(keep), -1)
    mean = both.mean(0)
    _, sv, vt = np.linalg.svd(both - mean, full_matrices=False)
    sd = sv / np.sqrt(len(both) - 1)
    residual = (both - mean) - (both - mean) @ vt[:modes].T @ vt[:modes]
    gap = inner_lips_gap(both.reshape(-1, 68, 2))
    return {
        "faces": int(len(shapes)),
        "frontal_faces": int(len(keep)),
        "frontal_range": list(FRONTAL),
        "mirrored": True,
        "unit": "outer eye corner distance (points 36-45); centroid at 0; x to the image right, y down",
        "mean": np.round(mean.reshape(68, 2), 5).tolist(),
        "modes": np.round(vt[:modes], 5).tolist(),  # (K, 136) unit vectors, x and y interleaved per point
        "sd": np.round(sd[:modes], 6).tolist(),
        "residual_sd": round(float(residual.std()), 6),  # per coordinate, what the K modes leave
        # the inner lips' gap is no Gaussian (closed on 4 faces in 10, then a long tail): its own distribution
        "inner_lips_gap_quantiles": np.round(np.quantile(gap, np.linspace(0, 1, GAP_QUANTILES)), 5).tolist(),
    }


@functools.lru_cache(maxsize=1)
def load() -> dict:
    """The shipped prior as arrays: mean (68, 2), modes (K, 68, 2), sd (K,), residual_sd, gap_quantiles (Q,)."""
    raw = json.loads(FILE.read_text())
    return {
        "mean": np.array(raw["mean"], np.float64),
        "modes": np.array(raw["modes"], np.float64).reshape(len(raw["sd"]), 68, 2),
        "sd": np.array(raw["sd"], np.float64),
        "residual_sd": float(raw["residual_sd"]),
        # None in a file fitted before the gap's distribution was: sampling says to refit (importing must not
        # fail, or the refit, inside this package, could not run)
        "gap_quantiles": np.array(raw["inner_lips_gap_quantiles"], np.float64)
        if "inner_lips_gap_quantiles" in raw
        else None,
        # the head pose's sigmas in degrees (landmix.generate.pose_prior), None before they were fitted
        "pose_sd": dict(raw["head_pose"]["sd_deg"]) if "head_pose" in raw else None,
        # how soft the shading's light is (landmix.generate.light_prior), None before it was fitted
        "light_softness": float(raw["light"]["softness"]) if "light" in raw else None,
    }


def write(prior: dict, path) -> None:
    """face_shape.json's layout: one key per line."""
    Path(path).write_text(
        "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in prior.items()) + "\n}\n"
    )


def main(argv: list[str] | None = None) -> int:
    from landmix.config import DataConfig
    from landmix.sources.faces import list_faces, split_faces

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data", required=True, help="a 300-W folder (.pts beside images); its train split is used"
    )
    p.add_argument("--modes", type=int, default=MODES)
    p.add_argument("--out", default=str(FILE))
    args = p.parse_args(argv)
    faces = split_faces(list_faces(args.data, "300w"), "train", DataConfig())
    prior = {
        "source": f"{Path(args.data).name} (train split of landmix.sources.split.real_split)",
        **fit(np.stack([pts for _, pts in faces]), args.modes),
    }
    old = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    for later in LATER_FITS:  # kept until they are refitted on the new shapes (below, or by hand)
        if later in old:
            prior[later] = old[later]
    write(prior, args.out)
    print(
        f"{prior['frontal_faces']} near-frontal faces of {prior['faces']} (x2 mirrored), {args.modes} modes "
        f"(sd {prior['sd'][0]:.3f} .. {prior['sd'][-1]:.3f}, residual {prior['residual_sd']:.4f}) -> {args.out}"
    )
    if Path(args.out).resolve() == FILE.resolve():
        for module in LATER_FITS.values():  # each in a fresh interpreter: this one holds the old prior (load)
            subprocess.run([sys.executable, "-m", module, "--data", args.data], check=True)
    else:
        print(
            f"the head pose and the light were not refitted ({args.out} is not the shipped {FILE.name}): "
            f"`python -m landmix.generate.pose_prior --data {args.data}` and then "
            f"`python -m landmix.generate.light_prior --data {args.data}` fit them on the shipped prior"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
