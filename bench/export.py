"""The ONNX export against PyTorch: latency (eager vs onnxruntime) and parity on the 300-W test faces.

    .venv/bin/python bench/export.py --checkpoint out/real/checkpoint
    .venv/bin/python bench/export.py --checkpoint CKPT --repeats 20 --no-record      # a quick look, printed only

The checkpoint is exported as `landmix export` writes it (one un-flipped pass in the graph; and once with
`--flip` for the parity). Latency: each engine (PyTorch eager under `torch.inference_mode`, onnxruntime's CPU
session) at 1 and 2 threads and batch 1 and 32 runs the network and its read-out on the same float32 crops of
the test faces, `--repeats` timed calls after 3 warm-up calls; median and p99 per call. Parity: onnxruntime
against `checkpoint.predict` (same flip) on all the run's test faces: the largest and mean point difference in
crop pixels, and the NME of both against the labels. One record per measurement in
docs/results/export/records.jsonl (experiments "latency" and "parity"); `python -m landmix.records render
docs/results/export.md` renders the page's tables from them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import torch

from landmix import checkpoint, crops, detect, export, metrics, records, settings
from landmix.sources.faces import list_faces, split_faces

THREADS = (1, 2)
BATCHES = (1, 32)


def labelled_test_crops(meta: dict, size: int, crop_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(crops (N, S, S, 3) uint8, labels (N, 68, 2) crop pixels) of the run's 300-W test faces."""
    root = settings.data_root() / "300w"
    images, labels = [], []
    for rel, pts in split_faces(list_faces(root, "300w"), "test", checkpoint.data_config(meta)):
        image = cv2.imread(str(root / rel), cv2.IMREAD_COLOR)[:, :, ::-1]
        crop, crop_pts, _ = crops.input_crop(image, pts, crop_scale, size)
        images.append(crop)
        labels.append(crop_pts)
    return np.stack(images), np.stack(labels)


def timed(call, repeats: int) -> dict:
    """Median and p99 of `repeats` calls (after 3 warm-up calls), milliseconds."""
    for _ in range(3):
        call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": float(np.median(times)), "p99_ms": float(np.percentile(times, 99))}


def latency(model, path: Path, images: np.ndarray, config: dict, repeats: int, record: bool) -> None:
    net = getattr(model, "module", model).eval()
    for threads in THREADS:
        sess = export.session(path, threads)
        torch.set_num_threads(threads)
        for batch in BATCHES:
            x = np.ascontiguousarray(images[:batch].transpose(0, 3, 1, 2), np.float32) / np.float32(255)
            xt = torch.from_numpy(x)

            def eager(xt=xt):
                with torch.inference_mode():
                    return net(xt).pts

            def ort(x=x, sess=sess):
                return sess.run([export.OUTPUT], {export.INPUT: x})

            base = None
            for engine, call in (("pytorch", eager), ("onnxruntime", ort)):
                cfg = config | {"engine": engine, "threads": threads, "batch": batch, "repeats": repeats}
                rec = records.new_record("export", "latency", cfg, label=f"{engine} {threads}t b{batch}")
                rec["metrics"] = timed(call, repeats)
                rec["metrics"]["median_ms_per_face"] = rec["metrics"]["median_ms"] / batch
                base = base or rec["metrics"]["median_ms"]
                rec["metrics"]["speedup_vs_pytorch"] = base / rec["metrics"]["median_ms"]
                print(f"{rec['label']:<24} {rec['metrics']}")
                if record:
                    records.write_record(rec)


def parity(model, meta, folder, images, labels, config: dict, tmp: Path, record: bool) -> None:
    for flip in (False, True):
        rec = records.new_record("export", "parity", config | {"flip_in_graph": flip, "faces": len(images)})
        contract = export.contract(model, meta, folder, str(folder), detect.BoxCalibration.load(), flip)
        path = export.export(model, tmp / f"flip{int(flip)}.onnx", contract, flip)
        rec["metrics"] = export.parity(model, path, images, flip=flip)
        got = export.onnx_predict(export.session(path), images)
        ref = checkpoint.predict(model, images, flip=flip)
        rec["metrics"] |= {
            "nme_pytorch": float(metrics.nme(ref, labels).mean()),
            "nme_onnxruntime": float(metrics.nme(got, labels).mean()),
        }
        print(f"parity flip={flip}: {rec['metrics']}")
        if record:
            records.write_record(rec)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint folder (OUT/checkpoint of landmix train)")
    p.add_argument("--repeats", type=int, default=50, help="timed calls per measurement")
    p.add_argument("--no-record", action="store_true", help="print only; write no record")
    args = p.parse_args(argv)
    model, meta = checkpoint.load(args.checkpoint)
    cfg = model.cfg
    images, labels = labelled_test_crops(meta, cfg.image_size, cfg.crop_scale)
    config = {
        "checkpoint": str(Path(args.checkpoint).resolve()),
        "checkpoint_test_nme": meta.get("metrics", {}).get("test_nme"),
        "image_size": cfg.image_size,
        "head": cfg.head,
        "backbone": cfg.backbone,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        parity(model, meta, args.checkpoint, images, labels, config, Path(tmp), not args.no_record)
        latency(model, Path(tmp, "flip0.onnx"), images, config, args.repeats, not args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
