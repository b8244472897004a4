"""`landmix predict` on a video: 68 landmarks per frame, tracked from frame to frame, smoothed against jitter.

    landmix predict --checkpoint out/real/checkpoint clip.mp4 --out out/video
    landmix predict --checkpoint CKPT clip.avi --out DIR --no-smooth            # raw points only
    landmix predict --checkpoint CKPT clip.mp4 --out DIR --min-cutoff 0.5 --beta 1

A path with a video suffix (VIDEO_SUFFIXES; anything OpenCV's VideoCapture reads) comes here from
`landmix predict`. One face per frame (the detector's best), frame by frame:
1. detect: on the first frame, and whenever the track is lost, dlib's detector and the model's passes, as
   `landmix predict` does on a photo (`Predictor.faces`);
2. track: otherwise the previous frame's raw points give this frame's crop (`crops.box_for(points, crop_scale)`:
   the training crop around them) and the model predicts from it (TRACK_PASSES passes: the second re-crops
   around the first answer, correcting the head's motion since the last frame);
3. lost, the rule: the tracked points' box (its long side) is under MIN_FACE_PX or changed by more than
   SCALE_CHANGE x since the last frame (a face does not change size that fast between frames: the model lost
   it), or its centre left the frame; and every `redetect_every` frames (default: once a second) the
   detector looks too: where it finds faces and none overlaps the track (IoU under detect.MIN_IOU with the
   points' box) the track is on something else and is dropped. Where the detector finds nothing the track
   goes on: dlib misses turned heads that the tracker still follows;
4. smooth: the One Euro filter (`landmix.one_euro`, Casiez et al., CHI 2012) over the raw points, speeds in
   inter-ocular distances per second, time from the video's frame rate; it restarts after a frame without face.

Writes to DIR, for video <stem>: <stem>_landmarks.csv (one row per frame, every frame: frame, time_s, status
in {detected, tracked, no_face, unreadable}, why (a detection's reason), the crop, raw points x0,y0..x67,y67
and smoothed sx0,sy0..; empty where no face), <stem>_landmarks.mp4 (the frames with the smoothed points in red
and the raw ones in green, every frame, unreadable ones black), and <stem>_landmarks.json (the filter's
parameters, the tracking rule's constants, the counts per status, the checkpoint). A frame OpenCV cannot decode
(the container counts it, the read fails) is a row with status unreadable; the exit status is then 1.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from landmix import crops, detect
from landmix.one_euro import OneEuro, OneEuroParams
from landmix.predict import Predictor, landmarks_of
from landmix.schemes import IBUG68, interocular

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp")
TRACK_PASSES = 2  # model passes from the previous frame's crop
SCALE_CHANGE = 1.5  # lost: the points' box side changed by more than this factor since the last frame
MIN_FACE_PX = 8.0  # lost: the points' box side under this (a collapsed answer)
STATUSES = ("detected", "tracked", "no_face", "unreadable")


def is_video(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def side_of(pts: np.ndarray) -> float:
    x0, y0, x1, y1 = crops.landmark_box(np.asarray(pts, np.float64))
    return float(max(x1 - x0, y1 - y0))


def lost_reason(pts: np.ndarray, prev: np.ndarray, shape) -> str:
    """Why tracked points (K, 2) are not a face any more ('' when they are), against the last frame's points."""
    side, last = side_of(pts), side_of(prev)
    if side < MIN_FACE_PX:
        return f"lost: points' box {side:.1f} px"
    if not 1 / SCALE_CHANGE <= side / last <= SCALE_CHANGE:
        return f"lost: box side x{side / last:.2f} in one frame"
    cx, cy = pts.mean(0)
    if not (0 <= cx < shape[1] and 0 <= cy < shape[0]):
        return "lost: left the frame"
    return ""


class Tracker:
    """One face through a video's frames: `step(image) -> (status, why, crop, raw points or None)`."""

    def __init__(self, predictor: Predictor, redetect_every: int):
        self.predictor, self.redetect_every = predictor, max(0, redetect_every)
        self.prev, self.since_detect = None, 0

    def detect(self, image, why: str):
        faces = self.predictor.faces(image)
        if not faces:
            self.prev = None
            return "no_face", why, None, None
        self.prev, self.since_detect = faces[0]["points"], 0
        return "detected", why, faces[0]["crop"], faces[0]["points"]

    def step(self, image: np.ndarray):
        if self.prev is None:
            return self.detect(image, "no face before")
        model = self.predictor.model
        crop = crops.box_for(self.prev, model.cfg.crop_scale)
        pts = landmarks_of(model, [(image, crop)], TRACK_PASSES)[0]
        why = lost_reason(pts, self.prev, image.shape)
        self.since_detect += 1
        if not why and self.redetect_every and self.since_detect >= self.redetect_every:
            self.since_detect = 0
            boxes = detect.detect_faces(image)
            if len(boxes) and detect.match(boxes, pts)[0] < 0:
                why = "lost: the detector's faces are elsewhere"
        if why:
            return self.detect(image, why)
        self.prev = pts
        return "tracked", "", crop, pts


def open_video(path) -> tuple[cv2.VideoCapture, float, int]:
    """(capture, frames per second, frame count the container states (0: unknown)); one clear error if not."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(
            f"{path}: OpenCV cannot open this video (convert it to .mp4 or .avi, e.g. with ffmpeg)"
        )
    fps = cap.get(cv2.CAP_PROP_FPS)
    return cap, (fps if fps and fps > 0 else 0.0), max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))


def draw_frame(image, status: str, raw, smooth, index: int) -> np.ndarray:
    """BGR frame for the annotated video: raw points green (small), smoothed red, the status written."""
    canvas = np.ascontiguousarray(image[:, :, ::-1])
    r = max(1, round(max(canvas.shape[:2]) / 300))
    for pts, colour, radius in ((raw, (0, 200, 0), r), (smooth, (0, 0, 255), r + 1)):
        if pts is not None:
            for x, y in np.asarray(pts, np.float64):
                cv2.circle(canvas, (int(round(x)), int(round(y))), radius, colour, -1, cv2.LINE_AA)
    size = max(0.35, canvas.shape[0] / 600)
    cv2.putText(
        canvas, f"{index} {status}", (4, int(18 * size / 0.5)), 0, size, (255, 255, 255), 1, cv2.LINE_AA
    )
    return canvas


def columns(k: int) -> list[str]:
    head = ["frame", "time_s", "status", "why", "crop_x0", "crop_y0", "crop_side"]
    return head + [f"{a}{i}" for i in range(k) for a in "xy"] + [f"s{a}{i}" for i in range(k) for a in "xy"]


def predict_video(predictor: Predictor, path, out, params: OneEuroParams | None, redetect_every=None) -> dict:
    """Track, smooth and write one video's files (module docstring); returns <stem>_landmarks.json's content."""
    cap, fps, stated = open_video(path)
    rate = fps or 30.0  # a container without a rate: times as at 30 fps (said in the JSON)
    redetect = round(rate) if redetect_every is None else redetect_every
    out, k = Path(out), predictor.model.cfg.num_points
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    tracker, smoother = Tracker(predictor, redetect), OneEuro(params) if params else None
    counts = dict.fromkeys(STATUSES, 0)
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(out / f"{stem}_landmarks.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), rate, size)
    index = 0
    with open(out / f"{stem}_landmarks.csv", "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(columns(k))
        while True:
            ok, frame = cap.read()
            if not ok and index >= stated:
                break  # the end (a failed read within the stated count is an unreadable frame)
            t = index / rate
            if ok:
                image = frame[:, :, ::-1]
                status, why, crop, raw = tracker.step(image)
                if raw is None or smoother is None:
                    smooth = None
                    if smoother is not None:
                        smoother.reset()  # no face: the next track starts afresh
                else:
                    if status == "detected":
                        smoother.reset()  # a new track: no lag from the last one
                    smooth = smoother(raw, t, float(interocular(raw, IBUG68)))
            else:
                image = np.zeros((size[1], size[0], 3), np.uint8)
                status, why, crop, raw, smooth = "unreadable", "OpenCV could not decode it", None, None, None
                if counts["unreadable"] < 5:  # the first few said here; all of them in the CSV and the count
                    print(f"{path}: frame {index} unreadable")
            writer.write(draw_frame(image, status, raw, smooth, index))
            counts[status] += 1
            cells = [""] * (4 * k)
            if raw is not None:
                cells[: 2 * k] = [f"{v:.2f}" for v in np.asarray(raw).ravel()]
                cells[2 * k :] = [f"{v:.2f}" for v in np.asarray(raw if smooth is None else smooth).ravel()]
            box = ["", "", ""] if crop is None else [f"{v:g}" for v in crop]
            rows.writerow([index, f"{t:.4f}", status, why, *box, *cells])
            index += 1
    cap.release()
    writer.release()
    return {
        "video": str(path),
        "frames": index,
        "frames_stated": stated,
        "fps": fps or None,
        "fps_used": rate,
        "counts": counts,
        "one_face": "the detector's best face per frame; the track follows it until lost",
        "filter": None
        if params is None
        else {"name": "One Euro (Casiez, Roussel, Vogel, CHI 2012)"}
        | asdict(params)
        | {"speed_unit": "inter-ocular distances per second"},
        "smoothed_columns": "sx, sy: the filter's output"
        if params
        else "sx, sy: equal to x, y (--no-smooth)",
        "tracking": {
            "track_passes": TRACK_PASSES,
            "detect_passes": predictor.passes,
            "scale_change": SCALE_CHANGE,
            "min_face_px": MIN_FACE_PX,
            "redetect_every_frames": redetect,
            "min_iou": detect.MIN_IOU,
        },
        "points": "0-based pixel centres of the frame, IBUG68 order",
        "files": {"csv": f"{stem}_landmarks.csv", "video": f"{stem}_landmarks.mp4"},
    }


def add_arguments(parser) -> None:
    """The video flags of `landmix predict`."""
    parser.add_argument("--no-smooth", action="store_true", help="videos: raw points, no One Euro filter")
    defaults = OneEuroParams()
    parser.add_argument(
        "--min-cutoff",
        type=float,
        default=defaults.min_cutoff,
        help="videos: the filter's cutoff at rest, Hz",
    )
    parser.add_argument(
        "--beta",
        type=float,
        default=defaults.beta,
        help="videos: the filter's cutoff rise per inter-ocular distance per second of speed",
    )
    parser.add_argument(
        "--redetect-every",
        type=int,
        default=None,
        help="videos: run the detector every N tracked frames to check the track (default: the fps; 0: never)",
    )


def run(args, videos: list[str], checkpoint_folder, calibration, passes: int) -> int:
    """The videos of a `landmix predict` call: 0, or 1 when some frame could not be read."""
    try:
        if args.min_cutoff <= 0 or args.beta < 0:
            raise ValueError(
                f"--min-cutoff {args.min_cutoff} --beta {args.beta}: give a cutoff above 0 Hz, beta 0 or more"
            )
        if args.redetect_every is not None and args.redetect_every < 0:
            raise ValueError(f"--redetect-every {args.redetect_every}: give 0 (never) or a number of frames")
        params = None if args.no_smooth else OneEuroParams(min_cutoff=args.min_cutoff, beta=args.beta)
        for v in videos:
            open_video(v)[0].release()  # every video opens before any work
    except (ValueError, FileNotFoundError) as e:
        print(f"landmix predict: {e}", file=sys.stderr)
        return 2
    predictor = Predictor.load(checkpoint_folder, calibration, passes)
    bad = 0
    for v in videos:
        result = predict_video(predictor, v, args.out, params, args.redetect_every)
        result["checkpoint"] = str(Path(checkpoint_folder).resolve())
        Path(args.out, f"{Path(v).stem}_landmarks.json").write_text(json.dumps(result, indent=1))
        c = result["counts"]
        print(
            f"{v}: {result['frames']} frames: {c['detected']} detected, {c['tracked']} tracked, "
            f"{c['no_face']} with no face, {c['unreadable']} unreadable "
            f"-> {Path(args.out, result['files']['csv'])}"
        )
        bad += c["unreadable"] > 0
    return 1 if bad else 0
