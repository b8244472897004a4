"""The face detector on 300-W: how many prediction passes from a detector box are worth their time.

    .venv/bin/python bench/detector.py passes --checkpoint out/real/checkpoint

`passes` scores a checkpoint on the VALIDATION faces of the fixed split (not trained on; the test faces stay
unused) with the face cropped from the calibrated detector box and 1, 2 or 3 prediction passes (each pass
after the first re-crops around the previous points), next to the crop from the ground-truth landmark box
(what training and `landmix eval` use): the measurement behind `landmix predict --passes`. Appends a record to
docs/results/train/records.jsonl (`--no-record`: print only).

The detector-box calibration it reads is fitted by the library, not here: `.venv/bin/python -m landmix.detect
calibrate` (the 300-W training and validation faces; writes the package's detector_calibration.json).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from landmix import crops, detect, metrics, predict, records, settings
from landmix.config import DataConfig
from landmix.sources.faces import list_faces, split_faces


def validation_faces() -> list[tuple[str, np.ndarray]]:
    """[(image path under 300w/, gt pts (68, 2) 0-based)] of the shared 300-W faces in the validation part of
    the fixed split."""
    return split_faces(list_faces(settings.data_root() / "300w", "300w"), "val", DataConfig())


def passes(checkpoint_folder: str, max_passes: int = 3, record: bool = True) -> int:
    from landmix import checkpoint

    rec = records.new_record(
        "train",
        "detector_passes",
        {"checkpoint": str(Path(checkpoint_folder).resolve()), "max_passes": max_passes, "split": "val"},
    )
    model, _ = checkpoint.load(checkpoint_folder)
    cal = detect.BoxCalibration.load()
    rec["config"]["calibration"] = asdict(cal)
    root, scale = settings.data_root() / "300w", model.cfg.crop_scale
    faces = validation_faces()
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
    rows = {
        f"detector box, {p} pass{'es' if p > 1 else ''}": metrics.summary(metrics.nme(np.stack(v), gt))
        for p, v in det.items()
    } | {
        f"ground-truth box, {p} pass{'es' if p > 1 else ''}": metrics.summary(metrics.nme(np.stack(v), gt))
        for p, v in gt_box.items()
    }
    rec["metrics"] = {"faces": len(faces), "missed": missed, "scored_faces": len(gt), "summaries": rows}
    if record:
        print(f"-> {records.write_record(rec)}")
    print(f"{len(faces)} validation faces, {len(missed)} missed by the detector; on the {len(gt)} detected:")
    for name, s in rows.items():
        print(f"  {name:<28} NME {s['nme']:.4f}  FR@10 {s['fr@10']:.3f}  AUC@10 {s['auc@10']:.3f}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("passes", help="NME with 1, 2, 3 passes from detector boxes on the validation faces")
    q.add_argument("--checkpoint", required=True)
    q.add_argument("--max-passes", type=int, default=3)
    q.add_argument("--no-record", action="store_true", help="print only; write no record")
    args = p.parse_args(argv)
    return passes(args.checkpoint, args.max_passes, record=not args.no_record)


if __name__ == "__main__":
    sys.exit(main())
