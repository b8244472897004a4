"""How the light falls round the jaw, on real and generated faces: under the chin, on the neck and across the jaw
line, each against the cheeks (pixels only, no training).

    LANDMIX_DATA_ROOT=../shared/data .venv/bin/python bench/face_light.py        # a minute; prints markdown

Per face, from its labels: the mean luminance in small squares (0.08 of the outer-eye distance across) just
under the chin (0.12 outer-eye units below point 8), on the neck (0.3 below), and either side of the jaw line
(points 3, 5, 11 and 13, 12 % of the way to the nose tip and as far outside), and either side of the chin (points
7, 8 and 9, 0.08 outer-eye units inside and outside along the direction from the nose's centre). Each is divided by
the cheeks' (half way from the nose tip to points 4 and 12). Reported: quartiles of under-chin / cheek, neck /
cheek, |inside - outside| / cheek across the jaw line and (inside - outside) / cheek across the chin (the chin's
edge: positive where the chin is lighter than the neck below it). Real: `--n` faces of the 300-W train split. Generated: `--n` faces of
the current generator, and of the same generator without its features step (which lights the neck).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from landmix import evaluate, settings
from landmix.generate import FaceConfig, generator_version, make_sample
from landmix.generate.look import STEPS

MEASURES = ("under the chin / cheeks", "neck / cheeks", "|across the jaw line| / cheeks", "across the chin / cheeks")


def probe(img: np.ndarray, p: np.ndarray) -> list[float] | None:
    """The three ratios of one face (image (H, W, 3), labels (68, 2) pixels); None where a square leaves the image."""
    iod = np.linalg.norm(p[45] - p[36])
    down = (p[8] - p[27]) / np.linalg.norm(p[8] - p[27])
    k = max(1, int(0.04 * iod))

    def at(q):
        x, y = np.round(q).astype(int)
        if not (k <= x < img.shape[1] - k and k <= y < img.shape[0] - k):
            return None
        return float(img[y - k : y + k + 1, x - k : x + k + 1].mean())

    cheek = [at((p[30] + p[j]) / 2) for j in (4, 12)]
    under, neck = at(p[8] + down * 0.12 * iod), at(p[8] + down * 0.3 * iod)
    inside = [at(p[j] + (p[30] - p[j]) * 0.12) for j in (3, 5, 11, 13)]
    outside = [at(p[j] - (p[30] - p[j]) * 0.12) for j in (3, 5, 11, 13)]
    nose = p[27:36].mean(0)  # the chin's normal: away from the nose, through points 7, 8 and 9
    normal = [(p[j] - nose) / np.linalg.norm(p[j] - nose) * 0.08 * iod for j in (7, 8, 9)]
    chin_in = [at(p[j] - d) for j, d in zip((7, 8, 9), normal)]
    chin_out = [at(p[j] + d) for j, d in zip((7, 8, 9), normal)]
    if any(v is None for v in [*cheek, under, neck, *inside, *outside, *chin_in, *chin_out]) or min(cheek) <= 0:
        return None
    c = float(np.mean(cheek))
    return [under / c, neck / c, float(np.mean(np.abs(np.subtract(inside, outside)))) / c,
            float(np.mean(np.subtract(chin_in, chin_out))) / c]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=300, help="faces per side")
    p.add_argument("--out", type=Path, default=Path("out/bench/face_light.json"))
    args = p.parse_args()
    root = settings.data_root() / "300w"
    faces = evaluate.split_faces(evaluate.list_faces(str(root), "300w"), "train")[: args.n]
    rows = {"real (300-W train)": [probe(cv2.imread(str(root / f)).astype(np.float32), pts) for f, pts in faces]}
    for name, cfg in ((f"generated ({generator_version()})", FaceConfig()),
                      ("generated, without the features step", FaceConfig(look=tuple(s for s in STEPS if s != "features")))):  # fmt: skip
        samples = (make_sample(11, i, 256, cfg) for i in range(args.n))
        rows[name] = [probe(s.image.astype(np.float32), s.annotator) for s in samples]
    result = {}
    print("| faces | " + " | ".join(f"{m}: quartiles" for m in MEASURES) + " |\n|---|" + "---|" * len(MEASURES))
    for name, values in rows.items():
        kept = np.array([v for v in values if v is not None])
        q = np.percentile(kept, [25, 50, 75], axis=0).T.round(2)
        result[name] = {"faces": len(kept), **{m: q[i].tolist() for i, m in enumerate(MEASURES)}}
        print(f"| {name}, {len(kept)} | " + " | ".join(f"{a:.2f} / **{b:.2f}** / {c:.2f}" for a, b, c in q) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
