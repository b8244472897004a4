"""Distributed training with Ray Train: `train_loop_per_worker(config)` and the TorchTrainer that runs it.

    landmix train --preset smoke --out out/smoke              # seconds, 2 CPU workers (gloo)
    landmix train --preset real-baseline --out out/real       # ~6 min on 2 cores, 300-W real faces only
    RAY_ADDRESS=auto landmix train --preset gpu --out /mnt/shared/gpu   # on a GPU cluster (NCCL, bf16)

Data: prepared shards (`landmix prepare`, Parquet) reach the workers as Ray Datasets through
`ray.train.get_dataset_shard`: "synthetic" is split across ranks (streaming_split, equal rows), "real" is
read whole by each rank (at most a few thousand faces, and n_real must be the same prefix everywhere).
Each rank decodes its rows once into memory; every epoch it draws a FIXED number of batches with exactly
round(alpha * batch) synthetic samples (landmix.mixing), augments them with a per-epoch, per-rank seed in
a background thread, and steps a DDP model (prepare_model). Every rank reports every epoch; rank 0
validates on the held-out real faces, attaches the checkpoint and logs to MLflow (landmix.tracking).
The final checkpoint is copied to OUT/checkpoint, the folder `landmix eval --checkpoint` reads.
"""

from __future__ import annotations

import json
import math
import os
import queue
import shutil
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from landmix import config as C
from landmix import metrics, mixing

CKPT_FILE = "model.pt"
META_FILE = "meta.json"


# ------------------------------------------------------------------------------------------ data
class Pool:
    """Decoded faces in memory: images (N, S, S, 3) uint8 and pts (N, 68, 2) float32, crop pixels."""

    def __init__(self, ids, images, pts, paths):
        self.ids, self.images, self.pts, self.paths = list(ids), images, pts, list(paths)

    def __len__(self):
        return len(self.ids)

    def take(self, keep: list[str]) -> Pool:
        pos = {i: n for n, i in enumerate(self.ids)}
        idx = [pos[i] for i in keep]
        return Pool(keep, self.images[idx], self.pts[idx], [self.paths[i] for i in idx])


def decode_rows(rows: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Shard rows (contract (3)) -> images (N, size, size, 3) uint8 RGB and pts (N, 68, 2) at `size`."""
    images, pts = [], []
    for png, crop, lm in zip(rows["image"], rows["crop_size"], rows["landmarks"]):
        img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        p = np.asarray(lm, np.float32).reshape(68, 2)
        if int(crop) != size:
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
            p = (p + 0.5) * (size / float(crop)) - 0.5  # pixel-centre convention, as cv2.resize maps
        images.append(np.ascontiguousarray(img))
        pts.append(p)
    return np.stack(images), np.stack(pts)


def read_pool(iterator, size: int, keep=None) -> Pool:
    """Read a DataIterator (or list of row batches) whole; keep(ids) -> bool mask filters before decoding."""
    ids, paths, images, pts = [], [], [], []
    batches = iterator.iter_batches(batch_size=256, batch_format="numpy") if hasattr(iterator, "iter_batches") \
        else iterator
    for b in batches:
        mask = np.ones(len(b["id"]), bool) if keep is None else np.asarray(keep(b["id"]), bool)
        if not mask.any():
            continue
        rows = {k: [v for v, m in zip(b[k], mask) if m] for k in ("image", "crop_size", "landmarks")}
        im, p = decode_rows(rows, size)
        ids += [str(i) for i, m in zip(b["id"], mask) if m]
        paths += [f"{r}/{p_}" for r, p_, m in zip(b["root"], b["image_path"], mask) if m]
        images.append(im)
        pts.append(p)
    if not ids:
        return Pool([], np.zeros((0, size, size, 3), np.uint8), np.zeros((0, 68, 2), np.float32), [])
    order = np.argsort(ids, kind="stable")  # row order from Ray Data is not fixed; ids are
    images, pts = np.concatenate(images)[order], np.concatenate(pts)[order]
    return Pool([ids[i] for i in order], images, pts, [paths[i] for i in order])


def make_augmenter(strength: float, size: int, seed: int):
    """landmix.augment's augmenter (contract (4)); identity where that module is not there yet."""
    try:
        from landmix.augment import make_augmenter as make
    except ImportError:
        return lambda image, pts: (image, pts)
    return make(strength, size, seed=seed)


def batches(pools, plan, augment, prefetch: int = 3):
    """Yield (images (B,3,S,S) float32 in [0,1], pts (B,68,2)) for a plan of (real idx, syn idx),
    assembled and augmented in a background thread so the model does not wait on them."""
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
            q.put((x, torch.from_numpy(np.stack(pts).astype(np.float32))))
        q.put(None)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not None:
        yield item


# ----------------------------------------------------------------------------------- model & eval
def predict(model, images: np.ndarray, batch: int = 64, device="cpu") -> np.ndarray:
    """images (N, S, S, 3) uint8 -> pts (N, 68, 2) float32, crop pixels."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i : i + batch]).permute(0, 3, 1, 2).float().div_(255.0).to(device)
            out.append(model(x).pts.float().cpu().numpy())
    model.train()
    return np.concatenate(out) if out else np.zeros((0, 68, 2), np.float32)


def save_checkpoint(folder: str, model, optimizer, spec: C.RunSpec, epoch: int, extra: dict) -> None:
    net = getattr(model, "module", model)  # unwrap DDP
    torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch},
               Path(folder, CKPT_FILE))
    Path(folder, META_FILE).write_text(json.dumps({"config": C.to_dict(spec), "epoch": epoch, **extra}, indent=1))


def load_checkpoint(folder: str):
    """(model on CPU in eval mode, meta dict) from a checkpoint folder written by training."""
    from landmix.models import create_model

    meta = json.loads(Path(folder, META_FILE).read_text())
    model = create_model(C.ModelConfig(**meta["config"]["model"]))
    model.load_state_dict(torch.load(Path(folder, CKPT_FILE), map_location="cpu", weights_only=True)["model"])
    return model.eval(), meta


def checkpoint_uri(checkpoint) -> str:
    """Where a Ray Train checkpoint lies, as one string `ray.train.Checkpoint(...)` reads back: a local
    path, or a URI (s3://bucket/...) when it lies on a remote filesystem."""
    import pyarrow.fs

    if isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
        return checkpoint.path
    return f"{checkpoint.filesystem.type_name}://{checkpoint.path}"


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


# ------------------------------------------------------------------------------------ the loop
def train_loop_per_worker(config: dict) -> None:
    """One Ray Train worker. `config` is `landmix.config.to_dict(spec)`."""
    import ray.train
    import ray.train.torch

    from landmix.losses import landmark_loss
    from landmix.models import create_model

    spec = C.from_dict(config)
    m, d, t = spec.model, spec.data, spec.train
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.manual_seed(t.seed)
    if not t.use_gpu:
        torch.set_num_threads(max(1, int(t.cpus_per_worker)))
    device = ray.train.torch.get_device()

    # Data: decode once per rank (see the module docstring).
    real_train = val = Pool([], np.zeros((0, m.image_size, m.image_size, 3), np.uint8), np.zeros((0, 68, 2)), [])
    if d.real_shards:
        real = read_pool(ray.train.get_dataset_shard("real"), m.image_size)
        train_ids, val_ids = mixing.real_split(real.ids, d.split_seed, d.val_fraction)
        real_train = real.take(mixing.real_subset(train_ids, d.n_real, d.split_seed))
        val = real.take(val_ids)
    syn = read_pool(ray.train.get_dataset_shard("synthetic"), m.image_size) if d.synthetic_shards else None
    syn = syn if syn is not None else Pool([], real_train.images[:0], real_train.pts[:0], [])

    crop_scale = _crop_scale(real_train if len(real_train) else syn, m.image_size)

    model = create_model(m)
    if t.init_checkpoint:  # a folder or a URI (a sweep's pretraining on s3://...)
        with ray.train.Checkpoint(t.init_checkpoint).as_directory() as folder:
            model.load_state_dict(load_checkpoint(folder)[0].state_dict())
    model = ray.train.torch.prepare_model(model)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    start_epoch, extra, resumed_metrics = 0, {}, {}
    ckpt = ray.train.get_checkpoint()
    if ckpt:  # resuming after a failure (or a restart): weights, optimizer, epoch
        with ckpt.as_directory() as folder:
            state = torch.load(Path(folder, CKPT_FILE), map_location=device, weights_only=True)
            getattr(model, "module", model).load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            start_epoch = state["epoch"] + 1
            extra = {"resumed_from_epoch": state["epoch"]}
            resumed_metrics = json.loads(Path(folder, META_FILE).read_text()).get("metrics", {})

    tracker = None
    if rank == 0:
        tracker = _start_tracking(spec, {"real": d.real_shards, "synthetic": d.synthetic_shards})
    steps = mixing.steps_per_epoch(d.samples_per_epoch, t.batch_size, world)
    total, warmup = steps * t.epochs, steps
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if t.use_gpu else torch.autocast("cpu", enabled=False)

    if start_epoch >= t.epochs:
        # Restarted after its last epoch's checkpoint (killed between that report and the end): nothing is
        # left to train; report the final metrics and checkpoint again, so that Tune gets its metric and the
        # run's Result (the metrics of its latest checkpoint) says it resumed.
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = None
            if rank == 0:
                with ckpt.as_directory() as restored:
                    shutil.copytree(restored, folder, dirs_exist_ok=True)
                checkpoint = ray.train.Checkpoint.from_directory(folder)
            ray.train.report({**resumed_metrics, **extra}, checkpoint=checkpoint)
    for epoch in range(start_epoch, t.epochs):
        _maybe_fail(t, epoch, rank, world)
        seed = mixing.epoch_seed(t.seed, epoch, rank)
        frac = mixing.synthetic_fraction(d.strategy, d.alpha, epoch, d.pretrain_epochs)
        plan = mixing.epoch_batches(len(real_train), len(syn), frac, t.batch_size, steps, seed)
        augment = make_augmenter(d.augment_strength, m.image_size, seed)
        t0, losses = time.perf_counter(), []
        for i, (x, y) in enumerate(batches((real_train, syn), plan, augment)):
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch * steps + i, total, warmup, t.lr)
            x, y = x.to(device), y.to(device)
            with amp:
                loss = landmark_loss(model(x), y, m.head, m.image_size)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        seconds = time.perf_counter() - t0
        report = {"epoch": epoch, "train_loss": float(np.mean(losses)), "epoch_s": seconds,
                  "n_real_faces": len(real_train), "n_synthetic_faces": len(syn),
                  "samples_per_s": steps * t.batch_size * world / seconds, "synthetic_fraction": frac, **extra}
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = None
            if rank == 0:
                report.update(_validate(model, val, device, tracker, last=epoch == t.epochs - 1))
                save_checkpoint(folder, model, opt, spec, epoch, {"metrics": report, "crop_scale": crop_scale,
                                                                   "mlflow_run_id": tracker and tracker.run_id})
                if tracker:
                    tracker.log_metrics(report, step=epoch)
                    if epoch == t.epochs - 1:
                        tracker.log_checkpoint(folder)
                checkpoint = ray.train.Checkpoint.from_directory(folder)
            ray.train.report(report, checkpoint=checkpoint)
    _maybe_fail(t, t.epochs, rank, world)  # test hook: fail_at_epoch == epochs dies after the last report
    if tracker:
        tracker.finish()


def _crop_scale(pool: Pool, size: int) -> float:
    """Median crop side / landmark box long side of the training crops; `landmix eval` crops the same way."""
    if not len(pool):
        return 2.0
    span = (pool.pts.max(1) - pool.pts.min(1)).max(1)
    return float(np.median(size / np.maximum(span, 1e-3)))


def _validate(model, val: Pool, device, tracker, last: bool) -> dict:
    if not len(val):
        return {}
    pred = predict(getattr(model, "module", model), val.images, device=device)
    errors = metrics.nme(pred, val.pts)
    out = {f"val_{k}": v for k, v in metrics.summary(errors).items() if k != "n"}
    if tracker and last:
        from landmix.tracking import ced_png, predictions_png

        subsets = metrics.per_subset(errors, [metrics.subset_of(p) for p in val.paths])
        tracker.log_dict({"per_subset": subsets, "ids": val.ids, "nme": errors.tolist()}, "val/metrics.json")
        k = min(16, len(val))
        tracker.log_figure_files({"ced.png": ced_png({"validation": errors}),
                                  "predictions.png": predictions_png(val.images[:k], pred[:k], val.pts[:k])}, "val")
    return out


def _start_tracking(spec: C.RunSpec, folders: dict):
    from landmix import tracking

    uri = tracking.resolve_uri(spec.train.tracking_uri)
    if uri is None:
        return None
    t = spec.train
    tags = {"landmix.strategy": t.strategy_label or spec.data.strategy}
    if t.parent_run_id:
        tags["mlflow.parentRunId"] = t.parent_run_id
    tracker = tracking.Tracker(uri, t.experiment, run_key=t.name, run_name=t.run_label or t.name, tags=tags)
    if not tracker.resumed:
        tracker.log_params(C.flat_params(spec))
        prov = tracking.provenance(folders)
        tracker.log_dict(prov, "provenance.json")
        tracker.set_tags({f"data.{k}.hash": v["folder_hash"] for k, v in prov.items()}
                         | {f"data.{k}.translator": ",".join(v["translator_versions"]) for k, v in prov.items()})
    return tracker


def _maybe_fail(t: C.TrainConfig, epoch: int, rank: int, world: int) -> None:
    """Test hook: one hard exit of one worker (as if the process were killed), once per marker file."""
    if epoch == t.fail_at_epoch and rank == min(1, world - 1) and t.fail_marker and not os.path.exists(t.fail_marker):
        Path(t.fail_marker).write_text(f"killed rank {rank} at epoch {epoch}\n")
        # Die some seconds into the epoch, as a real crash would: Ray Train's controller collects reports
        # (and so registers the previous epoch's checkpoint) on its health check every 2 s.
        time.sleep(6)
        os._exit(1)


# ------------------------------------------------------------------------------------ the driver
def shard_folder(folder: str) -> Path:
    """The Parquet folder of a shard location: FOLDER/shards (a `landmix prepare` output) or FOLDER itself."""
    path = Path(folder).resolve()
    for cand in (path / "shards", path):
        if list(cand.glob("*.parquet")):
            return cand
    raise FileNotFoundError(f"{folder!r} holds no Parquet shards (nor does {folder}/shards); write them with "
                            f"`landmix prepare ... --out {folder}` or point the preset elsewhere")


def prepare_summary(folder: str) -> Path | None:
    """The prepare.json of the `landmix prepare` run that wrote these shards; None when there is none."""
    path = shard_folder(folder).parent / "prepare.json"
    return path if path.exists() else None


def _rows_where_synthetic(batch, synthetic: bool):
    import pyarrow.compute as pc

    return batch.filter(pc.equal(batch["is_synthetic"], synthetic))


def build_trainer(spec: C.RunSpec, callbacks: list | None = None, train_fn=train_loop_per_worker):
    """The TorchTrainer for `spec`: datasets from the shard folders, gloo on CPU, checkpoint every epoch."""
    import ray.data
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    d, t = spec.data, spec.train
    datasets = {}
    for name, folder in (("real", d.real_shards), ("synthetic", d.synthetic_shards)):
        if folder:
            ds = ray.data.read_parquet(str(shard_folder(folder)))
            # One `landmix prepare` folder may hold both kinds: each dataset keeps its own rows.
            datasets[name] = ds.map_batches(_rows_where_synthetic, fn_kwargs={"synthetic": name == "synthetic"},
                                            batch_format="pyarrow")
    if "real" in datasets:  # small, and read whole by every rank: read once into the object store
        datasets["real"] = datasets["real"].materialize()
    return TorchTrainer(
        train_fn,
        train_loop_config=C.to_dict(spec),
        torch_config=TorchConfig(backend="nccl" if t.use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=t.num_workers, use_gpu=t.use_gpu, resources_per_worker={"CPU": t.cpus_per_worker},
            placement_strategy=t.placement_strategy,
        ),
        run_config=ray.train.RunConfig(
            name=t.name,
            storage_path=t.storage_path if "://" in t.storage_path else str(Path(t.storage_path).resolve()),
            failure_config=ray.train.FailureConfig(max_failures=t.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=callbacks,
        ),
        datasets=datasets,
        dataset_config=ray.train.DataConfig(datasets_to_split=["synthetic"] if "synthetic" in datasets else []),
    )


def fit(spec: C.RunSpec, out: str | None = None, train_fn=train_loop_per_worker):
    """Run training; copy the final checkpoint to OUT/checkpoint (and the resolved config beside it)."""
    result = build_trainer(spec, train_fn=train_fn).fit()
    if out and result.checkpoint:
        dest = Path(out, "checkpoint")
        shutil.rmtree(dest, ignore_errors=True)
        with result.checkpoint.as_directory() as folder:
            shutil.copytree(folder, dest)
        Path(out, "config.json").write_text(json.dumps(C.to_dict(spec), indent=1))
        Path(out, "metrics.json").write_text(json.dumps(result.metrics, indent=1, default=str))
    return result


def add_arguments(parser) -> None:
    parser.add_argument("--preset", default="smoke", choices=sorted(C.PRESETS), help="run preset (landmix.config)")
    parser.add_argument("--out", default="", help="folder for the final checkpoint (OUT/checkpoint) and config")
    parser.add_argument("--real-shards", default="", help="override data.real_shards")
    parser.add_argument("--synthetic-shards", default="", help="override data.synthetic_shards")
    parser.add_argument("--epochs", type=int, default=0, help="override train.epochs")
    parser.add_argument("--head", default="", choices=("", *C.HEADS), help="override model.head")
    parser.add_argument("--workers", type=int, default=0, help="override train.num_workers")


def spec_from_args(args) -> C.RunSpec:
    data = {k: v for k, v in (("real_shards", args.real_shards), ("synthetic_shards", args.synthetic_shards)) if v}
    train = {"name": f"{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"}
    if args.epochs:
        train["epochs"] = args.epochs
    if args.workers:
        train["num_workers"] = args.workers
    model = {"head": args.head} if args.head else {}
    return C.preset(args.preset, model=model, data=data, train=train)


def run(args) -> int:
    from landmix import settings

    spec = spec_from_args(args)
    # Locally, leave logical CPUs for Ray Data's read tasks beside the training workers.
    settings.init_ray(num_cpus=int(spec.train.num_workers * spec.train.cpus_per_worker) + 2)
    out = args.out or str(settings.PROJECT_ROOT / "runs" / spec.train.name)
    t0 = time.perf_counter()
    result = fit(spec, out)
    print(json.dumps({k: result.metrics.get(k) for k in ("epoch", "train_loss", "val_nme", "val_fr@10",
                                                          "val_auc@10")}))
    print(f"trained in {time.perf_counter() - t0:.0f} s; checkpoint: {Path(out, 'checkpoint')}; "
          f"Ray Train run: {spec.train.storage_path}/{spec.train.name}; MLflow experiment "
          f"{spec.train.experiment!r} at {os.environ.get('MLFLOW_TRACKING_URI') or spec.train.tracking_uri or 'off'}")
    return 0
