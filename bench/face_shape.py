"""How far the generator's face shapes are from the real faces' (labels only, no image): near-frontal faces of
both, similarity-aligned (outer eye corners 1 apart), compared region by region and by a few proportions.

    LANDMIX_DATA_ROOT=../shared/data .venv/bin/python bench/face_shape.py          # seconds; prints markdown

Real: the shared 300-W faces (train split: the shape prior's own data; test split: the held-out faces).
Generated: `--n` faces of the current generator (annotator convention). Near frontal as the prior defines it
(`landmix.generate.shape_prior.frontal`). Also: how well each side's principal modes reconstruct the real test
shapes (mean point error, outer-eye units) -- a shape space that misses real shapes cannot be learned from.
Last, the head pose of every face (not only the frontal ones), estimated from the labels the same way on both
sides (`landmix.generate.pose_prior.estimate`): real, generated (the default, wide pose), and generated with the
pose spread fitted on the real faces (`FaceConfig(pose="real")`, `landmix generate --pose real`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from landmix import evaluate, settings
from landmix.generate import FaceConfig, generator_version, sample_rng
from landmix.generate.face3d import sample_face
from landmix.generate.pose_prior import estimate
from landmix.generate.shape_prior import align, frontal

REGIONS = {"jaw": range(17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48),
           "mouth": range(48, 68)}  # fmt: skip
PROPORTIONS = {
    "inner lips' gap": lambda s: s[:, [65, 66, 67], 1].mean(1) - s[:, [61, 62, 63], 1].mean(1),
    "mouth width": lambda s: s[:, 54, 0] - s[:, 48, 0],
    "mouth corners below the lips' centre": lambda s: s[:, [48, 54], 1].mean(1) - s[:, [51, 57], 1].mean(1),
    "nose length (27-33)": lambda s: s[:, 33, 1] - s[:, 27, 1],
    "eye opening": lambda s: s[:, [41, 40, 47, 46], 1].mean(1) - s[:, [37, 38, 43, 44], 1].mean(1),
    "chin below the lower lip": lambda s: s[:, 8, 1] - s[:, 57, 1],
    "jaw width (0-16)": lambda s: s[:, 16, 0] - s[:, 0, 0],
}

CLOSED = 0.005  # an inner lips' gap below this (outer-eye units) counts as closed lips


def reconstruction_error(train: np.ndarray, test: np.ndarray, k: int) -> float:
    flat = train.reshape(len(train), -1)
    mean = flat.mean(0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    y = test.reshape(len(test), -1) - mean
    residual = y - (y @ vt[:k].T) @ vt[:k]
    return float(np.linalg.norm(residual.reshape(len(test), 68, 2), axis=2).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=4000, help="generated faces (seed 7)")
    p.add_argument("--out", type=Path, default=Path("out/bench/face_shape.json"))
    args = p.parse_args()
    faces = evaluate.list_faces(str(settings.data_root() / "300w"), "300w")
    raw = {s: np.stack([pts for _, pts in evaluate.split_faces(faces, s)]) for s in ("train", "test")}
    raw["generated"] = np.stack([sample_face(sample_rng(7, i), FaceConfig(), 128).annotator for i in range(args.n)])
    raw["generated, --pose real"] = np.stack([sample_face(sample_rng(7, i), FaceConfig(pose="real"), 128).annotator
                                              for i in range(args.n)])  # fmt: skip
    real = {s: align(raw[s]) for s in ("train", "test")}
    generated = align(raw["generated"])
    near = {"real": real["train"][frontal(real["train"])], "generated": generated[frontal(generated)]}
    test = real["test"][frontal(real["test"])]
    version = generator_version()
    result = {"generator_version": version, "frontal_faces": {k: len(v) for k, v in near.items()}, "regions": {},
              "proportions": {}, "reconstruction": {}}  # fmt: skip
    print(f"near-frontal faces: {len(near['real'])} real (train), {len(near['generated'])} generated ({version})\n")
    print("| region | mean shapes apart | spread real | spread generated |\n|---|---|---|---|")
    for name, idx in REGIONS.items():
        idx = list(idx)
        apart = float(np.linalg.norm(near["real"].mean(0)[idx] - near["generated"].mean(0)[idx], axis=1).mean())
        spread = {k: float(v[:, idx].std(0).mean()) for k, v in near.items()}
        result["regions"][name] = {"mean_apart": apart, "spread": spread}
        print(f"| {name} | {apart:.3f} | {spread['real']:.3f} | {spread['generated']:.3f} |")
    print("\n| proportion (outer-eye units), median [10th, 90th percentile] | real | generated |\n|---|---|---|")
    for name, f in PROPORTIONS.items():
        q = {k: np.percentile(f(v), [50, 10, 90]).round(3).tolist() for k, v in near.items()}
        result["proportions"][name] = q
        print(f"| {name} | {q['real'][0]:.3f} [{q['real'][1]:.3f}, {q['real'][2]:.3f}] | "
              f"{q['generated'][0]:.3f} [{q['generated'][1]:.3f}, {q['generated'][2]:.3f}] |")  # fmt: skip
    closed = {k: float((np.abs(PROPORTIONS["inner lips' gap"](v)) < CLOSED).mean()) for k, v in near.items()}
    result["closed_lips"] = closed
    print(f"| closed lips (share of faces, gap under {CLOSED}) | {closed['real']:.0%} | {closed['generated']:.0%} |")
    print("\n| modes | real test shapes rebuilt by the real train modes | by the generated faces' modes |\n|---|---|---|")
    for k in (10, 20):
        r = {side: reconstruction_error(shapes, test, k) for side, shapes in near.items()}
        result["reconstruction"][k] = r
        print(f"| {k} | {r['real']:.4f} | {r['generated']:.4f} |")
    print("\n| head pose, estimated from the labels (pose_prior.estimate), degrees | yaw sd | pitch sd | roll sd | "
          "faces with |yaw| > 25 |\n|---|---|---|---|---|")  # fmt: skip
    result["head_pose"] = {}
    for name, shapes in raw.items():
        est = estimate(shapes)
        row = {"sd": est.std(0).round(2).tolist(), "yaw_beyond_25": float((np.abs(est[:, 0]) > 25).mean())}
        result["head_pose"][name] = row
        label = f"real ({name})" if name in ("train", "test") else name
        print(f"| {label} | {row['sd'][0]:.1f} | {row['sd'][1]:.1f} | {row['sd'][2]:.1f} | {row['yaw_beyond_25']:.0%} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
