"""The generator's head-pose spread, fitted on real faces: how far the 300-W faces turn (yaw), nod (pitch) and
tilt (roll). It is written into face_shape.json ("head_pose"); `FaceConfig(pose="real")` (`landmix generate --pose
real`) draws poses with it.

    python -m landmix.generate.pose_prior --data ../shared/data/300w     # refit (the shape prior's refit runs it)

The default spreads (`FaceConfig(pose="wide")`: yaw 30, pitch 12, roll 10 degrees) draw faces turned twice as far
as the 300-W faces: a third of the generated faces are turned more than 25 degrees, where few real faces are.
Drawn with the fitted spread instead, a synthetic-only model scored no better on the held-out real faces at
convergence (docs/results/generate.md), so the default keeps the profiles; the fit measures the difference.

Each face's pose is estimated from its labels alone: yaw and pitch by `cv2.solvePnP` of its inner points
(17-67) on the generator's mean 3D face (`face3d.mean_shape()`) with a camera at the generator's typical distance,
roll from the line through the outer eye corners. The estimate is noisy: faces are not the mean face, so shape
leaks into pose (on generated faces of known pose its error spreads about 6 degrees on yaw, 11 on pitch, 2 on
roll at the fitted spread). So the fit matches the estimates, not the truth: it draws generated faces, estimates their pose the same
way, and scales each sigma by (real faces' estimated spread / generated faces' estimated spread). It does this
`ITERATIONS` times from the real estimated spread, then rounds to whole degrees, with a floor of `FLOOR_DEG`.

On the 300-W faces' pitch, the estimator's error (about 11 degrees) is nearly all of the real spread (11). The
shape prior's modes already carry the real faces' nods, because they were fitted on their 2D shapes, so the fit
leaves little pitch to the 3D pose. The floor keeps some 3D nodding for the shading and the nose's overlap.
The fit uses the same train part of the fixed real split as the shape prior; val and test are never used.
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from landmix.generate import shape_prior
from landmix.schemes import IBUG68

LEFT_EYE, RIGHT_EYE = IBUG68.norm_pair  # the outer eye corners

ANGLES = ("yaw", "pitch", "roll")
INNER = np.arange(17, 68)  # the points whose x-ray and annotator positions agree: the jaw is not used
FACES = 1500  # generated faces per noise measurement
ITERATIONS = 3
FLOOR_DEG = 5.0  # the least spread the fit sets: about half the estimator's error on pitch


def estimate(shapes: np.ndarray) -> np.ndarray:
    """(N, 3) degrees (yaw, pitch, roll, in face3d.rotation's convention) of (N, 68, 2) pixel shapes."""
    from landmix.generate import face3d

    model = np.ascontiguousarray(face3d.mean_shape()[INNER] - face3d.PIVOT)
    typical = float(np.exp(np.log(face3d.FaceConfig.distance_mm).mean()))
    out = np.empty((len(shapes), 3))
    for n, p in enumerate(np.asarray(shapes, np.float64)):
        f = np.linalg.norm(p[RIGHT_EYE] - p[LEFT_EYE]) * typical / face3d.EYE_CORNERS_MM
        c = p[INNER].mean(0)
        camera = np.array([[f, 0, c[0]], [0, f, c[1]], [0, 0, 1]])
        _, rvec, _ = cv2.solvePnP(
            model, np.ascontiguousarray(p[INNER]), camera, None, flags=cv2.SOLVEPNP_ITERATIVE
        )
        r = cv2.Rodrigues(rvec)[0]  # = rotation(yaw, pitch, roll) = Rz Rx Ry
        eye = p[RIGHT_EYE] - p[LEFT_EYE]
        out[n] = np.degrees(
            [np.arctan2(r[2, 0], r[2, 2]), -np.arcsin(np.clip(r[2, 1], -1, 1)), np.arctan2(eye[1], eye[0])]
        )
    return out


def generated_spread(sd: np.ndarray, faces: int = FACES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(3,) the spread of `estimate` on `faces` generated faces drawn with pose sigmas `sd` (degrees), and (3,)
    the spread of its error there (the truth is known)."""
    from landmix.generate.face3d import FaceConfig, sample_face

    cfg = FaceConfig(yaw_sigma=float(sd[0]), pitch_sigma=float(sd[1]), roll_sigma=float(sd[2]), look=())
    rng = np.random.default_rng(seed)
    drawn = [sample_face(rng, cfg, 256) for _ in range(faces)]
    est = estimate(np.stack([f.annotator for f in drawn]))
    return est.std(0), (est - [[f.yaw, f.pitch, f.roll] for f in drawn]).std(0)


def fit(shapes: np.ndarray, faces: int = FACES) -> dict:
    """The head-pose spread of real (N, 68, 2) shapes in pixels: see the module docstring."""
    if len(shapes) < 50:
        raise ValueError(
            f"{len(shapes)} faces: too few to fit a pose spread; give a folder with more 300-W faces"
        )
    real = estimate(shapes).std(0)
    sd = real.copy()
    for _ in range(ITERATIONS):  # the estimate's spread grows about in proportion to the drawn one's
        drawn, _ = generated_spread(sd, faces)
        sd = np.maximum(sd * real / drawn, FLOOR_DEG)
    fitted = np.maximum(np.round(sd), FLOOR_DEG)
    drawn, error = generated_spread(fitted, faces)
    as_dict = lambda v: {a: round(float(x), 2) for a, x in zip(ANGLES, v)}  # noqa: E731
    return {
        "faces": int(len(shapes)),
        "sd_deg": as_dict(fitted),
        "real_estimate_sd_deg": as_dict(real),
        "generated_estimate_sd_deg": as_dict(drawn),
        "estimator_error_sd_deg": as_dict(error),
        "floor_deg": FLOOR_DEG,
    }


def main(argv: list[str] | None = None) -> int:
    from landmix.config import DataConfig
    from landmix.sources.faces import list_faces, split_faces

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data", required=True, help="a 300-W folder (.pts beside images); its train split is used"
    )
    args = p.parse_args(argv)
    faces = split_faces(list_faces(args.data, "300w"), "train", DataConfig())
    pose = fit(np.stack([pts for _, pts in faces]))
    prior = json.loads(shape_prior.FILE.read_text())
    shape_prior.write({**prior, "head_pose": pose}, shape_prior.FILE)
    print(
        f"head pose of {pose['faces']} faces: sd {pose['sd_deg']} degrees (the real faces' estimates "
        f"{pose['real_estimate_sd_deg']}, the generated faces' {pose['generated_estimate_sd_deg']}) -> "
        f"{shape_prior.FILE}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
