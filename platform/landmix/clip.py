"""Synthetic video clips with known landmarks: one generated face turning its head and talking, every frame's
truth the generator's own labels.

    python -m landmix.clip out/clip.mp4 --frames 240 --fps 30 --size 256 --seed 11

The generator draws a whole face from one rng (`face3d.sample_face`: identity, expression, pose, camera, then
`render.render`: appearance). A clip keeps the identity and the appearance and scripts the rest: every frame
draws from the same seeded rng, through `Scripted`, a stand-in for it that answers the draws the clip sets and
passes every other draw to a fresh `np.random.Generator` of that seed (so every frame has the same face, hair,
background and light):

- head pose: the `normal(0, sigma)` draw of each angle (`FaceConfig`'s yaw, pitch and roll sigma) answers the
  frame's angle: a turn from one side to the other (yaw), a nod (pitch), a tilt (roll);
- talking: the `uniform()` draw of the inner lips' gap quantile (the shape prior's fitted gap distribution;
  the lower lip and jaw follow it) answers a syllable-rate opening and closing;
- camera: the distance is fixed, and the share of the image the face takes is set so that the focal length
  (pixels per mm) is the same in every frame (the generator frames each face by its 68-point box, which grows
  when the mouth opens: a first, geometry-only draw measures it); the box's centre drifts slowly.

Nothing under `landmix.generate` changes: the generator's version (its probe samples' bytes) is untouched.
The truth is the `annotator` labels (IBUG68, the 300-W human convention the detector is trained to predict: the
jaw on the visible outline), 0-based pixels; the x-ray labels (SYNTH70) are saved too. Written: the video
(`cv2.VideoWriter`: mp4v for .mp4, MJPG for .avi, the two codecs opencv-python-headless writes here) and
`<stem>_truth.npz` beside it (annotator (T, 68, 2), xray (T, 70, 2), time_s, yaw, pitch, roll, mouth, fps).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from landmix.generate.face3d import FaceConfig, sample_face
from landmix.generate.render import render

CODECS = {".mp4": "mp4v", ".avi": "MJPG"}  # the fourcc each container gets
DISTANCE_MM = 700.0  # camera to head
FACE_FRAC = 0.5  # the 68-point box's long side / image side in the first frame


@dataclass(frozen=True)
class Motion:
    """A clip's script, as functions of time t in seconds."""

    yaw_deg: float = 35.0  # the turn: yaw runs 0 .. +yaw_deg .. -yaw_deg .. 0 over turn_s (frontal first,
    # where dlib's frontal-face detector finds it)
    turn_s: float = 6.0
    pitch_deg: float = 8.0  # a nod, period nod_s
    nod_s: float = 2.5
    roll_deg: float = 6.0  # a tilt, period 2 turn_s / 3
    syllables_hz: float = 3.0  # mouth openings per second while talking
    drift_frac: float = 0.04  # the face box centre drifts this share of the image side (slow circle)

    def pose(self, t: float) -> tuple[float, float, float]:
        yaw = self.yaw_deg * math.sin(2 * math.pi * t / self.turn_s)
        pitch = self.pitch_deg * math.sin(2 * math.pi * t / self.nod_s)
        roll = self.roll_deg * math.sin(3 * math.pi * t / self.turn_s)
        return yaw, pitch, roll

    def mouth(self, t: float) -> float:
        """The inner lips' gap quantile 0..1 (the prior's distribution: about 0.4 and under is closed)."""
        return 0.3 + 0.68 * abs(math.sin(math.pi * self.syllables_hz * t))

    def drift(self, t: float) -> np.ndarray:
        """The face box centre's offset in units of FaceConfig.center_jitter x image side (-1..1)."""
        w = 2 * math.pi * t / (2 * self.turn_s)
        return np.array([math.sin(w), 0.5 * math.sin(2 * w)])


class Scripted:
    """The generator's rng for one frame: the draws of `sample_face` the clip sets are answered, every other
    draw comes from a fresh Generator of `seed` (the same values in every frame). The answers are keyed by what
    the call looks like (face3d.sample_face draws, in order: identity, expression, gaze, pose, distance,
    framing)."""

    def __init__(self, seed: int, cfg: FaceConfig, pose, mouth: float, frac: float, centre: np.ndarray):
        self.rng = np.random.default_rng(seed)
        self.angles = dict(zip((cfg.yaw_sigma, cfg.pitch_sigma, cfg.roll_sigma), pose))
        if len(self.angles) != 3:
            raise ValueError("Scripted: the pose sigmas must differ to tell the three angles' draws apart")
        self.cfg, self.mouth, self.frac, self.centre = cfg, mouth, frac, centre
        self.pairs = 0  # uniform(-1, 1, 2) draws so far: the gaze, then the framing's centre

    def normal(self, loc=0.0, scale=1.0, size=None):
        if size is None and loc == 0.0 and isinstance(loc, float) and scale in self.angles:
            self.rng.normal(loc, scale)  # keep the stream where sample_face expects it
            return self.angles[scale]
        return self.rng.normal(loc, scale, size)

    def uniform(self, low=0.0, high=1.0, size=None, *rest):
        value = self.rng.uniform(low, high, size)
        lo, hi = np.log(self.cfg.distance_mm)
        if (low, high, size) == (0.0, 1.0, None) and not rest and isinstance(low, float):
            return self.mouth  # uniform(): the inner lips' gap quantile
        if size is None and (low, high) == (lo, hi):
            return math.log(DISTANCE_MM)
        if size is None and (low, high) == tuple(self.cfg.face_frac):
            return self.frac
        if size == 2 and (low, high) == (-1, 1):
            self.pairs += 1
            return self.centre if self.pairs == 2 else value
        return value

    def __getattr__(self, name):  # random, integers, ...: the seed's own draws
        return getattr(self.rng, name)


def clip_config() -> FaceConfig:
    """The generator's config for clips: neutral expression (the mouth is scripted), no pose limit hit."""
    return FaceConfig(expression_prob=0.0, yaw_max=90.0, pitch_max=30.0, roll_max=30.0)


def frame(seed: int, size: int, t: float, motion: Motion, focal: float | None, cfg: FaceConfig):
    """(image (S, S, 3) uint8 RGB, Face) of the clip at time t; focal: pixels per mm to keep (None: measure it
    at FACE_FRAC and return that frame)."""
    pose, mouth, centre = motion.pose(t), motion.mouth(t), motion.drift(t)
    face = sample_face(Scripted(seed, cfg, pose, mouth, FACE_FRAC, centre), cfg, size)
    if focal is not None:  # the box's side at this pose and mouth, in normalised units, from the first draw
        side_norm = FACE_FRAC * size / (face.px_per_mm * DISTANCE_MM)
        frac = focal * DISTANCE_MM * side_norm / size
        face = sample_face(Scripted(seed, cfg, pose, mouth, frac, centre), cfg, size)
    image, _ = render(face, np.random.default_rng([seed, 1]), cfg.look, cfg.light_softness)
    return image, face


def make_clip(
    path, frames: int = 240, fps: float = 30.0, size: int = 256, seed: int = 11, motion=None
) -> dict:
    """Write the clip to path (.mp4 or .avi) and its truth beside it; returns the truth arrays."""
    path = Path(path)
    if path.suffix.lower() not in CODECS:
        raise ValueError(f"{path}: write the clip as {' or '.join(CODECS)}")
    if frames < 1 or fps <= 0 or not 64 <= size <= 1024:
        raise ValueError(f"frames={frames}, fps={fps}, size={size}: give frames >= 1, fps > 0, size 64..1024")
    motion, cfg = motion or Motion(), clip_config()
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*CODECS[path.suffix.lower()]), fps, (size, size)
    )
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write {CODECS[path.suffix.lower()]} here")
    focal = frame(seed, size, 0.0, motion, None, cfg)[1].px_per_mm
    truth = {k: [] for k in ("annotator", "xray", "yaw", "pitch", "roll", "mouth")}
    for i in range(frames):
        t = i / fps
        image, face = frame(seed, size, t, motion, focal, cfg)
        writer.write(np.ascontiguousarray(image[:, :, ::-1]))
        for k, v in (("annotator", face.annotator), ("xray", face.xray), ("mouth", motion.mouth(t))):
            truth[k].append(v)
        for k, v in zip(("yaw", "pitch", "roll"), motion.pose(t)):
            truth[k].append(v)
    writer.release()
    out = {k: np.asarray(v, np.float32) for k, v in truth.items()}
    out |= {"time_s": np.arange(frames) / fps, "fps": np.float64(fps)}
    np.savez(truth_path(path), **out)
    return out


def truth_path(video) -> Path:
    """Where a clip's truth lies: <stem>_truth.npz beside the video."""
    video = Path(video)
    return video.with_name(f"{video.stem}_truth.npz")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m landmix.clip", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the clip to write (.mp4 or .avi); its truth goes beside it")
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--size", type=int, default=256, help="frame side, px")
    parser.add_argument("--seed", type=int, default=11, help="the face (identity and appearance)")
    parser.add_argument("--turn-s", type=float, default=Motion.turn_s, help="seconds of one turn and back")
    args = parser.parse_args(argv)
    try:
        make_clip(
            args.out, args.frames, args.fps, args.size, args.seed, replace(Motion(), turn_s=args.turn_s)
        )
    except (ValueError, RuntimeError) as e:
        print(f"landmix.clip: {e}", file=sys.stderr)
        return 2
    print(f"{args.frames} frames -> {args.out}, truth -> {truth_path(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
