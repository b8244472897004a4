"""Small manifests in the manifest schema (`landmix.manifest.SCHEMA`), built straight from the shared data.

The prepare/inspect tests need manifests before and independently of `landmix ingest`: these helpers
read .pts (`w300.read_pts`) and _ldmks.txt (0-based) directly and write the Parquet with pyarrow.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from landmix.manifest import SCHEMA
from landmix.sources.w300 import read_pts


def read_ldmks(path: Path) -> np.ndarray:
    """A FaceSynthetics _ldmks.txt as (K, 2) float32, 0-based."""
    return np.loadtxt(path, dtype=np.float32).reshape(-1, 2)


def _row(root: Path, image: Path, pts: np.ndarray, source: str, scheme: str, ident: str, **extra) -> dict:
    h, w = cv2.imread(str(image), cv2.IMREAD_UNCHANGED).shape[:2]
    return {
        "id": ident,
        "source": source,
        "split": "train",
        "root": str(root),
        "image_path": str(image.relative_to(root)),
        "width": w,
        "height": h,
        "landmarks": pts.tolist(),
        "scheme": scheme,
        "seg_path": extra.get("seg_path"),
        "landmarks_annotator": extra.get("annotator"),
        "content_hash": hashlib.sha1(image.read_bytes()).hexdigest(),
    }


def write_manifest(rows: list[dict], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
    return path


def real_rows(data_root: Path, n: int | None = None, folder: str = "300w/afw") -> list[dict]:
    root = Path(data_root) / folder
    pts_files = sorted(root.glob("*.pts"))[:n]
    return [_row(root, p.with_suffix(".jpg"), read_pts(p), "300w", "ibug68", p.stem) for p in pts_files]


def synthetic_rows(data_root: Path, n: int | None = None) -> list[dict]:
    root = Path(data_root) / "facesynthetics_100"
    files = sorted(root.glob("*_ldmks.txt"))[:n]
    rows = []
    for f in files:
        ident = f.name[: -len("_ldmks.txt")]
        rows.append(
            _row(
                root,
                root / f"{ident}.png",
                read_ldmks(f),
                "facesynthetics",
                "synth70",
                ident,
                seg_path=f"{ident}_seg.png",
            )
        )
    return rows


def killing(loop, after_epoch: int, marker: str):
    """A train_fn: `loop` whose rank 1 (or 0 alone) exits hard once, some seconds after reporting
    `after_epoch`, as if the process were killed (once per marker file)."""

    def train_fn(config):
        import os
        import time

        import ray.train

        report = ray.train.report
        ctx = ray.train.get_context()

        def report_then_die(metrics, *args, **kwargs):
            report(metrics, *args, **kwargs)
            victim = ctx.get_world_rank() == min(1, ctx.get_world_size() - 1)
            if victim and metrics.get("epoch") == after_epoch and not os.path.exists(marker):
                Path(marker).write_text(f"killed after epoch {after_epoch}\n")
                # Die some seconds on, as a real crash would: Ray Train's controller collects reports (and so
                # registers the checkpoint) on its health check every 2 s.
                time.sleep(6)
                os._exit(1)

        ray.train.report = report_then_die
        try:
            loop(config)
        finally:
            ray.train.report = report

    return train_fn
