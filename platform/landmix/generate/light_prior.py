"""How soft the generator's light is, fitted on real photos: the ambient light against the key light of the
shading step (`look.light_ranges`). It is written into face_shape.json ("light"); `FaceConfig()` draws with it.

    python -m landmix.generate.light_prior --data ../shared/data/300w     # refit (the shape prior's refit runs it)

The shading step was first drawn with a hard key light (ambient 0.25-0.45 against a key of 0.6-0.9): the generated
faces were lit far more unevenly than the 300-W photos, which are mostly lit softly from the front (flash, daylight,
rooms). Three statistics of a face's luminance, from its labels alone (`measure`), tell how evenly it is lit:
- the cheeks' asymmetry: |log(left / right)| of the mean luminance in a disc on each cheek (half way from jaw point
  3 to nose point 31, and from 13 to 35; radius 0.12 of the outer-eye distance);
- the face's contrast: the standard deviation of the luminance inside the face (the hull of the jaw and the brows)
  over its mean;
- the shadows' depth: the 10th percentile of that luminance over its 90th.
The fit draws `FACES` faces at each softness of `GRID` (the default look and pose) and keeps the softness whose
medians of the three are nearest the real faces' (each difference in units of the real faces' interquartile
range, summed). The fit uses the train part of the fixed real split, as the shape and pose priors do.
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from landmix.generate import shape_prior
from landmix.schemes import IBUG68

LEFT_EYE, RIGHT_EYE = IBUG68.norm_pair  # the outer eye corners

STATISTICS = ("cheek asymmetry", "face contrast", "shadow depth")
GRID = tuple(round(float(s), 2) for s in np.linspace(0.0, 1.0, 11))  # the softnesses the fit tries
FACES = 200  # generated faces per softness
SIZE = 256  # their side in pixels
HULL = [*range(17), *range(26, 16, -1)]  # the jaw, then the brows back: the face's outline


def measure(image: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(3,) the STATISTICS of one face: image (H, W, 3) uint8 RGB, pts (68, 2) pixels (annotator convention)."""
    grey = cv2.cvtColor(np.ascontiguousarray(image, np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float64)
    p = np.asarray(pts, np.float64)
    radius = max(2, int(0.12 * np.linalg.norm(p[RIGHT_EYE] - p[LEFT_EYE])))

    def pixels_in(mask_of):
        mask = np.zeros(grey.shape, np.uint8)
        mask_of(mask)
        return grey[mask > 0]

    left = pixels_in(lambda m: cv2.circle(m, tuple(int(v) for v in (p[3] + p[31]) / 2), radius, 1, -1))
    right = pixels_in(lambda m: cv2.circle(m, tuple(int(v) for v in (p[13] + p[35]) / 2), radius, 1, -1))
    face = pixels_in(lambda m: cv2.fillConvexPoly(m, cv2.convexHull(p[HULL].astype(np.int32)), 1))
    if not (len(left) and len(right) and len(face)):  # a disc or the face outside the image
        return np.full(3, np.nan)
    lo, hi = np.percentile(face, [10, 90])
    return np.array(
        [
            abs(np.log((left.mean() + 1) / (right.mean() + 1))),
            face.std() / max(face.mean(), 1.0),
            lo / max(hi, 1.0),
        ]
    )


def quartiles(stats: np.ndarray) -> dict[str, list[float]]:
    """{statistic: [25th, 50th, 75th percentile]} of (N, 3) measures (faces that left the image dropped)."""
    q = np.nanpercentile(stats, [25, 50, 75], axis=0).T
    return {name: [round(float(v), 4) for v in row] for name, row in zip(STATISTICS, q)}


def generated(softness: float, faces: int = FACES, seed: int = 0) -> np.ndarray:
    """(faces, 3) the statistics of `faces` generated faces drawn at `softness` (the default look and pose)."""
    from landmix.generate import FaceConfig, make_sample

    cfg = FaceConfig(light_softness=softness)
    return np.stack(
        [measure(s.image, s.annotator) for s in (make_sample(seed, i, SIZE, cfg) for i in range(faces))]
    )


def distance(real: np.ndarray, drawn: np.ndarray) -> float:
    """How far drawn (M, 3) statistics are from real (N, 3): the medians' differences in units of the real
    interquartile ranges, summed over the statistics."""
    q25, q50, q75 = np.nanpercentile(real, [25, 50, 75], axis=0)
    return float(np.sum(np.abs(np.nanmedian(drawn, 0) - q50) / (q75 - q25)))


def fit(real: np.ndarray, grid: tuple[float, ...] = GRID, faces: int = FACES) -> dict:
    """The softness whose generated faces' statistics are nearest the real faces' (N, 3): see the module docstring."""
    if np.isfinite(real).all(1).sum() < 50:
        raise ValueError(f"{len(real)} faces: too few to fit the light; give a folder with more 300-W faces")
    drawn = {s: generated(s, faces) for s in grid}
    distances = {s: distance(real, d) for s, d in drawn.items()}
    best = min(distances, key=distances.get)
    return {
        "softness": best,
        "faces": int(len(real)),
        "generated_faces": faces,
        "real": quartiles(real),
        "generated": quartiles(drawn[best]),
        "hard_light": quartiles(drawn[min(grid)]),
        "distance": {str(s): round(d, 4) for s, d in distances.items()},
    }


def real_statistics(data: str) -> np.ndarray:
    """(N, 3) the statistics of the train part of the fixed real split of a 300-W folder."""
    from pathlib import Path

    from landmix.config import DataConfig
    from landmix.sources.faces import list_faces, split_faces

    stats = []
    for f, pts in split_faces(list_faces(data, "300w"), "train", DataConfig()):
        image = cv2.imread(str(Path(data, f)), cv2.IMREAD_COLOR)  # (H, W, 3) BGR; greyscale is expanded
        if image is None:
            raise ValueError(
                f"OpenCV cannot decode {Path(data, f)}; `landmix ingest --source 300w {data}` "
                "lists the faces it refuses"
            )
        stats.append(measure(image[:, :, ::-1], pts))
    return np.stack(stats)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data", required=True, help="a 300-W folder (.pts beside images); its train split is used"
    )
    args = p.parse_args(argv)
    light = fit(real_statistics(args.data))
    prior = json.loads(shape_prior.FILE.read_text())
    shape_prior.write({**prior, "light": light}, shape_prior.FILE)
    print(
        f"light of {light['faces']} faces: softness {light['softness']} (medians real / generated: "
        + ", ".join(f"{k} {light['real'][k][1]:.3f} / {light['generated'][k][1]:.3f}" for k in STATISTICS)
        + f") -> {shape_prior.FILE}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
