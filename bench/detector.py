"""The face detector on 300-W: fit the detector-box calibration, and measure the second prediction pass.

    .venv/bin/python bench/detector.py calibrate
    .venv/bin/python bench/detector.py passes --checkpoint out/real/checkpoint

`calibrate` runs `landmix.detect.detect_faces` on the shared 300-W TRAINING faces ($LANDMIX_DATA_ROOT/300w:
`mixing.real_split(ids, seed=0)`'s training pool and validation faces; the 241 test faces are never
looked at), matches each face to the detection that best overlaps its landmark box (IoU >= detect.MIN_IOU,
else a miss) and fits `detect.BoxCalibration` (medians) on the matched pairs. It writes the fitted numbers
to platform/landmix/detector_calibration.json (faces used and missed included) and the details (seconds
per image, each miss) to out/bench/detector_calibration.json.

`passes` scores a checkpoint on the VALIDATION faces of the same split (not trained on; the test faces stay
unused) with the face cropped from the calibrated detector box and 1, 2 or 3 prediction passes (each pass
after the first re-crops around the previous points), next to the crop from the ground-truth landmark box
(what training and `landmix eval` use): the measurement behind `landmix predict --passes`. Writes
out/bench/detector_passes.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from landmix import crops, detect, metrics, mixing, predict, settings
from landmix.evaluate import list_faces

OUT = Path("out/bench")


def split_faces(part: str) -> list[tuple[str, np.ndarray]]:
    """[(image path under 300w/, gt pts (68, 2) 0-based)] of the shared 300-W faces in `part` of the fixed
    split: "fit" (training pool + validation) or "val"."""
    faces = list_faces(str(settings.data_root() / "300w"), "300w")
    split = mixing.real_split([rel.rsplit(".", 1)[0] for rel, _ in faces], seed=0)
    keep = set(split.train) | set(split.val) if part == "fit" else set(split.val)
    return [(rel, pts) for rel, pts in faces if rel.rsplit(".", 1)[0] in keep]


def calibrate() -> int:
    root = settings.data_root() / "300w"
    faces = split_faces("fit")
    boxes, overlaps, missed, seconds = [], [], [], []
    for rel, pts in faces:
        image = predict.read_photo(root / rel)
        t0 = time.perf_counter()
        found = detect.detect_faces(image)
        seconds.append(time.perf_counter() - t0)
        k, overlap = detect.match(found, pts)
        boxes.append(found[k] if k >= 0 else np.full(4, np.nan))
        overlaps.append(overlap)
        if k < 0:
            missed.append(rel)
    cal = detect.BoxCalibration.fit(np.stack(boxes), np.stack([p for _, p in faces]),
                                    fitted_on=f"shared 300-W training faces (afw, helen/trainset): mixing.real_split("
                                              f"seed=0) train + val, {len(faces)} faces, test faces unused; "
                                              f"`.venv/bin/python bench/detector.py calibrate`")  # fmt: skip
    cal.save(detect.CALIBRATION_FILE)
    matched = np.asarray(overlaps)[~np.isnan(np.stack(boxes)[:, 0])]
    details = {"calibration": asdict(cal), "faces": len(faces), "missed": missed,
               "seconds_per_image": {"median": float(np.median(seconds)), "mean": float(np.mean(seconds)),
                                     "max": float(np.max(seconds))},
               "iou_of_matches": {"median": float(np.median(matched)), "min": float(matched.min())},
               "image_px": "the shared crops: 2 x the landmark box, at most 384 px"}  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "detector_calibration.json").write_text(json.dumps(details, indent=1))
    print(f"{len(faces)} training faces: {cal.n} detected, {cal.missed} missed ({cal.missed / len(faces):.1%})")
    print(f"scale {cal.scale:.4f}  dx {cal.dx:+.4f}  dy {cal.dy:+.4f}  (MAD {cal.spread[0]:.4f} {cal.spread[1]:.4f} "
          f"{cal.spread[2]:.4f}); IoU of matches median {np.median(matched):.3f}")  # fmt: skip
    print(f"detection {np.median(seconds) * 1000:.1f} ms/image median ({np.mean(seconds) * 1000:.1f} mean)"
          f" -> {detect.CALIBRATION_FILE}, {OUT / 'detector_calibration.json'}")  # fmt: skip
    return 0


def passes(checkpoint_folder: str, max_passes: int = 3) -> int:
    from landmix import checkpoint

    model, _ = checkpoint.load(checkpoint_folder)
    cal = detect.BoxCalibration.load()
    root, scale = settings.data_root() / "300w", model.cfg.crop_scale
    faces = split_faces("val")
    gts, det, gt_box, missed = [], {p: [] for p in range(1, max_passes + 1)}, {1: [], 2: []}, []
    for rel, pts in faces:
        image = predict.read_photo(root / rel)
        found = detect.detect_faces(image)
        k, _ = detect.match(found, pts)
        if k < 0:
            missed.append(rel)
            continue
        first = cal.model_box(found[k], scale)
        gts.append(pts)
        for p in det:
            det[p].append(predict.landmarks(model, image, [first], p)[0])
        for p in gt_box:
            gt_box[p].append(predict.landmarks(model, image, [crops.box_for(pts, scale)], p)[0])
    gt = np.stack(gts)
    rows = {f"detector box, {p} pass{'es' if p > 1 else ''}": metrics.summary(metrics.nme(np.stack(v), gt))
            for p, v in det.items()} | {f"ground-truth box, {p} pass{'es' if p > 1 else ''}":
                                        metrics.summary(metrics.nme(np.stack(v), gt)) for p, v in gt_box.items()}  # fmt: skip
    result = {"checkpoint": str(Path(checkpoint_folder).resolve()), "faces": len(faces), "missed": missed,
              "scored_faces": len(gt), "summaries": rows}  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "detector_passes.json").write_text(json.dumps(result, indent=1))
    print(f"{len(faces)} validation faces, {len(missed)} missed by the detector; on the {len(gt)} detected:")
    for name, s in rows.items():
        print(f"  {name:<28} NME {s['nme']:.4f}  FR@10 {s['fr@10']:.3f}  AUC@10 {s['auc@10']:.3f}")
    print(f"-> {OUT / 'detector_passes.json'}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("calibrate", help="fit detector_calibration.json on the 300-W training faces")
    q = sub.add_parser("passes", help="NME with 1, 2, 3 passes from detector boxes on the validation faces")
    q.add_argument("--checkpoint", required=True)
    q.add_argument("--max-passes", type=int, default=3)
    args = p.parse_args(argv)
    return calibrate() if args.command == "calibrate" else passes(args.checkpoint, args.max_passes)


if __name__ == "__main__":
    sys.exit(main())
