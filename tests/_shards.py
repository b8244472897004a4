"""Prepared-shard folders (`landmix.prepare.SHARD_SCHEMA`) built straight from the shared data, for training tests.

Training tests need shards before and independently of `landmix prepare`: these helpers read .pts
(`w300.read_pts`) and _ldmks.txt (0-based) directly, crop with `landmix.crops` (the canonical real crop: a
square of 2x the landmark box's long side, centred), and write Parquet in `prepare.SHARD_SCHEMA` with
pyarrow. Synthetic faces keep their first 68 points untranslated (translator_version "untranslated-test"):
fine for plumbing, not for science.

    .venv/bin/python tests/_shards.py ../shared/data out/shards/300w 128    # all 1207 real faces
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from landmix import crops
from landmix.prepare import SHARD_SCHEMA
from landmix.sources.w300 import read_pts


def crop_row(image: np.ndarray, pts: np.ndarray, size: int) -> tuple[bytes, np.ndarray, list[float]]:
    """(PNG bytes of the crop, crop pts (68, 2), crop_box [x0, y0, side]): the one crop used here."""
    box = crops.CropDistribution().canonical_box(pts)
    crop, cpts = crops.crop_image(image, pts, box, size)
    ok, png = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    return png.tobytes(), cpts, [float(v) for v in box]


def _write(rows: list[dict], out: Path, rows_per_file: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for i in range(0, len(rows), rows_per_file):
        chunk = rows[i : i + rows_per_file]
        table = pa.table({name: [r[name] for r in chunk] for name in SHARD_SCHEMA.names}, schema=SHARD_SCHEMA)
        pq.write_table(table, out / f"part-{i // rows_per_file:05d}.parquet")
    return out


def real_shards(
    data_root: Path, out: Path, limit: int | None = None, size: int = 64, rows_per_file=128
) -> Path:
    """Shards of the shared 300-W faces (afw, then helen/trainset; the first `limit` of them)."""
    root = Path(data_root) / "300w"
    pts_files = sorted(root.glob("afw/*.pts")) + sorted(root.glob("helen/trainset/*.pts"))
    if limit:  # a mix of both subsets
        pts_files = pts_files[: limit // 2] + pts_files[-(limit - limit // 2) :]
    rows = []
    for p in pts_files:
        image_path = p.with_suffix(".jpg")
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)[:, :, ::-1]
        png, cpts, box = crop_row(image, read_pts(p), size)
        rel = image_path.relative_to(root).as_posix()
        rows.append(
            {
                "id": rel.rsplit(".", 1)[0],
                "source": "300w",
                "split": rel.split("/")[0],
                "is_synthetic": False,
                "image": png,
                "crop_size": size,
                "landmarks": cpts.ravel().tolist(),
                "crop_box": box,
                "root": str(root),
                "image_path": rel,
                "translator_version": "",
            }
        )
    return _write(rows, Path(out), rows_per_file)


def synthetic_shards(data_root: Path, out: Path, limit: int = 16, size: int = 64) -> Path:
    """Shards of FaceSynthetics renders with their first 68 points (untranslated)."""
    root = Path(data_root) / "facesynthetics_100"
    rows = []
    for p in sorted(root.glob("*_ldmks.txt"))[:limit]:
        stem = p.name.removesuffix("_ldmks.txt")
        image = cv2.imread(str(root / f"{stem}.png"), cv2.IMREAD_COLOR)[:, :, ::-1]
        pts = np.loadtxt(p, dtype=np.float32)[:68]
        png, cpts, box = crop_row(image, pts, size)
        rows.append(
            {
                "id": stem,
                "source": "facesynthetics",
                "split": "train",
                "is_synthetic": True,
                "image": png,
                "crop_size": size,
                "landmarks": cpts.ravel().tolist(),
                "crop_box": box,
                "root": str(root),
                "image_path": f"{stem}.png",
                "translator_version": "untranslated-test",
            }
        )
    return _write(rows, Path(out), 64)


if __name__ == "__main__":
    real_shards(Path(sys.argv[1]), Path(sys.argv[2]), size=int(sys.argv[3]) if len(sys.argv) > 3 else 128)
