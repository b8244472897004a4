"""`landmix predict --on-ray`: the same predictions as `landmix predict`, over any number of photos, on Ray Data.

    landmix predict --checkpoint out/real/checkpoint photos/ --out out/predict --on-ray              # local Ray
    landmix predict --checkpoint CKPT --manifest out/300w.parquet --out out/pred --on-ray --actors 8 --pts
    RAY_ADDRESS=auto landmix predict --checkpoint /shared/ckpt /shared/photos --out /shared/pred --on-ray

When to use which: the one-process loop (`landmix predict` without --on-ray) suits a handful of photos; it
writes a picture per face and predictions.json, and starts no Ray. This path suits a folder or a manifest of
any size: it starts Ray (or joins $RAY_ADDRESS / --address), loads the model once per actor, and writes one
Parquet of predictions, each .pts file only on request (--pts), no pictures. Past its start-up (about 10 s
on 2 cores) one actor predicts about twice the loop's photos/s on the same core (docs/results/predict.md);
each actor takes one CPU, so on a cluster add actors.

The pipeline, one Ray Data dataset:
1. the photo list (`list_photos` for files and folders; `photos_of_parquet` for a Parquet manifest's
   root + image_path, or any Parquet with a `photo` column of paths, each photo once) becomes
   `ray.data.from_items` of paths only, so no photo's bytes pass through the driver or the object store;
2. `map_batches(PredictorActor, compute=ActorPoolStrategy(size=actors), batch_size=...)`: each actor holds a
   `predict.Predictor` (detector, calibration, passes, flip averaging: the loop's code path, so the same
   points), reads and decodes its batch's photos itself (`photos.read_photo`), and runs the model on all
   their faces at once; torch on one thread per actor (one CPU each);
3. the driver streams the result blocks in the order of the photo list (`preserve_order`) into one Parquet
   file, `OUT/predictions.parquet` (`SCHEMA`, written to a temporary name and renamed: never appended to,
   never half-written), and writes `<stem>_<k>.pts` beside it with --pts (stems as the loop names them).
Memory stays bounded: Ray Data's back-pressure keeps a few blocks in flight, and only one block of results
is in the driver at a time.

Every photo gets at least one row: one per face found (`status` "ok", faces in the detector's score order),
or one with status "no_face" (the detector found none), "unreadable" (the file could not be read or decoded:
`error` says why) or "failed" (the detector or model raised on it: `error` holds the exception). On a
cluster the checkpoint, the photos and OUT must be on storage every node reads (NFS, a mounted bucket).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from landmix import detect, settings
from landmix.manifest import POINTS
from landmix.photos import read_photo
from landmix.predict import DEFAULT_PASSES, Predictor, checked_model_flags, list_photos
from landmix.sources import w300

OUT_FILE = "predictions.parquet"
BATCH_SIZE = 8  # photos one actor decodes and predicts together (the model runs on all their faces at once)
PHOTOS_PER_BLOCK = 32  # at most, so that a large list spreads over the actors in small, even pieces
STATUSES = ("ok", "no_face", "unreadable", "failed")
SCHEMA = pa.schema(
    [
        ("photo", pa.string()),  # the path, as listed
        ("face", pa.int32()),  # k: 0 = the best detector score; null on a row without a face
        ("status", pa.string()),  # one of STATUSES
        ("error", pa.string()),  # why unreadable or failed; null otherwise
        ("width", pa.int32()),  # the decoded photo's size (displayed orientation); null when unreadable
        ("height", pa.int32()),
        ("box", pa.list_(pa.float32())),  # 4: detector box x0, y0, x1, y1 (first and last pixel centres)
        ("score", pa.float32()),  # the detector's score
        ("crop", pa.list_(pa.float32())),  # 3: the first pass's crop x0, y0, side
        ("points", POINTS),  # (K, 2) float32, 0-based pixel centres of the photo
        ("pts_file", pa.string()),  # <stem>_<k>.pts in OUT with --pts; null otherwise
    ]
)
_ACTOR_SCHEMA = pa.schema([("index", pa.int64())] + [f for f in SCHEMA if f.name != "pts_file"])


def photos_of_parquet(path) -> list[str]:
    """The photos a Parquet file names, each once, in the order of first appearance: a manifest's
    root / image_path (`landmix ingest` writes one row per face), or a `photo` column of paths."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file (give a manifest from landmix ingest, or a Parquet file)"
        )
    names = set(pq.read_schema(path).names)
    if "photo" in names:
        photos = pq.read_table(path, columns=["photo"])["photo"].to_pylist()
    elif {"root", "image_path"} <= names:
        t = pq.read_table(path, columns=["root", "image_path"])
        photos = [
            None if r is None or p is None else str(Path(r) / p)
            for r, p in zip(t["root"].to_pylist(), t["image_path"].to_pylist())
        ]
    else:
        raise ValueError(
            f"{path}: neither a `photo` column of paths nor a manifest's root and image_path columns; "
            f"write it with landmix ingest or give it a photo column"
        )
    if None in photos:
        raise ValueError(f"{path}: {photos.count(None)} rows name no photo (null path); drop or fill them")
    if not photos:
        raise ValueError(f"{path}: no rows, so no photos to predict")
    return list(dict.fromkeys(photos))


class PredictorActor:
    """One Ray Data actor: a `Predictor` loaded once, called on batches {"index", "photo"} of paths; returns
    the rows of those photos (`_ACTOR_SCHEMA`: SCHEMA with the photo's index in the list, no pts_file)."""

    def __init__(self, checkpoint_folder: str, calibration: detect.BoxCalibration, passes: int):
        import torch

        torch.set_num_threads(1)  # one CPU per actor: more actors, not more threads, use more cores
        self.predictor = Predictor.load(checkpoint_folder, calibration, passes)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        rows: list[dict] = []
        readable: list[tuple[int, str, np.ndarray]] = []
        for index, photo in zip(batch["index"].tolist(), map(str, batch["photo"])):
            try:
                readable.append((index, photo, read_photo(photo)))
            except (ValueError, OSError, cv2.error) as e:  # a row saying why; the other photos still done
                rows.append({"index": index, "photo": photo, "status": "unreadable", "error": str(e)})
        try:  # all faces of the batch in one model run per pass
            found = self.predictor.faces_of([im for _, _, im in readable])
        except Exception:  # noqa: BLE001 - one bad photo must not take its batch down: retry them alone
            found = [self._faces_or_error(im) for _, _, im in readable]
        for (index, photo, image), faces in zip(readable, found):
            row = {"index": index, "photo": photo, "width": image.shape[1], "height": image.shape[0]}
            if isinstance(faces, Exception):
                rows.append(row | {"status": "failed", "error": f"{type(faces).__name__}: {faces}"})
            elif not faces:
                rows.append(row | {"status": "no_face"})
            for k, face in enumerate(faces if isinstance(faces, list) else []):
                rows.append(
                    row
                    | {
                        "face": k,
                        "status": "ok",
                        "box": np.asarray(face["box"], np.float32),
                        "score": face["score"],
                        "crop": np.asarray(face["crop"], np.float32),
                        "points": np.asarray(face["points"], np.float32),
                    }
                )
        rows.sort(key=lambda r: (r["index"], r.get("face") or 0))
        return _table(rows)

    def _faces_or_error(self, image: np.ndarray):
        try:
            return self.predictor.faces(image)
        except Exception as e:  # noqa: BLE001 - kept as the photo's row, status "failed"
            return e


def _table(rows: list[dict]) -> pa.Table:
    cols = {f.name: [r.get(f.name) for r in rows] for f in _ACTOR_SCHEMA}
    cols["points"] = [None if p is None else p.tolist() for p in cols["points"]]
    cols["box"] = [None if b is None else b.tolist() for b in cols["box"]]
    cols["crop"] = [None if c is None else c.tolist() for c in cols["crop"]]
    return pa.Table.from_pydict(cols, schema=_ACTOR_SCHEMA)


@dataclass
class BatchResult:
    """What a run wrote: the Parquet file and the counts of its rows by status."""

    out: Path
    photos: int
    counts: dict[str, int] = field(default_factory=dict)  # rows by status (faces: "ok")
    pts_files: int = 0
    seconds: float = 0.0


def predict_on_ray(
    checkpoint_folder,
    photos: list[str],
    out,
    *,
    actors: int,
    passes: int = DEFAULT_PASSES,
    calibration: detect.BoxCalibration | None = None,
    batch_size: int = BATCH_SIZE,
    pts: bool = False,
    on_rows=None,
) -> BatchResult:
    """Predict every photo on the connected Ray cluster; write OUT/predictions.parquet (and .pts with pts).
    `on_rows(table)`, if given, sees each block of rows as it is written (the command prints from it)."""
    import ray

    settings.require_ray("predict --on-ray")
    if actors < 1 or batch_size < 1:
        raise ValueError(f"actors={actors}, batch_size={batch_size}: give 1 or more of each")
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    calibration = calibration or detect.BoxCalibration.load()
    items = [{"index": i, "photo": str(p)} for i, p in enumerate(photos)]
    blocks = max(1, min(len(items), max(4 * actors, math.ceil(len(items) / PHOTOS_PER_BLOCK))))
    ds = ray.data.from_items(items, override_num_blocks=blocks)
    ds.context.execution_options.preserve_order = True  # blocks come back in the photo list's order
    ds = ds.map_batches(
        PredictorActor,
        fn_constructor_args=(str(Path(checkpoint_folder).resolve()), calibration, passes),
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_size=batch_size,
        batch_format="numpy",
        num_cpus=1,
    )
    counts = dict.fromkeys(STATUSES, 0)
    stems: set[str] = set()
    stem = ""
    next_index, n_pts = 0, 0
    tmp = out / f".{OUT_FILE}.tmp"
    with pq.ParquetWriter(tmp, SCHEMA) as writer:
        for table in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            pts_files: list[str | None] = []
            for row in table.select(["index", "photo", "face", "status", "points"]).to_pylist():
                if row["index"] != next_index - 1:  # a new photo: the next in the list, none skipped
                    if row["index"] != next_index:
                        raise RuntimeError(f"photo {next_index} of the list has no row (got {row['index']})")
                    next_index += 1
                    stem = _stem(Path(row["photo"]).stem, stems)
                counts[row["status"]] += 1
                if pts and row["status"] == "ok":
                    name = f"{stem}_{row['face']}.pts"
                    w300.write_pts(out / name, np.asarray(row["points"], np.float32))
                    n_pts += 1
                    pts_files.append(name)
                else:
                    pts_files.append(None)
            table = table.drop_columns(["index"]).append_column("pts_file", pa.array(pts_files, pa.string()))
            writer.write_table(table.cast(SCHEMA))
            if on_rows is not None:
                on_rows(table)
    if next_index != len(photos):
        raise RuntimeError(f"{len(photos) - next_index} photos of {len(photos)} came back without a row")
    os.replace(tmp, out / OUT_FILE)
    return BatchResult(out / OUT_FILE, len(photos), counts, n_pts, time.perf_counter() - start)


def _stem(name: str, taken: set[str]) -> str:
    """The loop's file stem for a photo: its name, with -2, -3 ... where an earlier photo had it."""
    stem, n = name, 2
    while stem in taken:
        stem, n = f"{name}-{n}", n + 1
    taken.add(stem)
    return stem


def add_arguments(parser) -> None:
    """The flags of the Ray Data path, added to `landmix predict`'s."""
    parser.add_argument(
        "--on-ray",
        action="store_true",
        help="run on Ray Data (a pool of actors, one Parquet of predictions): for folders or manifests of "
        "any size; without it, a one-process loop for a handful of photos",
    )
    parser.add_argument(
        "--manifest",
        help="with --on-ray: a Parquet naming the photos (a landmix ingest manifest's root/image_path, or a "
        "`photo` column of paths), besides or instead of PHOTOS",
    )
    parser.add_argument(
        "--actors",
        type=int,
        default=None,
        help="with --on-ray: actors holding the model, one CPU each (default: the cluster's CPUs)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        help=f"with --on-ray: photos an actor predicts together (default {BATCH_SIZE})",
    )
    parser.add_argument(
        "--pts",
        action="store_true",
        help="with --on-ray: also write each face's <stem>_<k>.pts to --out (the loop always does)",
    )
    parser.add_argument(
        "--address", help="with --on-ray: Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)"
    )


def run(args) -> int:
    try:  # the user's mistakes, said in one line before any work
        if not args.on_ray:
            raise ValueError(
                "--manifest, --actors, --pts and --address belong to the Ray Data path: add --on-ray"
            )
        if (args.actors is not None and args.actors < 1) or args.batch_size < 1:
            raise ValueError(f"--actors {args.actors} --batch-size {args.batch_size}: give 1 or more of each")
        photos = [str(p) for p in list_photos(args.photos)] if args.photos or not args.manifest else []
        if args.manifest:
            photos = list(dict.fromkeys(photos + photos_of_parquet(args.manifest)))
        calibration = checked_model_flags(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"landmix predict: {e}", file=sys.stderr)
        return 2
    settings.init_ray(args.address)
    import ray

    actors = args.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    shown = {"no_face": 0}

    def show(table: pa.Table) -> None:  # every unreadable or failed photo, the first no-face ones
        for row in table.select(["photo", "status", "error"]).to_pylist():
            if row["status"] in ("unreadable", "failed"):
                print(f"{row['status']}: {row['error']}")
            elif row["status"] == "no_face" and shown["no_face"] < 5:
                shown["no_face"] += 1
                print(f"no face found: {row['photo']}")

    result = predict_on_ray(
        args.checkpoint,
        photos,
        args.out,
        actors=actors,
        passes=args.passes,
        calibration=calibration,
        batch_size=args.batch_size,
        pts=args.pts,
        on_rows=show,
    )
    c = result.counts
    print(
        f"{result.photos} photos on {actors} actors in {result.seconds:.1f} s: {c['ok']} faces, "
        f"{c['no_face']} with no face found, {c['unreadable']} unreadable, {c['failed']} failed"
        f"{f', {result.pts_files} .pts files' if args.pts else ''} -> {result.out}"
    )
    return 1 if c["unreadable"] or c["failed"] else 0
