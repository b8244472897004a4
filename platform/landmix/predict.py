"""`landmix predict`: 68 landmarks on photos of any size: find the faces, crop, predict, write .pts and pictures.

    landmix predict --checkpoint out/real/checkpoint photos/ face.jpg --out out/predict
    landmix predict --checkpoint CKPT PHOTOS... --out DIR --passes 1      # one pass, from the detector box

PHOTOS are image files or folders of them (searched recursively for .jpg .jpeg .png .ppm .pgm .bmp .gif .webp;
the other files found are listed as not_photos; a folder with none is an error, whatever its name), decoded
by `landmix.photos` as `landmix serve` decodes a request: greyscale read as RGB, the EXIF orientation applied
(points are in the displayed orientation), the size checked from the header before decoding. For each photo:
1. dlib's face detector finds the faces (`landmix.detect`);
2. each detector box is mapped to the model-input crop by the calibration fitted on 300-W training faces
   (`detect.BoxCalibration`, detector_calibration.json) and the checkpoint's crop_scale;
3. the model predicts on that crop, averaged with its mirror image (`checkpoint.predict`);
4. more passes: a detector box is only a rough guess of where the landmark box is (from face to face its
   size and centre vary by 4-7 % of its side around the calibrated medians: `spread` in the calibration
   file), while the model was trained on crops centred on the landmark box at exactly crop_scale x its long
   side. So the face is cropped again around the previous pass's landmark box (`crops.box_for(pred,
   crop_scale)`, training's crop) and predicted again. A model pulls its answer towards the crop's centre
   (the mean face), so each pass corrects part of the remaining offset. `--passes` sets the number; the
   default, 3, is measured (`bench/detector.py passes`: NME with detector boxes on the 300-W validation
   faces fell with each pass, by less each time; a 4th pass bought little more at one more model run);
5. the points are mapped back to the photo's 0-based pixels.

Writes to DIR, for face k of photo <stem> (faces ordered by detector score): <stem>_<k>.pts (the official
300-W format, 1-based), <stem>_<k>.png (the photo scaled to at most 800 px, with the face's points and
detector box), and predictions.json: every photo with its faces (detector box and score, crop, 0-based
points), and every photo where no face was found or that could not be read, with the reason (each also
printed: 0 bytes, not an image, no read permission, a pipe, a link to nothing, ...). The exit status is 1
when some photo could not be read; the others are still done.

This loop is for a handful of photos. For a folder or a manifest of any size, `--on-ray` runs the same
`Predictor` on Ray Data and writes one Parquet of predictions (`landmix.predict_batch`).

A video file (.mp4, .avi, .mov, ...: `landmix.video.VIDEO_SUFFIXES`) goes to `landmix.video`: the face tracked
from frame to frame and smoothed (One Euro filter), a CSV row per frame and an annotated video.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from landmix import crops, detect
from landmix.photos import PHOTO_SUFFIXES, read_photo  # the decoder serve shares: limits, EXIF orientation
from landmix.sources import w300

DEFAULT_PASSES = 3  # measured: bench/detector.py passes (see the module docstring)
PICTURE_SIDE = 800  # px: the long side of the pictures written beside the .pts files


def list_photos(paths, not_photos: list[Path] | None = None) -> list[Path]:
    """The photos named by paths: every path given that is not a folder, as given (`read_photo` says why one
    cannot be read), and the files under folders whose names end in a photo suffix (sorted, recursive). The
    other files found in folders are appended to `not_photos` where given: listed, never silently left out.
    A folder with no photo in it, or a path that is not there, is an error before any work."""
    if not paths:
        raise ValueError("no photos given: name image files or folders of them (landmix predict --help)")
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found, other = [], []
            for f in sorted(p.rglob("*")):
                if not f.is_dir():
                    (found if f.suffix.lower() in PHOTO_SUFFIXES else other).append(f)
            if not found:
                raise FileNotFoundError(
                    f"{p}: a folder with no images in it (searched for {' '.join(PHOTO_SUFFIXES)}); "
                    f"name image files or folders that hold them"
                )
            out += found
            if not_photos is not None:
                not_photos += other
        elif os.path.lexists(p):  # a file, or a link, pipe, ...: an entry of its own, unreadable or not
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder (give image files or folders of them)")
    return out


def uncrop(pts: np.ndarray, box, size: int) -> np.ndarray:
    """Crop pixels -> original image pixels; inverse of crops.crop_image's u = (x - x0 + 0.5) k - 0.5."""
    x0, y0, side = (float(v) for v in box)
    k = size / side
    return ((np.asarray(pts, np.float64) + 0.5) / k - 0.5 + (x0, y0)).astype(np.float32)


def landmarks(model, image: np.ndarray, boxes, passes: int = DEFAULT_PASSES) -> np.ndarray:
    """Points (N, K, 2) float32, image pixels, of the faces whose first crops are boxes (N, 3) = (x0, y0, side)
    in image (H, W, 3) uint8: each later pass re-crops around the previous pass's points, as training crops
    (where those points' crop would be under half or over twice the last one, the last crop is kept)."""
    return landmarks_of(model, [(image, tuple(b)) for b in boxes], passes)


def landmarks_of(model, faces: list[tuple[np.ndarray, tuple]], passes: int = DEFAULT_PASSES) -> np.ndarray:
    """`landmarks` for faces of several photos at once, [(image, first crop (x0, y0, side))] -> (N, K, 2):
    one model batch per pass for all of them (serve's batches of requests go through here)."""
    from landmix import checkpoint

    if passes < 1:
        raise ValueError(f"passes={passes}: give 1 (the crop from the box only) or more")
    size, scale = model.cfg.image_size, model.cfg.crop_scale
    images, boxes = [f[0] for f in faces], [tuple(f[1]) for f in faces]
    none = np.zeros((0, 2), np.float32)
    pts = np.zeros((0, model.cfg.num_points, 2), np.float32)
    for i in range(passes):
        if i:  # a box under half or over twice the last one means a collapsed prediction: keep the last crop
            new = [crops.box_for(p, scale) for p in pts]
            boxes = [n if 0.5 <= n[2] / b[2] <= 2.0 else b for n, b in zip(new, boxes)]
        if not boxes:
            break
        batch = np.stack([crops.crop_image(im, none, b, size)[0] for im, b in zip(images, boxes)])
        pts = np.stack([uncrop(p, b, size) for p, b in zip(checkpoint.predict(model, batch), boxes)])
    return pts


class Predictor:
    """The detector, its calibration, the model's passes and flip averaging: what `landmix predict` and
    `landmix serve` run on a photo, one code path.

        predictor = Predictor.load("out/real/checkpoint")
        faces = predictor.faces(image)                 # one photo
        per_photo = predictor.faces_of([im1, im2])     # several: one model batch per pass for all faces
    """

    def __init__(self, model, calibration: detect.BoxCalibration, passes: int = DEFAULT_PASSES):
        if passes < 1:
            raise ValueError(f"passes={passes}: give 1 (the crop from the detector box only) or more")
        self.model, self.calibration, self.passes = model, calibration, passes

    @classmethod
    def load(cls, checkpoint_folder, calibration: detect.BoxCalibration | None = None, passes=DEFAULT_PASSES):
        from landmix import checkpoint

        model, _ = checkpoint.load(checkpoint_folder)  # a clear error before any work where it is not one
        return cls(model, calibration or detect.BoxCalibration.load(), passes)

    def faces(self, image: np.ndarray) -> list[dict]:
        """The faces of one photo (H, W, 3) uint8 RGB, best detector score first: {"box" (x0, y0, x1, y1),
        "score", "crop" (x0, y0, side) of the first pass, "points" (K, 2) float32 image pixels}."""
        return self.faces_of([image])[0]

    def faces_of(self, images: list[np.ndarray]) -> list[list[dict]]:
        """`faces` of each photo; the model runs on all their faces together."""
        found = [detect.detect_faces(im, scores=True) for im in images]
        scale = self.model.cfg.crop_scale
        first = [[self.calibration.model_box(b, scale) for b in boxes] for boxes, _ in found]
        flat = [(im, c) for im, crops_ in zip(images, first) for c in crops_]
        pts = iter(landmarks_of(self.model, flat, self.passes))
        return [
            [
                {"box": b, "score": float(s), "crop": c, "points": next(pts)}
                for b, s, c in zip(boxes, scores, crops_)
            ]
            for (boxes, scores), crops_ in zip(found, first)
        ]


def face_json(face: dict) -> dict:
    """A face of `Predictor.faces` as JSON (predictions.json, serve's answer): box and points to 0.01 px."""
    return {
        "box": np.round(face["box"], 2).tolist(),
        "score": round(face["score"], 4),
        "crop": list(face["crop"]),
        "points": np.round(face["points"].astype(np.float64), 2).tolist(),
    }


def draw_face(image: np.ndarray, box, pts: np.ndarray, path, side: int = PICTURE_SIDE) -> None:
    """PNG of image (H, W, 3) RGB scaled to at most `side` px, with the detector box (green) and the points."""
    k = min(1.0, side / max(image.shape[:2]))
    small = image if k == 1.0 else cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    canvas = np.ascontiguousarray(small[:, :, ::-1])  # OpenCV draws and writes BGR
    x0, y0, x1, y1 = ((np.asarray(box, np.float64) + 0.5) * k - 0.5).round().astype(int)
    thick = max(1, round(max(canvas.shape[:2]) / 400))
    cv2.rectangle(canvas, (x0, y0), (x1, y1), (0, 200, 0), thick, cv2.LINE_AA)
    r = max(1, round(max(x1 - x0, y1 - y0) / 80))
    for x, y in (np.asarray(pts, np.float64) + 0.5) * k - 0.5:
        cv2.circle(canvas, (int(round(x)), int(round(y))), r, (0, 0, 255), -1, cv2.LINE_AA)
    cv2.imwrite(str(path), canvas)


def predict_photos(
    checkpoint_folder,
    photos,
    out,
    passes: int = DEFAULT_PASSES,
    calibration: detect.BoxCalibration | None = None,
) -> dict:
    """Predict the faces of photos (paths from `list_photos`), write their files to `out` and return what
    predictions.json holds."""
    predictor = Predictor.load(checkpoint_folder, calibration, passes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, stems = [], set()
    for path in photos:
        stem, n = path.stem, 2
        while stem in stems:  # photos of one name in different folders keep apart
            stem, n = f"{path.stem}-{n}", n + 1
        stems.add(stem)
        row = {"photo": str(path), "stem": stem}
        try:
            image = read_photo(path)
        except (ValueError, OSError, cv2.error) as e:  # named, listed, and the other photos still done
            print(f"unreadable: {e}")
            rows.append(row | {"status": "unreadable", "error": str(e), "faces": []})
            continue
        t0 = time.perf_counter()
        faces = predictor.faces(image)
        row |= {
            "width": image.shape[1],
            "height": image.shape[0],
            "seconds": round(time.perf_counter() - t0, 3),
        }
        if not faces:
            print(f"no face found: {path}")
        listed = []
        for k, face in enumerate(faces):
            w300.write_pts(out / f"{stem}_{k}.pts", face["points"])
            draw_face(image, face["box"], face["points"], out / f"{stem}_{k}.png")
            listed.append(
                {"k": k, "pts_file": f"{stem}_{k}.pts", "png_file": f"{stem}_{k}.png"} | face_json(face)
            )
        rows.append(row | {"status": "faces" if faces else "no_face", "faces": listed})
    return {
        "checkpoint": str(Path(checkpoint_folder).resolve()),
        "passes": passes,
        "calibration": asdict(predictor.calibration),
        "points": "0-based pixel centres of the photo (the .pts files hold the same points 1-based)",
        "box": "detector box x0, y0, x1, y1 (first and last pixel centres); crop: the first pass's x0, y0, side",
        "photos": rows,
        "no_face": [r["photo"] for r in rows if r["status"] == "no_face"],
        "unreadable": [
            {"photo": r["photo"], "error": r["error"]} for r in rows if r["status"] == "unreadable"
        ],
    }


def add_arguments(parser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="checkpoint folder (OUT/checkpoint from landmix train)"
    )
    parser.add_argument(
        "photos", nargs="*", help="image files or folders of them; video files (landmix.video.VIDEO_SUFFIXES)"
    )
    parser.add_argument(
        "--out", required=True, help="folder for the .pts files, pictures and predictions.json"
    )
    parser.add_argument(
        "--passes",
        type=int,
        default=DEFAULT_PASSES,
        help=f"crops per face: 1 = from the detector box only; each more re-crops around the "
        f"previous points (default {DEFAULT_PASSES}, measured by bench/detector.py passes)",
    )
    parser.add_argument(
        "--calibration",
        default=str(detect.CALIBRATION_FILE),
        help="detector-box calibration JSON (`python -m landmix.detect calibrate` writes it)",
    )
    from landmix import predict_batch  # the Ray Data path's flags (--on-ray, --manifest, --actors, --pts)

    predict_batch.add_arguments(parser)
    from landmix import video  # a video file goes to landmix.video: its flags

    video.add_arguments(parser)


def checked_model_flags(args) -> detect.BoxCalibration:
    """What both paths (this loop and `--on-ray`) check before any work: the calibration file, the checkpoint
    folder and --passes; returns the calibration. A ValueError or FileNotFoundError says what is wrong."""
    from landmix import checkpoint

    calibration = detect.BoxCalibration.load(args.calibration)
    checkpoint.read_meta(args.checkpoint)
    if args.passes < 1:
        raise ValueError(f"--passes {args.passes}: give 1 (the crop from the detector box only) or more")
    return calibration


def run(args) -> int:
    from landmix import video

    if args.on_ray or args.manifest or args.pts or args.actors is not None or args.address:  # Ray Data
        from landmix import predict_batch

        return predict_batch.run(args)
    videos = [p for p in args.photos if video.is_video(p)]  # video files go to landmix.video
    others = [p for p in args.photos if not video.is_video(p)]
    not_photos: list[Path] = []
    try:  # the user's mistakes, said in one line before any work
        photos = list_photos(others, not_photos) if others or not videos else []
        calibration = checked_model_flags(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"landmix predict: {e}", file=sys.stderr)
        return 2
    status = video.run(args, videos, args.checkpoint, calibration, args.passes) if videos else 0
    if status == 2 or not photos:
        return status
    result = predict_photos(args.checkpoint, photos, args.out, args.passes, calibration)
    result["not_photos"] = [str(p) for p in not_photos]
    Path(args.out, "predictions.json").write_text(json.dumps(result, indent=1))
    if not_photos:
        kinds = " ".join(sorted({p.suffix.lower() or "(no suffix)" for p in not_photos}))
        n = len(not_photos)
        print(
            f"{n} file{'s' * (n != 1)} not searched: not photos by name ({kinds}); "
            f"listed in predictions.json under not_photos"
        )
    n_faces = sum(len(r["faces"]) for r in result["photos"])
    print(
        f"{len(photos)} photos: {n_faces} faces, {len(result['no_face'])} with no face found, "
        f"{len(result['unreadable'])} unreadable -> {Path(args.out, 'predictions.json')}"
    )
    return 1 if result["unreadable"] or status else 0
