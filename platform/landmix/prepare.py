"""The prepare job: manifests -> training-ready Parquet shards (`SHARD_SCHEMA`), on Ray Data.

Deterministic per-image work runs here once; random augmentation runs per epoch in training.
For every manifest row: decode the image, translate the labels to IBUG68 (synthetic rows: the
translator file, or the fixed table without one), cut a square crop (synthetic: sampled from the
real set's crop distribution, one seeded draw per id; real: the canonical crop), resize it to
crop_size, and encode it as PNG. Bad rows (missing or undecodable image, wrong point count,
non-finite points) go to quarantine.jsonl, one JSON line each; nothing is dropped silently.

    landmix prepare out/300w.parquet out/fs.parquet --out out/prepared --crop-size 256 \
        [--translator translator.npz [--translator real.npz]] [--crop-stats crops.json] [--seed 0]

The driver reads the manifests (paths and points only: ~0.6 KB a face) and hands Ray Data blocks
of `rows_per_block` rows; map tasks stream through them with Ray Data's backpressure, so memory
stays flat as the input grows. Idempotent: everything is written into a temporary sibling folder
that replaces --out at the end (Ray's write_parquet appends), with deterministic file names and
order, so a re-run with the same inputs and seed writes identical shards. --out gets
    shards/part-00000.parquet ...   the training rows
    quarantine.jsonl                the refused rows (may be empty)
    prepare.json                    config, counts, crop distribution, translator version
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray
from ray.data.datasource import FilenameProvider

from landmix import quarantine, settings
from landmix.config import DataConfig
from landmix.crops import CropDistribution, crop_image, crop_stats
from landmix.manifest import landmarks_array, read_manifest
from landmix.schemes import IBUG68, get_scheme
from landmix.sources.facesynthetics import GENERATOR_MARKER
from landmix.sources.split import real_split
from landmix.translate import Translator, load_or_fixed

SYNTHETIC_SOURCES = ("facesynthetics",)
SHARD_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("split", pa.string()),
        ("is_synthetic", pa.bool_()),
        ("image", pa.binary()),
        ("crop_size", pa.int32()),
        ("landmarks", pa.list_(pa.float32())),
        ("crop_box", pa.list_(pa.float32())),
        ("root", pa.string()),
        ("image_path", pa.string()),
        ("translator_version", pa.string()),
    ]
)
INPUT_COLUMNS = ["id", "source", "split", "root", "image_path", "landmarks", "scheme"]
CROP_FITS = ("train", "all")  # PrepareConfig.crop_fit


@dataclass(frozen=True)
class PrepareConfig:
    manifests: tuple[str, ...]  # manifest Parquet files (landmix ingest), synthetic and real
    out: str  # output folder, replaced as a whole
    crop_size: int = 256  # side of the square crops in pixels
    seed: int = 0  # seed of the synthetic crop draws (one per id)
    translator: tuple[
        str, ...
    ] = ()  # .npz files from landmix.translate, applied in order; () = the fixed table
    crop_stats: str = ""  # CropDistribution JSON; "" = fit on the real rows given (else the default)
    rows_per_block: int = 128  # rows per Ray Data block, one map task and one output file each
    # Which real rows that fit sees: "train" = the training pool of the default split (`config.DataConfig()`'s
    # fractions and seed, over the real rows with well-formed labels), so no validation or test face shapes
    # the crops a model trains on; "all" = every real row (a folder with no held-out faces).
    crop_fit: str = "train"

    def __post_init__(self):
        if isinstance(self.translator, str):  # one file
            object.__setattr__(self, "translator", (self.translator,) if self.translator else ())
        # Absolute: prepare.json records which files labelled the shards (landmix fit-translator reads it).
        object.__setattr__(self, "translator", tuple(str(Path(t).resolve()) for t in self.translator))
        if not self.manifests:
            raise ValueError("prepare needs at least one manifest (landmix ingest writes them)")
        if self.crop_size < 16:
            raise ValueError(f"crop_size={self.crop_size} must be at least 16 pixels")
        if self.rows_per_block < 1:
            raise ValueError(f"rows_per_block={self.rows_per_block} must be >= 1")
        if self.crop_fit not in CROP_FITS:
            raise ValueError(f"crop_fit={self.crop_fit!r}: choose one of {CROP_FITS}")


class Refused(Exception):
    """A row that goes to quarantine; reason is a landmix.quarantine.REASONS code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def prepare_row(row: dict, dist: CropDistribution, tr: Translator, crop_size: int, seed: int) -> dict:
    """The per-image work on one manifest row (a dict); returns one shard row or raises Refused."""
    path = os.path.join(row["root"], row["image_path"])
    scheme = get_scheme(row["scheme"])
    pts = np.asarray(row["landmarks"] or [], np.float32).reshape(-1, 2)  # (K, 2) image pixels
    if len(pts) != scheme.num_points:
        raise Refused("wrong_point_count", f"{len(pts)} points, scheme {scheme.name} has {scheme.num_points}")
    if not np.isfinite(pts).all():
        raise Refused("non_finite", "a landmark is NaN or infinite")
    if not os.path.exists(path):
        raise Refused("missing_image", f"{path} does not exist; re-run landmix ingest on its folder")
    image = cv2.imread(path, cv2.IMREAD_COLOR)  # (H, W, 3) uint8 BGR; greyscale is expanded
    if image is None:
        raise Refused("corrupt_image", f"OpenCV cannot decode {path}")
    synthetic = row["source"] in SYNTHETIC_SOURCES
    if scheme == IBUG68:
        target, version = pts, ""
    elif scheme == tr.src:
        target, version = tr(pts), tr.version
    else:
        raise Refused("wrong_point_count", f"no translation from {scheme.name} to {IBUG68.name} configured")
    box = dist.sample_box(target, row["id"], seed) if synthetic else dist.canonical_box(target)
    crop, crop_pts = crop_image(image, target, box, crop_size)
    ok, png = cv2.imencode(".png", crop)  # BGR array -> an RGB PNG
    return {
        "id": row["id"],
        "source": row["source"],
        "split": row["split"],
        "is_synthetic": synthetic,
        "image": png.tobytes(),
        "crop_size": crop_size,
        "landmarks": crop_pts.reshape(-1).tolist(),
        "crop_box": [float(v) for v in box],
        "root": row["root"],
        "image_path": row["image_path"],
        "translator_version": version,
    }


def prepare_rows(rows: list[dict], dist, tr, crop_size: int, seed: int) -> tuple[list[dict], list[dict]]:
    """prepare_row over rows: (shard rows, quarantine records)."""
    good, bad = [], []
    for row in rows:
        try:
            good.append(prepare_row(row, dist, tr, crop_size, seed))
        except Refused as e:
            bad.append(
                {
                    "id": row["id"],
                    "path": row.get("image_path"),
                    "root": row.get("root"),
                    "reason": e.reason,
                    "detail": e.detail,
                }
            )
    return good, bad


def _prepare_batch(batch: pa.Table, dist, tr, crop_size: int, seed: int, qdir: str) -> pa.Table:
    """Ray Data map_batches function: one block in, its shard rows out; refused rows -> a JSONL part."""
    good, bad = prepare_rows(batch.to_pylist(), dist, tr, crop_size, seed)
    if bad:
        quarantine.write_jsonl(Path(qdir) / f"{bad[0]['id'].replace('/', '_')}-{uuid.uuid4().hex}.jsonl", bad)
    return pa.Table.from_pylist(good, schema=SHARD_SCHEMA)


def crop_distribution(cfg: PrepareConfig, tables: list[pa.Table]) -> CropDistribution:
    """The crop distribution: --crop-stats, else fitted on the real rows (whole image = the crop) that
    `cfg.crop_fit` names (`crop_fit_ids`)."""
    if cfg.crop_stats:
        return CropDistribution.load(cfg.crop_stats)
    real = [t.filter(pc.invert(pc.is_in(t["source"], pa.array(SYNTHETIC_SOURCES)))) for t in tables]
    real = [t.filter(pc.equal(t["scheme"], IBUG68.name)) for t in real]
    # Rows the job will quarantine (wrong count, NaN) must not skew the fit.
    real = [t.filter(pc.equal(pc.list_value_length(t["landmarks"]), IBUG68.num_points)) for t in real]
    real = [
        t.filter(pa.array(np.isfinite(landmarks_array(t["landmarks"])).all(axis=(1, 2))))
        for t in real
        if len(t)
    ]
    keep = crop_fit_ids([i for t in real for i in t["id"].to_pylist()], cfg.crop_fit)
    stats = []
    for t in real:
        t = t.filter(pc.is_in(t["id"], pa.array(sorted(keep), pa.string())))
        if len(t):
            stats.append(
                crop_stats(landmarks_array(t["landmarks"]), t["width"].to_numpy(), t["height"].to_numpy())
            )
    return CropDistribution.fit(np.concatenate(stats)) if stats else CropDistribution()


def crop_fit_ids(ids: list[str], crop_fit: str) -> set[str]:
    """The real face ids the crop distribution is fitted on: all of them, or ("train") the training pool of
    the default split over them, as a run with `config.DataConfig()`'s split splits the same faces."""
    if crop_fit == "all" or not ids:
        return set(ids)
    return set(real_split(ids, DataConfig()).train)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (prepare.json keeps one per shard; `pool.verify_shards` checks them)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


class PartNames(FilenameProvider):
    """Deterministic shard names (Ray's default carries a random write uuid)."""

    def get_filename_for_task(self, write_uuid, task_index):
        return f"part-{task_index:05d}.parquet"


def generators(tables: list[pa.Table]) -> dict[str, dict]:
    """root -> the `generator.json` that `landmix generate` left in each ingested folder that has one (the
    generator's version and look), so a run's provenance says which generator drew its synthetic faces."""
    out = {}
    for root in sorted({r for t in tables for r in t.column("root").unique().to_pylist()}):
        marker = Path(root, GENERATOR_MARKER)
        if marker.is_file():
            out[root] = json.loads(marker.read_text())
    return out


def prepare(cfg: PrepareConfig) -> dict:
    """Run the job on the connected Ray cluster; returns the summary written to prepare.json."""
    settings.require_ray("prepare")
    out = Path(cfg.out).resolve()
    tables = [read_manifest(m) for m in cfg.manifests]
    dist = crop_distribution(cfg, tables)
    tr = load_or_fixed(cfg.translator)
    inputs = pa.concat_tables([t.select(INPUT_COLUMNS) for t in tables])
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    qdir = tmp / "_quarantine"
    qdir.mkdir(parents=True)
    ctx = ray.data.DataContext.get_current()
    keep_order, keep_reservation = ctx.execution_options.preserve_order, ctx.op_resource_reservation_enabled
    try:
        step = cfg.rows_per_block
        blocks = [inputs.take(np.arange(i, min(i + step, len(inputs)))) for i in range(0, len(inputs), step)]
        ctx.execution_options.preserve_order = True  # same blocks -> same part files, run after run
        # One map-and-write operator: Ray Data's per-operator CPU reservation only holds CPUs back from it (on
        # 2 CPUs it kept 1.66 of 2 cores busy, 1.94 without; docs/results/prepare.md). Memory stays bounded by
        # the object-store backpressure.
        ctx.op_resource_reservation_enabled = False
        ds = ray.data.from_arrow(blocks).map_batches(
            _prepare_batch,
            batch_size=None,
            batch_format="pyarrow",
            fn_kwargs={
                "dist": dist,
                "tr": tr,
                "crop_size": cfg.crop_size,
                "seed": cfg.seed,
                "qdir": str(qdir),
            },
        )
        ds.write_parquet(str(tmp / "shards"), filename_provider=PartNames(), mode=ray.data.SaveMode.OVERWRITE)
        bad = sorted(
            (r for p in qdir.glob("*.jsonl") for r in quarantine.read_jsonl(p)), key=lambda r: r["id"]
        )
        shutil.rmtree(qdir)
        quarantine.write_jsonl(tmp / "quarantine.jsonl", bad)
        shards = sorted((tmp / "shards").glob("*.parquet"))
        written = sum(pq.read_metadata(p).num_rows for p in shards)
        summary = {
            "config": asdict(cfg),
            "rows_in": len(inputs),
            "rows_written": written,
            "quarantined": len(bad),
            "shards": len(shards),
            "crop_distribution": asdict(dist),
            "translator_version": tr.version,
            "generators": generators(tables),
            # what training checks before it reads a shard (`pool.verify_shards`): a copy cut off or a file
            # replaced since is refused with its path, never half-read
            "files": {
                p.name: {"sha256": file_sha256(p), "rows": pq.read_metadata(p).num_rows} for p in shards
            },
        }
        (tmp / "prepare.json").write_text(json.dumps(summary, indent=1))
        if written + len(bad) != len(inputs):
            raise RuntimeError(
                f"prepare lost rows: {len(inputs)} in, {written} written, {len(bad)} quarantined"
            )
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        ctx.execution_options.preserve_order, ctx.op_resource_reservation_enabled = (
            keep_order,
            keep_reservation,
        )
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "manifests", nargs="+", help="manifest Parquet files (landmix ingest), synthetic and real"
    )
    parser.add_argument("--out", required=True, help="output folder (replaced as a whole)")
    parser.add_argument("--crop-size", type=int, default=256, help="side of the square crops in pixels")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic crop draws")
    parser.add_argument(
        "--translator",
        action="append",
        default=[],
        help="translator .npz (landmix fit-translator writes one); repeat to chain several, "
        "applied in the order given (default: the fixed SYNTH70 -> IBUG68 table)",
    )
    parser.add_argument("--crop-stats", default="", help="CropDistribution JSON (default: fit on real rows)")
    parser.add_argument(
        "--crop-fit",
        default="train",
        choices=CROP_FITS,
        help="the real rows the crop distribution is fitted on: the training pool of the default split "
        "(no validation or test face) or all",
    )
    parser.add_argument("--rows-per-block", type=int, default=128, help="rows per Ray Data block and file")
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of a local Ray (default: all)")


def config_from_args(args: argparse.Namespace) -> PrepareConfig:
    return PrepareConfig(
        tuple(args.manifests),
        args.out,
        args.crop_size,
        args.seed,
        tuple(args.translator),
        args.crop_stats,
        args.rows_per_block,
        args.crop_fit,
    )


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    missing = [m for m in cfg.manifests if not Path(m).is_file()]
    if missing:
        print(f"landmix prepare: no manifest at {missing}; write one with `landmix ingest`", file=sys.stderr)
        return 2
    settings.init_ray(args.address, num_cpus=args.num_cpus)
    s = prepare(cfg)
    print(
        f"prepared {s['rows_written']} of {s['rows_in']} rows into {s['shards']} shards in {cfg.out}/shards; "
        f"quarantined {s['quarantined']} (see {cfg.out}/quarantine.jsonl); translator {s['translator_version']}"
    )
    return 0
