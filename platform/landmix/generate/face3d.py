"""The 3D face-landmark model: mean shape, identity, expression, head pose, camera and both label sets.

A face is 70 3D points in millimetres (iBUG 68 order plus the two pupils, SYNTH70), in a head frame with
x to the image right of a frontal face, y down and z away from the camera. `sample_face(rng, cfg, size)`
draws an identity, an expression, a head pose and a pinhole camera, and returns a `Face`: the 2D labels in
both conventions and the projected geometry the renderer draws from (face outline, hairline, ears, neck).

Labels:
- `xray` (70, 2): exact projections of the 3D points, the FaceSynthetics convention (the jaw of a turned face
  runs across the cheek, hidden points included).
- `annotator` (68, 2): the 300-W human convention. Each jaw point slides along its own 3D "contour curve"
  (an elliptic arc on the head surface through the jaw point, from behind the jaw to the front of the cheek)
  to the point of that curve that is extreme in the point's outward image direction, i.e. onto the visible
  outline (landmark marching as in 3DDFA). The renderer fills the face with the polygon of those extreme
  points, so the annotator jaw sits on the drawn outline by construction. Points 17-67 equal the x-ray ones
  (annotators place self-occluded inner points where they guess they are).

The fitted priors (face_shape.json: landmix.generate.shape_prior) are read on first use (`mean_shape`, a
`FaceConfig` whose pose or light is the fitted one), never at import. The look's step names come from
landmix.generate.look, which holds no drawing: the geometry imports nothing of the renderer.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from landmix.generate import shape_prior
from landmix.generate.look import STEPS, light_ranges

LOOK = STEPS  # the default look: every step

# Depth (mm, + away from the camera) of each iBUG point relative to the inner eye corners.
_DEPTH = np.array(
    [
        80,
        73,
        63,
        50,
        35,
        20,
        8,
        -2,
        -5,
        -2,
        8,
        20,
        35,
        50,
        63,
        73,
        80,  # jaw
        10,
        2,
        -4,
        -6,
        -6,
        -6,
        -6,
        -4,
        2,
        10,  # brows
        -8,
        -16,
        -24,
        -32,
        -12,
        -18,
        -20,
        -18,
        -12,  # nose
        8,
        2,
        0,
        0,
        3,
        3,
        0,
        0,
        2,
        8,
        3,
        3,  # eyes
        5,
        -6,
        -11,
        -12,
        -11,
        -6,
        5,
        -6,
        -9,
        -10,
        -9,
        -6,  # outer lips
        2,
        -7,
        -8,
        -7,
        2,
        -6,
        -7,
        -6,  # inner lips
    ],
    dtype=np.float64,
)
EYE_CORNERS_MM = 85.0  # the mean face's outer eye corner span: the scale of the shape prior's unit
PIVOT = np.array([0.0, 30.0, 90.0])  # head rotation centre (mm): between the ears, above the neck


JAW = np.arange(17)
_THETAS = np.radians(np.linspace(-80, 90, 30))  # position along each contour curve: back (-) to front (+)
_CRANIUM_ANGLES = np.radians(np.linspace(-5, -175, 19))
_GOLDEN = np.pi * (3 - np.sqrt(5))
# unit sphere
_SPHERE = np.stack(
    [
        np.sqrt(1 - np.linspace(-1, 1, 80) ** 2) * np.cos(_GOLDEN * np.arange(80)),
        np.linspace(-1, 1, 80),
        np.sqrt(1 - np.linspace(-1, 1, 80) ** 2) * np.sin(_GOLDEN * np.arange(80)),
    ],
    1,
)


POSES = ("wide", "real")  # FaceConfig.pose
WIDE_POSE = {"yaw": 30.0, "pitch": 12.0, "roll": 10.0}  # degrees: profiles and strong nods stay in the set


@dataclass(frozen=True)
class FaceConfig:
    """How faces are sampled. Angles in degrees; pose angles are truncated normals N(0, sigma) on [-max, max]."""

    # the pose's spreads (None: those of `pose`); pose "wide" (the default) turns faces twice as far as the 300-W
    # faces do, "real" draws the spread fitted on them (face_shape.json "head_pose": landmix.generate.pose_prior)
    pose: str = "wide"
    yaw_sigma: float | None = None
    yaw_max: float = 90.0  # |yaw| limit (profile)
    pitch_sigma: float | None = None
    pitch_max: float = 30.0
    roll_sigma: float | None = None
    roll_max: float = 30.0
    distance_mm: tuple[float, float] = (350.0, 1500.0)  # camera-to-head distance, log-uniform
    face_frac: tuple[float, float] = (0.40, 0.60)  # longer side of the 68-point box / image side
    center_jitter: float = 0.06  # principal-point jitter, fraction of the image side
    identity_scale: float = 1.0  # 0 = the mean face; 1 = the default spread of face shapes
    expression_prob: float = 0.6  # chance of a non-neutral expression
    look: tuple[str, ...] = LOOK  # the renderer's photographic steps (landmix.generate.look.STEPS); () = flat
    # The shading step's ambient against key light, 0 (hard key light) .. 1 (mostly ambient; look.light_ranges);
    # None: the softness fitted on real photos (face_shape.json "light": landmix.generate.light_prior)
    light_softness: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "look", tuple(self.look))  # a list after asdict() and a Ray hop
        if self.pose not in POSES:
            raise ValueError(f"FaceConfig.pose={self.pose!r}: choose from {POSES}")
        for angle in ("yaw", "pitch", "roll"):
            if getattr(self, f"{angle}_sigma") is None:
                spread = WIDE_POSE if self.pose == "wide" else shape_prior.load()["pose_sd"]
                if spread is None:
                    raise RuntimeError(
                        f"{shape_prior.FILE} has no head_pose: refit it with "
                        "`python -m landmix.generate.pose_prior --data <300-W folder>`"
                    )
                object.__setattr__(self, f"{angle}_sigma", float(spread[angle]))
        if self.light_softness is None:
            softness = shape_prior.load()["light_softness"]
            if softness is None:
                raise RuntimeError(
                    f"{shape_prior.FILE} has no light: refit it with "
                    "`python -m landmix.generate.light_prior --data <300-W folder>`"
                )
            object.__setattr__(self, "light_softness", softness)
        light_ranges(self.light_softness)  # raises outside [0, 1], saying so
        bad = [s for s in self.look if s not in STEPS]
        if bad:
            raise ValueError(f"FaceConfig.look: unknown steps {bad}; choose from {STEPS}")
        if not 0 <= self.yaw_max <= 90:
            raise ValueError(f"FaceConfig.yaw_max={self.yaw_max}: use 0..90 degrees")
        if not 0 < self.face_frac[0] <= self.face_frac[1] <= 0.8:
            raise ValueError(f"FaceConfig.face_frac={self.face_frac}: use 0 < lo <= hi <= 0.8 of the image")


@functools.cache
def mean_shape() -> np.ndarray:
    """(70, 3) float64 mm, read-only: the shape prior's mean face (fitted on real near-frontal faces, symmetric),
    eye line at y=0, midline at x=0, with the hand-set depth of each point; pupils at the eyes' centres. Read
    from face_shape.json on first use, not at import."""
    mean = shape_prior.load()["mean"]
    xy = (mean - [0.0, mean[36:48, 1].mean()]) * EYE_CORNERS_MM
    # the prior's points are as photographed, i.e. after perspective: un-project them at the camera's typical
    # distance, so that a face posed there projects onto the prior's mean (else the jaw, 80 mm behind the eyes,
    # came out 9 % narrower than in the photos)
    typical = float(np.exp(np.log(FaceConfig.distance_mm).mean())) - PIVOT[2]  # to the eyes' depth
    xy = PIVOT[:2] + (xy - PIVOT[:2]) * ((typical + _DEPTH) / typical)[:, None]
    pts = np.concatenate([xy, _DEPTH[:, None]], axis=1)
    pupils = np.stack([pts[36:42].mean(0), pts[42:48].mean(0)]) + [0, 0, -2.0]
    shape = np.concatenate([pts, pupils])
    shape.setflags(write=False)  # one array for every caller
    return shape


@dataclass(frozen=True)
class Face:
    """One posed face projected into a `size` x `size` image; 2D arrays are float32 0-based pixels."""

    size: int
    xray: np.ndarray  # (70, 2) SYNTH70 projections of the 3D points
    annotator: np.ndarray  # (68, 2) IBUG68 human convention (jaw on the visible outline)
    outline: np.ndarray  # (M, 2) closed visible outline of the head (jaw + cranium), the skin polygon
    # (H, 2) front hairline, image-left sideburn over the forehead to the image-right one
    hairline: np.ndarray
    ears: (
        tuple  # image-left, image-right ear: (pts (5, 2): centre, top, bottom, front, back; facing < 0: seen)
    )
    neck: np.ndarray  # (N, 2) points whose convex hull is the neck
    shoulders: np.ndarray  # (S, 2) points whose convex hull is the shoulders
    skull: np.ndarray  # (80, 2) points whose convex hull is the cranium (back of the head included)
    down: np.ndarray  # (2,) unit image direction of the head's down axis (chin-wards)
    rotation: np.ndarray  # (3, 3) head-to-camera rotation
    yaw: float  # degrees, + turns the face towards image right
    pitch: float
    roll: float
    eye_open: tuple[float, float]  # openness of the image-left and image-right eye, 0 closed .. 1 open
    mouth_open: float  # 0..1
    px_per_mm: float  # image scale at the head's distance
    depth: np.ndarray  # (70,) mm along the camera axis from the head's pivot, + away


def truncated_normal(rng: np.random.Generator, sigma: float, limit: float) -> float:
    """One draw of N(0, sigma) truncated to [-limit, limit] (rejection; limit >= sigma/4 keeps it cheap)."""
    if limit <= 0:
        return 0.0
    while True:
        v = rng.normal(0.0, sigma)
        if abs(v) <= limit:
            return float(v)


def truncated_normal_cdf(x: np.ndarray, sigma: float, limit: float) -> np.ndarray:
    """CDF of `truncated_normal` (for tests and plots)."""
    phi = lambda v: 0.5 * (1 + np.vectorize(math.erf)(np.asarray(v) / (sigma * math.sqrt(2))))  # noqa: E731
    lo, hi = phi(-limit), phi(limit)
    return (phi(np.clip(x, -limit, limit)) - lo) / (hi - lo)


def sample_pose(rng: np.random.Generator, cfg: FaceConfig) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees."""
    return (
        truncated_normal(rng, cfg.yaw_sigma, cfg.yaw_max),
        truncated_normal(rng, cfg.pitch_sigma, cfg.pitch_max),
        truncated_normal(rng, cfg.roll_sigma, cfg.roll_max),
    )


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) R = Rz(roll) Rx(pitch) Ry(yaw); + yaw turns the nose towards image right, + pitch looks up."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def _identity(rng: np.random.Generator, scale: float) -> np.ndarray:
    """(70, 3) an individual face with its expression at rest: the shape prior's modes in x and y (fitted on
    real near-frontal faces, so identity and everyday expression together) and the spread they leave; the
    depth's proportions and the nose's length by hand."""
    prior = shape_prior.load()
    s = mean_shape().copy()
    b = rng.normal(0, 1, len(prior["sd"])) * prior["sd"] * scale
    s[:68, :2] += np.tensordot(b, prior["modes"], 1) * EYE_CORNERS_MM
    s[:68, :2] += rng.normal(0, prior["residual_sd"] * EYE_CORNERS_MM * scale, (68, 2))
    s[:, 2] *= 1 + scale * rng.normal(0, 0.08)
    s[30, 2] -= scale * rng.normal(0, 4)  # nose length (depth)
    # the inner lips' gap from its own fitted distribution (closed on 4 real faces in 10): the modes and the
    # per-point spread, Gaussian, open as many mouths as they close; the lower lip and the jaw follow the change
    if prior["gap_quantiles"] is None:
        raise RuntimeError(
            f"{shape_prior.FILE} has no inner_lips_gap_quantiles: refit it with "
            "`python -m landmix.generate.shape_prior --data <300-W folder>`"
        )
    target = np.interp(rng.uniform(), np.linspace(0, 1, len(prior["gap_quantiles"])), prior["gap_quantiles"])
    _drop_jaw(s, target * EYE_CORNERS_MM - (s[[65, 66, 67], 1].mean() - s[[61, 62, 63], 1].mean()))
    for upper, lower in ((61, 67), (62, 66), (63, 65), (37, 41), (38, 40), (43, 47), (44, 46)):
        if s[lower, 1] < s[upper, 1] or (upper > 60 and target < 0.005):  # lids or lips crossing, or closed
            s[[upper, lower], 1] = s[[upper, lower], 1].mean()  # closed, as annotated
    return s


def _drop_jaw(s: np.ndarray, drop: float) -> None:
    """Open (drop > 0, mm) or close the mouth in place: the lower lip moves by `drop`, the mouth's corners by
    under half of it, the jaw by a profile that is largest at the chin."""
    s[[55, 56, 57, 58, 59, 65, 66, 67], 1] += drop
    s[[48, 54, 60, 64], 1] += drop * 0.45
    s[JAW, 1] += drop * np.array([0, 0, 0, 0.1, 0.25, 0.45, 0.7, 0.9, 1, 0.9, 0.7, 0.45, 0.25, 0.1, 0, 0, 0])


def _expression(rng: np.random.Generator, s: np.ndarray, prob: float) -> tuple[np.ndarray, tuple, float]:
    """Open the mouth wide (beyond what the prior's faces show), close or wink the eyes, set the gaze; returns
    (shape, eye_open, mouth_open), mouth_open 0..1 from the inner lips' gap (1 = 20 mm)."""
    s = s.copy()
    active = rng.random() < prob
    mouth = rng.uniform(0, 1) ** 1.5 if active and rng.random() < 0.15 else 0.0
    closed = rng.uniform(0, 1) if active and rng.random() < 0.15 else 0.0
    wink = rng.uniform(0, 1) if active and rng.random() < 0.1 else 0.0
    _drop_jaw(s, 22.0 * mouth)  # mm
    openness = (max(0.0, 1 - closed - wink), max(0.0, 1 - closed))
    for (u1, u2, l1, l2), op in zip(((37, 38, 41, 40), (43, 44, 47, 46)), openness):
        for u, lo in ((u1, l1), (u2, l2)):
            s[u, 1] = s[lo, 1] + (s[u, 1] - s[lo, 1]) * max(op, 0.02)
    gaze = rng.uniform(-1, 1, 2) * [0.22, 0.12]
    for p, eye in ((68, s[36:42]), (69, s[42:48])):
        w = eye[3, 0] - eye[0, 0]
        h = eye[[1, 2], 1].mean() - eye[[4, 5], 1].mean()
        s[p, :2] = eye[[0, 3]].mean(0)[:2] + gaze * [w, abs(h) * 0.5]
    gap = s[[65, 66, 67], 1].mean() - s[[61, 62, 63], 1].mean()
    return s, openness, float(np.clip(gap / 20.0, 0.0, 1.0))


def _contour_curves(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Surface curves whose image-extreme points form the head outline; curves 0..16 are the jaw.

    Returns curves (C, T, 3) mm, from behind the frontal silhouette (t=0) to the front of the face (t=T-1),
    and each curve's outward direction in the head frame (C, 3).
    """
    jaw = s[JAW]
    tangent = np.gradient(jaw[:, :2], axis=0)
    # outward for a jaw ordered image-left -> right (y down)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    k = np.abs(np.arange(17) - 8) / 8.0
    # cranium: an elliptic outline over the top of the head from jaw 16 back round to jaw 0
    top = s[[0, 16], 1].mean()
    half_w = (s[16, 0] - s[0, 0]) / 2
    ang = _CRANIUM_ANGLES
    crown = np.stack(
        [half_w * 1.02 * np.cos(ang), top + 1.25 * half_w * np.sin(ang), np.full_like(ang, 80.0)], 1
    )
    sil = np.concatenate([jaw, crown])  # (C, 3) the frontal silhouette point of each curve
    out = np.zeros_like(sil)
    out[:17, :2] = normal
    out[17:, 0], out[17:, 1] = np.cos(ang), np.sin(ang)
    # inward (mm)
    reach = np.concatenate([14 + 38 * k - 48 * np.maximum(k - 0.5, 0), 30 + 22 * np.abs(np.sin(ang))])
    # depth from the silhouette to the front of the cheek / chin / forehead, and how far the curve goes back
    front = np.concatenate([np.maximum(jaw[:, 2] - (-4 + 14 * k), 4), np.full_like(ang, 78.0)])
    back = np.concatenate([28 + 30 * (1 - k), np.full_like(ang, 40.0)])
    depth = np.where(_THETAS[None] > 0, front[:, None], back[:, None]) * np.sin(_THETAS)[None]  # (C, T)
    curves = (sil - reach[:, None] * out)[:, None] + (
        np.cos(_THETAS)[None, :, None] * reach[:, None, None]
    ) * out[:, None]
    curves[..., 2] -= depth
    return curves, out


def _project(pts: np.ndarray, rot: np.ndarray, dist: float) -> np.ndarray:
    """Normalised pinhole projection (x/z, y/z) of head-frame points (..., 3) posed by rot at distance dist."""
    cam = (pts - PIVOT) @ rot.T + [0, 0, dist]
    return cam[..., :2] / cam[..., 2:3]


def sample_face(rng: np.random.Generator, cfg: FaceConfig, size: int) -> Face:
    """Draw identity, expression, pose and camera; project everything into a size x size image."""
    shape = _identity(rng, cfg.identity_scale)
    shape, eye_open, mouth_open = _expression(rng, shape, cfg.expression_prob)
    yaw, pitch, roll = sample_pose(rng, cfg)
    rot = rotation(yaw, pitch, roll)
    lo, hi = np.log(cfg.distance_mm)
    dist = float(np.exp(rng.uniform(lo, hi)))
    xray = _project(shape, rot, dist)
    curves, out3 = _contour_curves(shape)
    out_img = (out3 @ rot.T)[:, :2]  # each curve's outward direction in the image
    out_img /= np.linalg.norm(out_img, axis=1, keepdims=True) + 1e-9
    proj_curves = _project(curves, rot, dist)  # (C, T, 2)
    best = np.argmax(np.einsum("ctk,ck->ct", proj_curves, out_img), axis=1)
    outline = proj_curves[np.arange(len(curves)), best]
    annotator = xray[:68].copy()
    annotator[JAW] = outline[:17]
    # hairline over the forehead, ears, neck and shoulders
    brow_y = shape[17:27, 1].min()
    hx = np.linspace(-1, 1, 11)
    half_w = (shape[16, 0] - shape[0, 0]) / 2
    hair3 = np.stack([hx * half_w * 0.92, brow_y - 28 + 10 * hx**2, 6 + 55 * hx**4], 1)
    burns = np.array([[-half_w * 0.97, shape[0, 1] + 5, 62], [half_w * 0.97, shape[0, 1] + 5, 62]])
    hair3 = np.vstack([burns[0], hair3, burns[1]])  # sideburns in front of the ears
    hairline = _project(hair3, rot, dist)
    ears = []
    for side, jp in ((-1, 1), (1, 15)):
        c3 = np.array([side * (half_w * 0.97), shape[jp, 1] - 8, 82.0])
        pts3 = c3 + np.array([[0, 0, 0], [0, -30, 0], [0, 30, 0], [0, 0, -16], [0, 0, 16]])
        facing = float((np.array([side, 0.0, 0.0]) @ rot.T)[2])  # < 0: the ear's outside faces the camera
        ears.append((_project(pts3, rot, dist), facing))
    ring = np.radians(np.arange(0, 360, 30))
    neck3 = np.concatenate(
        [
            np.stack([r * np.cos(ring), np.full_like(ring, y), 80 + 40 * np.sin(ring)], 1)
            for y, r in ((shape[8, 1] - 30, 42), (shape[8, 1] + 70, 48))
        ]
    )
    sh3 = np.concatenate(
        [
            np.stack([r * np.cos(ring), np.full_like(ring, y), 95 + 0.4 * r * np.sin(ring)], 1)
            for y, r in ((shape[8, 1] + 45, 90), (shape[8, 1] + 85, 190), (shape[8, 1] + 260, 230))
        ]
    )
    neck, shoulders = _project(neck3, rot, dist), _project(sh3, rot, dist)
    skull3 = _SPHERE * [half_w * 1.04, 80, 80] + [0, shape[27, 1] - 40, 96]
    skull = _project(skull3, rot, dist)
    down = (rot @ [0.0, 1.0, 0.0])[:2]
    down = (down / (np.linalg.norm(down) + 1e-9)).astype(np.float32)
    # camera: focal length and principal point put the 68-point box at a random size and position
    both = np.vstack([xray, annotator])
    box_lo, box_hi = both.min(0), both.max(0)
    side = float((box_hi - box_lo).max())
    frac = rng.uniform(*cfg.face_frac)
    f = frac * size / side
    centre = (size - 1) / 2 + rng.uniform(-1, 1, 2) * cfg.center_jitter * size
    c = centre - f * (box_lo + box_hi) / 2
    to_px = lambda p: (p * f + c).astype(np.float32)  # noqa: E731
    return Face(
        size=size,
        xray=to_px(xray),
        annotator=to_px(annotator),
        outline=to_px(outline),
        hairline=to_px(hairline),
        ears=tuple((to_px(p), fac) for p, fac in ears),
        neck=to_px(neck),
        shoulders=to_px(shoulders),
        skull=to_px(skull),
        down=down,
        rotation=rot,
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        eye_open=eye_open,
        mouth_open=mouth_open,
        px_per_mm=f / dist,
        depth=((shape - PIVOT) @ rot.T)[:, 2].astype(np.float32),
    )
