"""Where a model misses on the held-out real faces: NME per face region, and how much of it a constant per-point
offset would explain.

    LANDMIX_DATA_ROOT=../shared/data .venv/bin/python bench/region_errors.py CHECKPOINT [CHECKPOINT ...]

For each checkpoint folder (`landmix train` / the benches' runs): `landmix.evaluate` on the train and the test part
of the fixed real split; residuals (prediction - truth) in each face's own frame (outer eye corners on the x
axis, 1 apart); per region the mean point error on the test faces, and the same after subtracting the mean
residual of each point measured on the train faces (the bias a per-point translation of the outputs could
remove). Prints markdown; seconds per checkpoint.
"""

from __future__ import annotations

import argparse

import numpy as np

from landmix import evaluate, settings

REGIONS = {"jaw": range(17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48),
           "mouth": range(48, 68)}  # fmt: skip


def residuals(checkpoint: str, split: str) -> np.ndarray:
    """(N, 68, 2) prediction - truth of the split's faces, rotated onto the outer eye line, in its units."""
    data = str(settings.data_root() / "300w")
    truth = dict(evaluate.list_faces(data, "300w"))
    images = evaluate.evaluate(checkpoint, data, split=split)["images"]
    pred = np.array([r["pred"] for r in images])
    gt = np.stack([truth[r["image_path"]] for r in images]).astype(np.float64)
    eye = gt[:, 45] - gt[:, 36]
    scale = np.linalg.norm(eye, axis=1)
    cos, sin = eye[:, 0] / scale, eye[:, 1] / scale
    rot = np.stack([np.stack([cos, sin], 1), np.stack([-sin, cos], 1)], 1)
    return np.einsum("nij,nkj->nki", rot, pred - gt) / scale[:, None, None]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+")
    args = p.parse_args()
    print("| checkpoint | " + " | ".join(REGIONS) + " | all |\n|---|" + "---|" * (len(REGIONS) + 1))
    for ckpt in args.checkpoints:
        bias = residuals(ckpt, "train").mean(0)
        test = residuals(ckpt, "test")
        raw, unbiased = np.linalg.norm(test, axis=2), np.linalg.norm(test - bias, axis=2)
        cells = [f"{100 * raw[:, list(r)].mean():.2f} ({100 * unbiased[:, list(r)].mean():.2f})" for r in REGIONS.values()]
        print(f"| {ckpt} | " + " | ".join(cells) + f" | {100 * raw.mean():.2f} ({100 * unbiased.mean():.2f}) |")
    print("\nNME % on the 241 held-out real faces; in brackets after removing each point's mean train residual.")


if __name__ == "__main__":
    main()
