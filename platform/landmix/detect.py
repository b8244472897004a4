"""Faces in photos: dlib's HOG frontal face detector, and the calibration from its boxes to the model's crop.

    boxes = detect_faces(image_rgb)                     # (N, 4) float x0, y0, x1, y1, image pixels, best first
    boxes, scores = detect_faces(image_rgb, scores=True)
    cal = BoxCalibration.load()                         # the numbers in detector_calibration.json
    x0, y0, side = cal.model_box(boxes[0], model.cfg.crop_scale)   # the square crops.box_for gives a face

    .venv/bin/python -m landmix.detect calibrate        # refits detector_calibration.json (300-W training faces)

Boxes are in the convention of `crops.landmark_box`: (x0, y0) and (x1, y1) are the pixel centres of the first
and last pixel (0-based), so a box's centre is ((x0 + x1) / 2, (y0 + y1) / 2). A detector box is not the
landmark box the model was trained around (dlib's square sits from the brows to the chin, roughly), so
`BoxCalibration` maps one onto the other: median ratio of sides and median centre offset, fitted on training
faces where both are known. The detector is deterministic: the same image gives the same boxes.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from landmix import crops, settings
from landmix.config import DataConfig
from landmix.sources.faces import face_id, list_faces
from landmix.sources.split import real_split

CALIBRATION_FILE = Path(__file__).with_name("detector_calibration.json")
# px: larger photos are downscaled to this long side before detecting (the time grows with the area)
MAX_SIDE = 1024
# px: an image whose long side is under this gets a second, 2x-upsampled look where no face was found
UPSAMPLE_BELOW = 640
# a detection belongs to a labelled face when its box overlaps the face's landmark box at least this much (IoU)
MIN_IOU = 0.3


# dlib's detector is one object per process and not safe to run from two threads at once: a Serve replica's
# warm-up (reconfigure, on a moved alias) beside a batch in its worker thread crashed the replica (SIGSEGV in
# dlib). Every run holds this lock; dlib computes on one thread anyway.
_DETECTOR_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def detector():
    """dlib's HOG frontal face detector, built once per process (most of a second)."""
    import dlib

    return dlib.get_frontal_face_detector()


def detect_faces(
    image: np.ndarray, scores: bool = False, max_side: int = MAX_SIDE, upsample_below: int = UPSAMPLE_BELOW
):
    """Faces in image (H, W, 3) or (H, W) uint8 RGB -> boxes (N, 4) float64 x0, y0, x1, y1 in the image's
    pixels, highest detector score first (and with scores=True, also the scores (N,), dlib's SVM margin).

    A photo longer than max_side is downscaled (area interpolation) before detecting and the boxes scaled
    back. dlib's detector finds faces of about 80 px and larger; a small image (long side < upsample_below)
    where none is found is looked at once more, upsampled 2x, for faces down to about 40 px."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"detect_faces wants an (H, W[, 3]) uint8 image, got {image.dtype} {image.shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    k = min(1.0, max_side / max(image.shape[:2]))
    small = image if k == 1.0 else cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    small = np.ascontiguousarray(small)
    with _DETECTOR_LOCK:
        rects, score, _ = detector().run(small, 0, 0.0)
        if not rects and max(small.shape[:2]) < upsample_below:
            rects, score, _ = detector().run(small, 1, 0.0)
    # dlib's rectangle is inclusive (left..right are pixels of the face): the convention of landmark_box.
    boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float64).reshape(-1, 4)
    boxes = (boxes + 0.5) / k - 0.5  # pixel centres of the small image -> of the original (OpenCV's resize)
    score = np.asarray(score, np.float64)
    order = np.lexsort((boxes[:, 1], boxes[:, 0], -score))  # best first; ties by position: a fixed order
    return (boxes[order], score[order]) if scores else boxes[order]


def iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes (N, 4) with one box (4,), all x0, y0, x1, y1 -> (N,)."""
    boxes, box = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(box, np.float64)
    w = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
    h = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + (box[2] - box[0]) * (box[3] - box[1]) - w * h
    return np.where(union > 0, w * h / np.maximum(union, 1e-12), 0.0)


def match(boxes: np.ndarray, pts: np.ndarray, min_iou: float = MIN_IOU) -> tuple[int, float]:
    """(index, IoU) of the detection that best overlaps the landmark box of pts (K, 2); index -1 (a miss)
    when no box overlaps it by min_iou."""
    overlap = iou(boxes, crops.landmark_box(np.asarray(pts, np.float64)))
    if not len(overlap) or overlap.max() < min_iou:
        return -1, float(overlap.max()) if len(overlap) else 0.0
    best = int(np.argmax(overlap))
    return best, float(overlap[best])


@dataclass(frozen=True)
class BoxCalibration:
    """Where the landmark box lies given a detector box (medians over training faces).

    A detector box of side D (its long side) and centre c says: the landmark box has long side scale * D
    and centre c + (dx, dy) * D.
    """

    scale: float = 1.0  # landmark-box long side / detector box side
    dx: float = 0.0  # landmark-box centre minus detector-box centre, x, in detector box sides (+ = right)
    dy: float = 0.0  # the same in y (+ = down)
    spread: tuple[float, float, float] = (0.0, 0.0, 0.0)  # median absolute deviation of (scale, dx, dy)
    n: int = 0  # faces fitted on (detected and matched); 0 = the uncalibrated identity
    missed: int = 0  # faces of the fitting set the detector did not find (no box with IoU >= MIN_IOU)
    fitted_on: str = ""  # which faces, and the command that fitted it

    @classmethod
    def fit(cls, det_boxes: np.ndarray, landmark_pts: np.ndarray, fitted_on: str = "") -> BoxCalibration:
        """Fit on det_boxes (N, 4), each face's matched detection, a row of NaN where the detector missed the
        face (counted in `missed`), and the faces' labelled points landmark_pts (N, K, 2), same pixels."""
        det = np.asarray(det_boxes, np.float64).reshape(-1, 4)
        pts = np.asarray(landmark_pts, np.float64)
        if len(det) != len(pts):
            raise ValueError(
                f"{len(det)} detector boxes for {len(pts)} faces: give one row per face (NaN = missed)"
            )
        found = ~np.isnan(det).any(axis=1)
        if found.sum() < 2:
            raise ValueError(f"{int(found.sum())} detected faces: the calibration needs at least 2")
        det, lm = det[found], crops.landmark_box(pts[found])
        side = np.maximum(det[:, 2] - det[:, 0], det[:, 3] - det[:, 1])
        long_side = np.maximum(lm[:, 2] - lm[:, 0], lm[:, 3] - lm[:, 1])
        x = np.column_stack(
            [
                long_side / side,
                ((lm[:, 0] + lm[:, 2]) - (det[:, 0] + det[:, 2])) / 2 / side,
                ((lm[:, 1] + lm[:, 3]) - (det[:, 1] + det[:, 3])) / 2 / side,
            ]
        )
        med = np.median(x, axis=0)
        mad = np.median(np.abs(x - med), axis=0)
        return cls(
            *(float(v) for v in med),
            tuple(float(v) for v in mad),
            int(found.sum()),
            int((~found).sum()),
            fitted_on,
        )

    def landmark_square(self, det_box) -> tuple[float, float, float]:
        """(cx, cy, long_side): the landmark box this detector box (x0, y0, x1, y1) predicts."""
        x0, y0, x1, y1 = (float(v) for v in det_box)
        side = max(x1 - x0, y1 - y0)
        return (x0 + x1) / 2 + self.dx * side, (y0 + y1) / 2 + self.dy * side, self.scale * side

    def model_box(self, det_box, crop_scale: float) -> tuple[float, float, float]:
        """The model-input square (x0, y0, side) of this detector box: crops.box_for(pts, crop_scale) for
        the points whose box is `landmark_square(det_box)`, in its integer-square convention."""
        cx, cy, long_side = self.landmark_square(det_box)
        corners = np.array(
            [[cx - long_side / 2, cy - long_side / 2], [cx + long_side / 2, cy + long_side / 2]]
        )
        return crops.box_for(corners, crop_scale)

    def save(self, path=CALIBRATION_FILE) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path=CALIBRATION_FILE) -> BoxCalibration:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no detector calibration; write it with `python -m landmix.detect calibrate`"
            )
        d = json.loads(path.read_text())
        return cls(
            float(d["scale"]),
            float(d["dx"]),
            float(d["dy"]),
            tuple(float(v) for v in d["spread"]),
            int(d["n"]),
            int(d["missed"]),
            str(d.get("fitted_on", "")),
        )


def fitting_faces(root: Path, data: DataConfig) -> list[tuple[Path, np.ndarray]]:
    """[(image path, labelled points (68, 2) 0-based)] of a 300-W folder's faces the calibration may be fitted on:
    the training pool and validation faces of the fixed split under `data`; never the test faces."""
    faces = list_faces(root, "300w")
    split = real_split([face_id(rel) for rel, _ in faces], data)
    keep = set(split.train) | set(split.val)
    return [(Path(root, rel), pts) for rel, pts in faces if face_id(rel) in keep]


def fit_calibration(faces: list[tuple[Path, np.ndarray]], fitted_on: str = "") -> tuple[BoxCalibration, dict]:
    """Run the detector on each face's image, match each face to the detection that best overlaps its landmark
    box (IoU >= MIN_IOU, else a miss) and fit `BoxCalibration` on the matched pairs. Returns the calibration and
    its details: faces, misses, detection time per image, IoU of the matches."""
    boxes, overlaps, missed, seconds = [], [], [], []
    for path, pts in faces:
        data = np.fromfile(str(path), np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            raise ValueError(f"{path}: not an image OpenCV can decode; remove it or replace it")
        t0 = time.perf_counter()
        found = detect_faces(np.ascontiguousarray(image[:, :, ::-1]))
        seconds.append(time.perf_counter() - t0)
        k, overlap = match(found, pts)
        boxes.append(found[k] if k >= 0 else np.full(4, np.nan))
        overlaps.append(overlap)
        if k < 0:
            missed.append(str(path))
    cal = BoxCalibration.fit(np.stack(boxes), np.stack([p for _, p in faces]), fitted_on=fitted_on)
    matched = np.asarray(overlaps)[~np.isnan(np.stack(boxes)[:, 0])]
    details = {
        "calibration": asdict(cal),
        "faces": len(faces),
        "missed": missed,
        "seconds_per_image": {
            "median": float(np.median(seconds)),
            "mean": float(np.mean(seconds)),
            "max": float(np.max(seconds)),
        },
        "iou_of_matches": {"median": float(np.median(matched)), "min": float(matched.min())},
    }
    return cal, details


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m landmix.detect", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser(
        "calibrate", help="fit the detector-box calibration on the 300-W training and validation faces"
    )
    c.add_argument(
        "--data", type=Path, default=None, help="the 300-W folder (default: $LANDMIX_DATA_ROOT/300w)"
    )
    c.add_argument(
        "--out",
        type=Path,
        default=CALIBRATION_FILE,
        help="where the calibration goes (default: the "
        "package's detector_calibration.json, which `landmix predict` and `eval --boxes detector` read)",
    )
    c.add_argument(
        "--details", type=Path, default=None, help="also write the details (misses, seconds per image) here"
    )
    args = p.parse_args(argv)
    root = args.data or settings.data_root() / "300w"
    faces = fitting_faces(root, DataConfig())  # the split every preset trains with
    cal, details = fit_calibration(
        faces,
        fitted_on=(
            f"shared 300-W training faces (afw, helen/trainset): the fixed split's train + val, {len(faces)} "
            "faces, test faces unused; `.venv/bin/python -m landmix.detect calibrate`"
        ),
    )
    cal.save(args.out)
    if args.details:
        args.details.parent.mkdir(parents=True, exist_ok=True)
        args.details.write_text(json.dumps(details, indent=1))
    print(
        f"{len(faces)} faces: {cal.n} detected, {cal.missed} missed ({cal.missed / len(faces):.1%}); scale "
        f"{cal.scale:.4f} dx {cal.dx:+.4f} dy {cal.dy:+.4f}; detection {details['seconds_per_image']['median'] * 1000:.1f} "
        f"ms/image median -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
