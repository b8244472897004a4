"""The Parquet manifest: its schema, the Ray Data ingest that writes it, and helpers that read it.

One row per face (see SCHEMA): id, source, split, root, image_path (relative to root), width,
height, landmarks (K x 2 float32, 0-based pixels), scheme, seg_path, landmarks_annotator,
content_hash. Bad samples never reach it: they go, one JSON line each, to the quarantine file.

The driver lists the folder with a directory scan (cheap: names only); Ray Data then reads and
validates every sample in parallel tasks (`validate_batch`), and the driver writes one Parquet
file (overwriting) plus the quarantine JSONL.

    landmix ingest --source 300w ../shared/data/300w --out out/300w.parquet
    landmix ingest --source facesynthetics ../shared/data/facesynthetics_100 --out out/fs.parquet --strict
    # on a cluster: RAY_ADDRESS=... (set by `ray job submit`) or --address auto joins it; else a local Ray starts.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from landmix import quarantine, settings
from landmix.sources import SOURCES, get_source

POINTS = pa.list_(pa.list_(pa.float32()))
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("split", pa.string()),
        ("root", pa.string()),
        ("image_path", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("landmarks", POINTS),
        ("scheme", pa.string()),
        ("seg_path", pa.string()),
        ("landmarks_annotator", POINTS),
        ("content_hash", pa.string()),
    ]
)
# What a validation task returns per sample: the manifest row, or the quarantine fields (reason != "").
_BATCH_SCHEMA = SCHEMA.append(pa.field("reason", pa.string())).append(pa.field("reason_path", pa.string()))
_BATCH_SCHEMA = _BATCH_SCHEMA.append(pa.field("detail", pa.string())).append(
    pa.field("files", pa.list_(pa.string()))
)
_ITEM_PATHS = ("image_path", "landmarks_path", "seg_path", "annotator_path")


@dataclass(frozen=True)
class IngestConfig:
    """One ingest.

    source: "facesynthetics" or "300w" (the reader in landmix.sources).
    root: the folder to ingest; stored absolute in every row.
    out: the manifest Parquet file (overwritten).
    quarantine: the JSONL file for bad samples; default: beside out, "<out stem>.quarantine.jsonl".
    decode: also decode every image with OpenCV (catches corruption inside a file; slower).
    samples_per_task: samples one Ray Data task validates (a block); bigger = less scheduling overhead.
    """

    source: str
    root: Path
    out: Path
    quarantine: Path | None = None
    decode: bool = False
    samples_per_task: int = 500

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {sorted(SOURCES)}, got {self.source!r}")
        if self.samples_per_task < 1:
            raise ValueError(f"samples_per_task must be >= 1, got {self.samples_per_task}")

    @property
    def quarantine_path(self) -> Path:
        out = Path(self.out)
        return Path(self.quarantine or out.with_name(f"{out.stem}.quarantine.jsonl"))


@dataclass
class IngestResult:
    """What an ingest produced: the manifest table and quarantine records, with the counts."""

    table: pa.Table
    rejected: list[dict]
    ignored: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def reasons(self) -> Counter:
        return Counter(r["reason"] for r in self.rejected)

    @property
    def read(self) -> int:
        return self.table.num_rows + len(self.rejected)


def _points_column(values: list[np.ndarray | None]) -> pa.Array:
    """(K, 2) arrays (or None) -> list<list<float32>>, built from flat buffers rather than Python lists."""
    counts = np.array([0 if v is None else len(v) for v in values], np.int32)
    flat = np.concatenate([v.reshape(-1) for v in values if v is not None] or [np.empty(0)]).astype(
        np.float32
    )
    inner = pa.ListArray.from_arrays(np.arange(0, len(flat) + 1, 2, dtype=np.int32), pa.array(flat))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    mask = pa.array([v is None for v in values])
    return pa.ListArray.from_arrays(pa.array(offsets), inner, mask=mask).cast(POINTS)


def _rejected_row(item: dict, e: quarantine.Rejected) -> dict:
    files = [item[k] for k in _ITEM_PATHS if item.get(k)]
    row = {"id": item["id"], "split": item["split"], "image_path": item["image_path"] or None}
    return row | {"reason": e.reason, "reason_path": e.path, "detail": e.detail, "files": files}


def validate_batch(items: pa.Table, source: str, root: str, decode: bool = False) -> pa.Table:
    """Ray Data map_batches function: listed items -> manifest rows and quarantine rows (one per item)."""
    reader = get_source(source)
    cols: dict[str, list] = {name: [] for name in _BATCH_SCHEMA.names}
    for item in items.to_pylist():
        try:
            row = reader.read_sample(root, item, decode)
            row.update(reason="", reason_path="", detail="", files=[])
        except quarantine.Rejected as e:
            row = _rejected_row(item, e)
        except Exception as e:  # one odd file must not sink a 100k-sample ingest
            where = item["image_path"] or item["landmarks_path"]
            row = _rejected_row(item, quarantine.Rejected("reader_error", where, repr(e)))
        row.update(source=source, root=root)
        for name in cols:
            cols[name].append(row.get(name))
    arrays = [
        _points_column(cols[f.name]) if f.type == POINTS else pa.array(cols[f.name], f.type)
        for f in _BATCH_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=_BATCH_SCHEMA)


def ingest(cfg: IngestConfig) -> IngestResult:
    """List, validate (on Ray Data) and write the manifest and quarantine file, on the connected Ray cluster."""
    import ray

    settings.require_ray("ingest")
    start = time.perf_counter()
    root = Path(cfg.root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; pass the folder that holds the {cfg.source} files")
    items, ignored = get_source(cfg.source).list_samples(str(root))
    if items:
        blocks = max(1, min(len(items), max(math.ceil(len(items) / cfg.samples_per_task), 8)))
        ds = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
            validate_batch,
            fn_kwargs={"source": cfg.source, "root": str(root), "decode": cfg.decode},
            batch_format="pyarrow",
            batch_size=None,
        )
        checked = pa.concat_tables(list(ds.iter_batches(batch_format="pyarrow", batch_size=None)))
    else:
        checked = _BATCH_SCHEMA.empty_table()
    checked = _reject_duplicate_ids(checked.sort_by("id"))
    bad = pc.not_equal(checked["reason"], "")
    table = checked.filter(pc.invert(bad)).select(SCHEMA.names)
    rejected = [
        {
            "path": r["reason_path"],
            "reason": r["reason"],
            "detail": r["detail"],
            "id": r["id"],
            "files": r["files"],
        }
        for r in checked.filter(bad).select(["reason_path", "reason", "detail", "id", "files"]).to_pylist()
    ]
    _write_parquet(table, Path(cfg.out))
    quarantine.write_jsonl(cfg.quarantine_path, rejected)
    return IngestResult(table, rejected, ignored, time.perf_counter() - start)


def _reject_duplicate_ids(checked: pa.Table) -> pa.Table:
    """Belt and braces after the readers' own checks: any id on two accepted rows sends both away."""
    ok = checked.filter(pc.equal(checked["reason"], ""))
    counts = pc.value_counts(ok["id"])
    dup = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    if len(dup) == 0:
        return checked
    hit = pc.and_(pc.is_in(checked["id"], value_set=dup), pc.equal(checked["reason"], ""))
    reason = pc.if_else(hit, "duplicate_id", checked["reason"])
    rpath = pc.if_else(hit, checked["image_path"], checked["reason_path"])
    detail = pc.if_else(hit, "another sample has the same id; rename one of them", checked["detail"])
    for name, col in (("reason", reason), ("reason_path", rpath), ("detail", detail)):
        checked = checked.set_column(checked.schema.get_field_index(name), name, col)
    return checked


def _write_parquet(table: pa.Table, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    pq.write_table(table.cast(SCHEMA), tmp)
    os.replace(tmp, out)  # never a half-written manifest, never an append


def read_manifest(path: str | Path) -> pa.Table:
    """A manifest written by `landmix ingest`, checked against SCHEMA."""
    table = pq.read_table(path)
    missing = [n for n in SCHEMA.names if n not in table.column_names]
    if missing:
        raise ValueError(
            f"{path} is not a landmix manifest (missing {missing}); write it with `landmix ingest`"
        )
    return table


def landmarks_array(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A landmarks column -> (N, K, 2) float32. Every row must have the same K and no nulls."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if arr.null_count:
        raise ValueError(f"{arr.null_count} rows have no points; filter them first (e.g. pc.is_valid)")
    if len(arr) == 0:
        return np.zeros((0, 0, 2), np.float32)
    counts = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    if (counts != counts[0]).any():
        raise ValueError(
            f"rows have different point counts {sorted(set(counts.tolist()))}; select one scheme"
        )
    flat = arr.flatten().flatten().to_numpy(zero_copy_only=False)
    return flat.astype(np.float32, copy=False).reshape(len(arr), int(counts[0]), 2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="the folder to ingest")
    parser.add_argument("--source", required=True, choices=sorted(SOURCES), help="the on-disk layout of ROOT")
    parser.add_argument(
        "--out", required=True, type=Path, help="the manifest Parquet file to write (overwritten)"
    )
    parser.add_argument("--quarantine", type=Path, help="JSONL of bad samples (default: beside --out)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any sample is quarantined")
    parser.add_argument("--decode", action="store_true", help="also decode every image (slower, stricter)")
    parser.add_argument("--samples-per-task", type=int, default=500, help="samples per Ray Data task")
    parser.add_argument(
        "--address", help="Ray cluster to join (default: $RAY_ADDRESS, else start a local Ray)"
    )


def run(args: argparse.Namespace) -> int:

    cfg = IngestConfig(args.source, args.root, args.out, args.quarantine, args.decode, args.samples_per_task)
    if not Path(cfg.root).is_dir():
        print(
            f"landmix ingest: {cfg.root} is not a folder; pass the folder holding the files", file=sys.stderr
        )
        return 2
    settings.init_ray(args.address)
    result = ingest(cfg)
    qpath = cfg.quarantine_path
    if result.ignored:
        print(
            f"ignored {len(result.ignored)} files outside the {cfg.source} layout, e.g. {result.ignored[:3]}"
        )
    for rec in result.rejected[:5]:
        print(f"  quarantined {rec['path']}: {rec['reason']}: {rec['detail']}")
    if len(result.rejected) > 5:
        print(f"  ... {len(result.rejected) - 5} more in {qpath}")
    line = quarantine.summary_line(result.read, result.table.num_rows, result.reasons, qpath)
    print(f"{line}; {result.seconds:.1f} s; manifest {cfg.out}")
    if args.strict and result.rejected:
        print(f"landmix ingest: --strict and {len(result.rejected)} samples quarantined", file=sys.stderr)
        return 1
    return 0
