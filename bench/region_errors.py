"""Where a model misses on the held-out real faces: NME per face region, and how much of it a constant per-point
offset would explain.

    LANDMIX_DATA_ROOT=../shared/data .venv/bin/python bench/region_errors.py CHECKPOINT [CHECKPOINT ...]

For each checkpoint folder (`landmix train` / the benches' runs): `landmix.evaluate` on the train and the test part
of the fixed real split; residuals (prediction - truth) in each face's own frame (outer eye corners on the x
axis, 1 apart); per region the mean point error on the test faces, and the same after subtracting the mean
residual of each point measured on the train faces (the bias a per-point translation of the outputs could
remove); per face, the spread of the test faces' NME (median, 90th percentile, the share above 10 %): whether a
model misses everywhere or fails on some faces; per region, the mean offset along the face's down axis on the
train faces (where a drawing convention differs from the annotators', e.g. brows drawn round their labels where
the annotators put them on the brow's upper edge). Prints markdown; seconds per checkpoint.

    ... bench/region_errors.py CHECKPOINT --sheet worst.png      # and the worst test faces, drawn

--sheet draws the `--worst` test faces with the highest NME of the first checkpoint (truth green, prediction red).
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from landmix import evaluate, settings

REGIONS = {"jaw": range(17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48),
           "mouth": range(48, 68)}  # fmt: skip


def predictions(checkpoint: str, split: str) -> tuple[list[dict], np.ndarray]:
    """The split's per-image results of `landmix.evaluate` and their truths (N, 68, 2) in pixels."""
    data = str(settings.data_root() / "300w")
    truth = dict(evaluate.list_faces(data, "300w"))
    images = evaluate.evaluate(checkpoint, data, split=split)["images"]
    return images, np.stack([truth[r["image_path"]] for r in images]).astype(np.float64)


def residuals(images: list[dict], gt: np.ndarray) -> np.ndarray:
    """(N, 68, 2) prediction - truth, rotated onto each face's outer eye line, in its units."""
    pred = np.array([r["pred"] for r in images])
    eye = gt[:, 45] - gt[:, 36]
    scale = np.linalg.norm(eye, axis=1)
    cos, sin = eye[:, 0] / scale, eye[:, 1] / scale
    rot = np.stack([np.stack([cos, sin], 1), np.stack([-sin, cos], 1)], 1)
    return np.einsum("nij,nkj->nki", rot, pred - gt) / scale[:, None, None]


def sheet(images: list[dict], gt: np.ndarray, k: int, path: str, size: int = 192) -> None:
    """The k test faces with the highest NME, cropped round their truth: truth green, prediction red."""
    data = settings.data_root() / "300w"
    tiles = []
    for i in np.argsort([-r["nme"] for r in images])[:k]:
        image = cv2.imread(str(data / images[i]["image_path"]), cv2.IMREAD_COLOR)
        lo, hi = gt[i].min(0), gt[i].max(0)
        half, centre = 0.7 * (hi - lo).max(), (lo + hi) / 2
        scale = size / (2 * half)
        warp = np.float32([[scale, 0, size / 2 - scale * centre[0]], [0, scale, size / 2 - scale * centre[1]]])
        tile = cv2.warpAffine(image, warp, (size, size), flags=cv2.INTER_AREA)
        for pts, colour in ((gt[i], (0, 200, 0)), (np.array(images[i]["pred"]), (0, 0, 255))):
            for x, y in pts * scale + warp[:, 2]:
                cv2.circle(tile, (int(round(x)), int(round(y))), 2, colour, -1, cv2.LINE_AA)
        cv2.putText(tile, f"{100 * images[i]['nme']:.1f}%", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        tiles.append(tile)
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 6)
    rows = [np.hstack(tiles[j : j + 6]) for j in range(0, len(tiles), 6)]
    cv2.imwrite(path, np.vstack(rows))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--sheet", default="", help="a PNG of the first checkpoint's worst test faces")
    p.add_argument("--worst", type=int, default=18)
    args = p.parse_args()
    regions, spread, offsets = [], [], []
    for n, ckpt in enumerate(args.checkpoints):
        bias = residuals(*predictions(ckpt, "train")).mean(0)
        images, gt = predictions(ckpt, "test")
        test = residuals(images, gt)
        raw, unbiased = np.linalg.norm(test, axis=2), np.linalg.norm(test - bias, axis=2)
        cells = [f"{100 * raw[:, list(r)].mean():.2f} ({100 * unbiased[:, list(r)].mean():.2f})" for r in REGIONS.values()]
        regions.append(f"| {ckpt} | " + " | ".join(cells) + f" | {100 * raw.mean():.2f} ({100 * unbiased.mean():.2f}) |")
        offsets.append(f"| {ckpt} | " + " | ".join(f"{100 * bias[list(r), 1].mean():+.1f}" for r in REGIONS.values()) + " |")
        face = 100 * np.array([r["nme"] for r in images])
        spread.append(f"| {ckpt} | {face.mean():.2f} | {np.median(face):.2f} | {np.percentile(face, 90):.2f} | "
                      f"{(face > 10).mean():.1%} |")  # fmt: skip
        if args.sheet and n == 0:
            sheet(images, gt, args.worst, args.sheet)
    print("| checkpoint | " + " | ".join(REGIONS) + " | all |\n|---|" + "---|" * (len(REGIONS) + 1))
    print("\n".join(regions))
    print("\nNME % on the 241 held-out real faces; in brackets after removing each point's mean train residual.\n")
    print("| checkpoint | mean | median | 90th percentile | faces above 10 % |\n|---|---|---|---|---|")
    print("\n".join(spread))
    print("\nPer-face NME % on the same faces.\n")
    print("| checkpoint | " + " | ".join(REGIONS) + " |\n|---|" + "---|" * len(REGIONS))
    print("\n".join(offsets))
    print("\nEach region's mean offset along the face's down axis on the train faces, % of the outer-eye distance "
          "(+: the model puts the points lower than the annotators do).")


if __name__ == "__main__":
    main()
