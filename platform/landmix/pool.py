"""Prepared faces: where a `landmix prepare` folder keeps its shards and what they were made from (`provenance`:
hashes, translator and generator versions); the decoded `Pool` in memory that training, the translator's
real-face fit and the benchmarks read them into (each process decodes once); and the augmented `batches`
that training draws from pools.

    pool = read_pool(ray_data_iterator_or_row_batches, model_cfg)   # context crops around each face
    images, pts = pool.model_inputs(model_cfg.image_size)            # the model-input crops and their points
    for x, y in batches((real, syn), plan, augment): ...              # (B, 3, S, S) float32, (B, 68, 2)
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from pathlib import Path

import cv2
import numpy as np

from landmix import config as C
from landmix import crops


def shard_folder(folder: str) -> Path:
    """The Parquet folder of a shard location: FOLDER/shards (a `landmix prepare` output) or FOLDER itself."""
    path = Path(folder).resolve()
    for cand in (path / "shards", path):
        if list(cand.glob("*.parquet")):
            return cand
    raise FileNotFoundError(
        f"{folder!r} holds no Parquet shards (nor does {folder}/shards); write them with "
        f"`landmix prepare ... --out {folder}` or point the preset elsewhere"
    )


def prepare_summary(folder: str) -> Path | None:
    """The prepare.json of the `landmix prepare` run that wrote these shards; None when there is none."""
    path = shard_folder(folder).parent / "prepare.json"
    return path if path.exists() else None


SHARD_COLUMNS = ("id", "image", "landmarks", "is_synthetic", "crop_size")  # what training reads of a shard


class ShardError(ValueError):
    """A shard file that is not what `landmix prepare` wrote: missing, extra, truncated, replaced, not Parquet."""


def verify_shards(folder: str) -> None:
    """Refuse a shard folder, naming the file, before anything reads from it, where a file is not what
    `landmix prepare` wrote (a copy cut off, a file replaced or re-written since): against the sha256 and file
    list its prepare.json keeps; where there is none (shards written by other means, or by a prepare before
    the list was kept), each file's Parquet footer and columns. A ShardError (a ValueError) says what to do."""
    import pyarrow.parquet as pq

    from landmix.prepare import file_sha256

    files = shard_folder(folder)
    present = sorted(files.glob("*.parquet"))
    summary = prepare_summary(folder)
    listed = json.loads(summary.read_text()).get("files") if summary else None
    fix = f"run landmix prepare again for {files.parent} (or copy the file again from where it came)"
    if listed is not None:
        missing = sorted(set(listed) - {p.name for p in present})
        extra = sorted({p.name for p in present} - set(listed))
        if missing or extra:
            raise ShardError(
                f"{files}: not the files landmix prepare wrote (missing {missing or 'none'}, not written by it "
                f"{extra or 'none'}); {fix}"
            )
        for p in present:
            if file_sha256(p) != listed[p.name]["sha256"]:
                raise ShardError(
                    f"{p}: its bytes are not those landmix prepare wrote ({p.stat().st_size} bytes, sha256 "
                    f"differs from prepare.json: cut off, replaced or re-written since); {fix}"
                )
        return
    for p in present:
        try:
            names = pq.read_schema(p).names
        except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for a damaged file
            raise ShardError(
                f"{p}: not a Parquet file pyarrow can read ({' '.join(str(e).split())}); {fix}"
            ) from None
        if lacking := [c for c in SHARD_COLUMNS if c not in names]:
            raise ShardError(f"{p}: not a landmix shard (no column {', '.join(lacking)}); {fix}")


def provenance(folders: dict[str, str]) -> dict:
    """Data provenance of shard folders ({kind: folder}; "" = none): a hash per Parquet file, the translator
    versions used, and the versions of the generator that drew the synthetic faces (from `landmix generate`'s
    generator.json, via prepare.json)."""
    import pyarrow.parquet as pq

    out = {}
    for name, folder in folders.items():
        if not folder:
            continue
        files = sorted(shard_folder(folder).glob("*.parquet"))
        hashes = {f.name: hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in files}
        versions = set()
        for f in files:
            col = pq.read_table(f, columns=["translator_version"]).column(0).to_pylist()
            versions.update(v for v in col if v)
        summary = prepare_summary(folder)
        prepared = json.loads(summary.read_text()) if summary else None
        out[name] = {
            "folder": str(shard_folder(folder)),
            "shard_sha256_16": hashes,
            "folder_hash": hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:16],
            "translator_versions": sorted(versions),
            "prepare_summary": prepared,
            "generator_versions": sorted(
                {g["version"] for g in (prepared or {}).get("generators", {}).values()}
            ),
        }
    return out


def rows_where_synthetic(batch, synthetic: bool):
    """The rows of a pyarrow batch of one kind (a `landmix prepare` folder may hold both)."""
    import pyarrow.compute as pc

    return batch.filter(pc.equal(batch["is_synthetic"], synthetic))


class Pool:
    """Decoded faces in memory: images (N, C, C, 3) uint8 context crops and pts (N, 68, 2) float32 in them."""

    def __init__(self, ids, images, pts, paths):
        self.ids, self.images, self.pts, self.paths = list(ids), images, pts, list(paths)

    def __len__(self):
        return len(self.ids)

    def take(self, keep: list[str]) -> Pool:
        pos = {i: n for n, i in enumerate(self.ids)}
        idx = [pos[i] for i in keep]
        return Pool(keep, self.images[idx], self.pts[idx], [self.paths[i] for i in idx])

    def model_inputs(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The model-input crops (N, size, size, 3) and their points: the centre of each context crop."""
        return crops.centre_crop(self.images, self.pts, size)


def empty_pool(model: C.ModelConfig) -> Pool:
    c = crops.context_size(model.image_size)
    return Pool([], np.zeros((0, c, c, 3), np.uint8), np.zeros((0, model.num_points, 2), np.float32), [])


def decode_rows(rows: dict, model: C.ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """Shard rows -> context crops (N, C, C, 3) uint8 RGB around each face's model-input crop, and their
    pts (N, 68, 2). C = crops.context_size(image_size); the crop is crop_scale x crops.CONTEXT the box."""
    size = crops.context_size(model.image_size)
    images, pts = [], []
    ids = rows.get("id", [None] * len(rows["image"]))
    for png, lm, id_ in zip(rows["image"], rows["landmarks"], ids):
        img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR) if len(png) else None
        if img is None:
            raise ValueError(
                f"shard row {id_ or '?'}: its image ({len(png)} bytes) does not decode; "
                f"write the shards again with landmix prepare"
            )
        img = img[:, :, ::-1]
        crop, p, _ = crops.input_crop(
            img, np.asarray(lm, np.float32).reshape(-1, 2), model.crop_scale, size, context=crops.CONTEXT
        )
        images.append(np.ascontiguousarray(crop))
        pts.append(p)
    return np.stack(images), np.stack(pts)


def read_shards(folder: str, model: C.ModelConfig, synthetic: bool = False) -> Pool:
    """The faces of one kind in a shard folder, read whole and decoded in this process (no Ray): what the
    translator's real-face fit and the benchmarks read. A shard that cannot be read is named, with why."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    verify_shards(folder)  # a cut-off or replaced file named before any row is read
    tables = []
    for f in sorted(shard_folder(folder).glob("*.parquet")):
        try:
            tables.append(pq.read_table(f))
        except PermissionError:
            raise ValueError(
                f"{f}: cannot read it: permission denied; check the file's permissions"
            ) from None
        except (pa.ArrowException, OSError) as e:
            why = " ".join(str(e).split("': ")[-1].split())  # pyarrow's text names the file again
            raise ValueError(
                f"{f}: not a Parquet file pyarrow can read ({why}); write the shards again with landmix prepare"
            ) from None
    table = rows_where_synthetic(pa.concat_tables(tables, promote_options="default"), synthetic)
    return read_pool(
        [{k: b.column(k).to_pylist() for k in b.schema.names} for b in table.to_batches(256)], model
    )


def read_pool(iterator, model: C.ModelConfig) -> Pool:
    """Read a DataIterator (or a list of row batches) whole and decode it."""
    ids, paths, images, pts = [], [], [], []
    batches = (
        iterator.iter_batches(batch_size=256, batch_format="numpy")
        if hasattr(iterator, "iter_batches")
        else iterator
    )
    for b in batches:
        if not len(b["id"]):
            continue
        im, p = decode_rows({k: b[k] for k in ("id", "image", "landmarks")}, model)
        ids += [str(i) for i in b["id"]]
        paths += [f"{r}/{p_}" for r, p_ in zip(b["root"], b["image_path"])]
        images.append(im)
        pts.append(p)
    if not ids:
        return empty_pool(model)
    order = np.argsort(ids, kind="stable")  # row order from Ray Data is not fixed; ids are
    images, pts = np.concatenate(images)[order], np.concatenate(pts)[order]
    return Pool([ids[i] for i in order], images, pts, [paths[i] for i in order])


def batches(pools, plan, augment, prefetch: int = 3):
    """Yield (images (B,3,S,S) float32 in [0,1], pts (B,68,2)) for a plan of (real idx, syn idx),
    assembled and augmented in a background thread so the model does not wait on them.
    pools: (real, synthetic); plan: mixing.epoch_batches' index pairs; augment: (image, pts) -> (image, pts)."""
    import torch

    q: queue.Queue = queue.Queue(maxsize=prefetch)

    def work():
        for real_idx, syn_idx in plan:
            ims, pts = [], []
            for pool, idx in zip(pools, (real_idx, syn_idx)):
                for i in idx:
                    im, p = augment(pool.images[i], pool.pts[i])
                    ims.append(im)
                    pts.append(p)
            x = torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).float().div_(255.0)
            q.put(
                (
                    x.contiguous(memory_format=torch.channels_last),
                    torch.from_numpy(np.stack(pts).astype(np.float32)),
                )
            )
        q.put(None)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not None:
        yield item
