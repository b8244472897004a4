"""Distributed training with Ray Train: `train_loop_per_worker(config)`, what every worker runs (the driver's
side, the TorchTrainer that runs it, is `landmix.trainer`).

Prepared shards (`landmix prepare`, Parquet) reach the workers as Ray Datasets through
`ray.train.get_dataset_shard`: "synthetic" is split across ranks (streaming_split, equal rows), "real" is
read whole by each rank (at most a few thousand faces; its splits must be the same everywhere).

Each rank decodes its rows once into memory, as context crops around the model-input crop (landmix.crops);
every epoch it draws a FIXED number of batches with exactly round(alpha * batch) synthetic samples
(landmix.mixing), augments them with a per-epoch, per-rank seed in a background thread (scale, shift,
rotation and flip jitter, then the model-input crop), and steps a DDP model (prepare_model).

Real faces are split three ways (sources.split.real_split): the training pool (n_real faces are drawn from
it), the validation faces (whole photos, never trained on) and the test faces (reporting only). After every
epoch rank 0 scores the validation faces with flip averaging (the raw weights, or their moving average where
`train.ema_decay` is set); the best epoch's weights are kept (the checkpoint's model.pt), and training stops
when validation NME has not improved for `patience` epochs, when `time_budget_s` is spent (the cosine
schedule is laid over the budget), or after `epochs` (landmix.schedule). Rank 0 decides and tells the others
(every rank must run the same steps). The last report carries the test faces' NME, scored once with the best
weights. Every rank reports every epoch; rank 0 tracks, in one place (landmix.train_tracking). The final
checkpoint is copied to OUT/checkpoint, the folder `landmix eval` and `landmix predict` read.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from landmix import checkpoint as ckpt_io
from landmix import config as C
from landmix import crops, metrics, mixing, train_tracking
from landmix.pool import Pool, batches, empty_pool, read_pool
from landmix.schedule import Plan, lr_at
from landmix.sources.split import real_split

# train_loop_config key: {"real": ObjectRef, "synthetic": ObjectRef} of decoded Pools a sweep shares
SHARED_POOLS = "shared_pools"
# in the final checkpoint: the real faces trained on, validated on, tested on, and the test errors
FACES_FILE = "faces.json"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (Intel AMX or AVX512-BF16), where torch's oneDNN
    convolutions run faster in bf16 than in fp32; elsewhere bf16 is emulated and slower."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch.cpu's own probes (no public API)
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def training_precision(t: C.TrainConfig) -> str:
    """`train.precision` resolved for this machine: "bf16" or "fp32"."""
    if t.precision == "auto":
        return "bf16" if t.use_gpu or cpu_has_native_bf16() else "fp32"
    return t.precision


def score(model, pool: Pool, size: int, device="cpu") -> dict:
    """NME of `model` on a pool's model-input crops, with flip averaging: {"errors" (N,), summary keys,
    "per_subset", "pred"}. Numbers only: the caller decides what to log."""
    images, gt = pool.model_inputs(size)
    pred = ckpt_io.predict(model, images, device=device)
    errors = metrics.nme(pred, gt)
    subsets = metrics.per_subset(errors, [metrics.subset_of(p) for p in pool.paths])
    return {"errors": errors, "pred": pred, "per_subset": subsets, **metrics.summary(errors)}


# ------------------------------------------------------------------------------------ the loop
def _share(obj, rank: int, world: int):
    """rank 0's obj on every rank (gloo/NCCL broadcast); every rank must call it at the same point."""
    import torch.distributed as dist

    if world == 1 or not dist.is_initialized():
        return obj
    box = [obj if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def train_loop_per_worker(config: dict) -> None:
    """One Ray Train worker. `config` is `landmix.config.to_dict(spec)` (+ SHARED_POOLS from a sweep)."""
    import ray
    import ray.train
    import ray.train.torch

    from landmix.augment import make_augmenter
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

    # Data: decode once per rank (see the module docstring), or take the pools a sweep decoded once for all of
    # its trials (`config["shared_pools"]`: object refs; read-only arrays in Ray's object store, no copy).
    shared = config.get(SHARED_POOLS) or {}
    real_train = val = test = empty_pool(m)
    if d.real_shards:
        real = (
            ray.get(shared["real"]) if "real" in shared else read_pool(ray.train.get_dataset_shard("real"), m)
        )
        split = real_split(real.ids, d)
        real_train = real.take(mixing.picked(split, d))
        val, test = real.take(split.val), real.take(split.test)
    syn = empty_pool(m)
    # every rank its own equal share, as streaming_split does
    if d.synthetic_shards and "synthetic" in shared:
        syn = ray.get(shared["synthetic"])
        syn = syn.take([syn.ids[i] for i in mixing.rank_slice(len(syn), rank, world)]) if world > 1 else syn
    elif d.synthetic_shards:
        syn = read_pool(ray.train.get_dataset_shard("synthetic"), m)

    model = create_model(m).to(memory_format=torch.channels_last)
    if t.init_checkpoint:  # a folder or a URI (a sweep's pretraining on s3://...)
        with ray.train.Checkpoint(t.init_checkpoint).as_directory() as folder:
            model.load_state_dict(ckpt_io.load(folder)[0].state_dict())
    model = ray.train.torch.prepare_model(model)
    net = getattr(model, "module", model)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    # The weights that are validated, kept and scored: the raw ones, or their moving average (train.ema_decay)
    ema = (
        AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(t.ema_decay), use_buffers=True)
        if t.ema_decay
        else None
    )
    kept = ema.module if ema else net
    plan, start_epoch, best_state, resumed, last_metrics = Plan(t), 0, None, {}, {}
    restored = ray.train.get_checkpoint()
    if restored:  # resuming after a failure (or a restart): weights, optimizer, epoch, the plan
        with restored.as_directory() as folder:
            state = ckpt_io.load_resume(folder, device)
            net.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if ema:
                ema.load_state_dict(state["ema"])
            best_state = torch.load(Path(folder, ckpt_io.MODEL_FILE), map_location="cpu", weights_only=True)[
                "model"
            ]
            plan, start_epoch = Plan(t, state["plan"]), state["epoch"] + 1
            resumed = {"resumed_from_epoch": state["epoch"]}
            last_metrics = ckpt_io.read_meta(folder).get("metrics", {})

    precision = training_precision(t)
    folders = {"real": d.real_shards, "synthetic": d.synthetic_shards}
    tracker = train_tracking.start_run(spec, folders, precision) if rank == 0 else None
    steps = mixing.steps_per_epoch(d.samples_per_epoch, t.batch_size, world)
    amp = torch.autocast("cuda" if t.use_gpu else "cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    aug_in = crops.context_size(m.image_size)

    if plan.stop_reason:
        # Restarted after its last epoch's checkpoint (killed between that report and the end): nothing is
        # left to train; report the final metrics and checkpoint again, so that Tune gets its metric and the
        # run's Result (the metrics of its latest checkpoint) says it resumed. Its MLflow run ends before that
        # report, as at the last epoch.
        if tracker:
            tracker.finish()
        _report(last_metrics | resumed, rank, restored)
    epoch = start_epoch
    while not plan.stop_reason:
        seed = mixing.epoch_seed(t.seed, epoch, rank)
        frac = mixing.synthetic_fraction(d.strategy, d.alpha, epoch, d.pretrain_epochs)
        batch_plan = mixing.epoch_batches(len(real_train), len(syn), frac, t.batch_size, steps, seed)
        augment = make_augmenter(d.augment_strength, aug_in, seed=seed, out_size=m.image_size)
        t0, losses, step_s = time.perf_counter(), [], 0.0
        for i, (x, y) in enumerate(batches((real_train, syn), batch_plan, augment)):
            s0 = time.perf_counter()
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch * steps + i, plan.planned * steps, steps, t.lr)
            x, y = x.to(device), y.to(device)
            with amp:
                loss = landmark_loss(model(x), y, m.head, m.image_size)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema:
                ema.update_parameters(net)
            losses.append(loss.item())
            step_s += time.perf_counter() - s0
        seconds = time.perf_counter() - t0
        report = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "epoch_s": seconds,
            "n_real_faces": len(real_train),
            "n_val_faces": len(val),
            "n_test_faces": len(test),
            "n_synthetic_faces": len(syn),
            "synthetic_fraction": frac,
            "lr": opt.param_groups[0]["lr"],
            "samples_per_s": steps * t.batch_size * world / seconds,
            "step_samples_per_s": steps * t.batch_size * world / step_s,
            **resumed,
        }
        decision = None
        if rank == 0:
            v = score(kept, val, m.image_size, device) if len(val) else None
            if plan.after_epoch(epoch, time.perf_counter() - t0, v and v["nme"]):
                best_state = {k: x.detach().cpu().clone() for k, x in kept.state_dict().items()}
            report |= {f"val_{k}": v[k] for k in ("nme", "fr@10", "auc@10")} if v else {}
            # seconds of training so far, validation included
            report |= {
                "best_epoch": plan.best_epoch,
                "planned_epochs": plan.planned,
                "stop_reason": plan.stop_reason,
                "train_s": plan.elapsed,
            }
            decision = plan.state()
        plan = Plan(t, _share(decision, rank, world))
        with tempfile.TemporaryDirectory() as folder:
            if rank == 0:
                test_result = None
                if plan.stop_reason and len(test):  # the test faces, once, with the best weights
                    test_result = _test_scores(spec, best_state, test, device)
                    report |= _test_metrics(test_result)
                # which real faces did what, and each test face's error (a sweep's report)
                if plan.stop_reason:
                    Path(folder, FACES_FILE).write_text(
                        json.dumps(
                            {
                                "train": real_train.ids,
                                "val": val.ids,
                                "test": test.ids,
                                "test_errors": test_result["errors"].tolist() if test_result else [],
                            }
                        )
                    )
                resume = {
                    "model": net.state_dict(),
                    "optimizer": opt.state_dict(),
                    "epoch": epoch,
                    "plan": plan.state(),
                }
                ckpt_io.save(
                    folder,
                    best_state,
                    resume | ({"ema": ema.state_dict()} if ema else {}),
                    spec,
                    epoch=epoch,
                    best_epoch=plan.best_epoch,
                    metrics=report,
                    mlflow_run_id=tracker and tracker.run_id,
                )
                if tracker:
                    train_tracking.log_epoch(
                        tracker,
                        report,
                        epoch,
                        folder if plan.stop_reason else None,
                        test,
                        test_result,
                        m.image_size,
                    )
                    # ended before the last report: a Tune scheduler (ASHA) may stop the trial
                    if plan.stop_reason:
                        tracker.finish()  # on that report, and then no line after it runs
            if rank == 0:  # a full storage volume: said with the space needed before a byte of it is written
                ckpt_io.ensure_room(f"{t.storage_path}/{t.name}", folder)
            # The epoch's logging delivered before Tune may stop the trial on this report; bounded, so that an
            # outage of the tracking server delays an epoch by at most REPORT_FLUSH_S.
            if tracker:
                tracker.flush(timeout_s=REPORT_FLUSH_S)
            _report(report, rank, folder)
        epoch += 1


REPORT_FLUSH_S = (
    10.0  # the most an epoch waits for its MLflow logging before reporting (an outage: it goes on)
)


def _report(metrics_: dict, rank: int, folder) -> None:
    """ray.train.report on every rank; rank 0 attaches the checkpoint folder (a path, or a restored one)."""
    import ray.train

    if rank != 0 or folder is None:
        ray.train.report(metrics_, checkpoint=None)
        return
    if isinstance(folder, ray.train.Checkpoint):
        with folder.as_directory() as restored, tempfile.TemporaryDirectory() as copy:
            shutil.copytree(restored, copy, dirs_exist_ok=True)
            ray.train.report(metrics_, checkpoint=ray.train.Checkpoint.from_directory(copy))
        return
    ray.train.report(metrics_, checkpoint=ray.train.Checkpoint.from_directory(folder))


def _test_scores(spec: C.RunSpec, best_state: dict, test: Pool, device) -> dict:
    from landmix.models import create_model

    model = create_model(spec.model)
    model.load_state_dict(best_state)
    return score(model.to(device), test, spec.model.image_size, device)


def _test_metrics(r: dict) -> dict:
    """The test faces' scalars: NME, FR@10, AUC@10 of all of them, and NME per subset (test_nme_helen ...)."""
    out = {f"test_{k}": r[k] for k in ("nme", "fr@10", "auc@10")}
    return out | {f"test_nme_{name}": sub["nme"] for name, sub in r["per_subset"].items() if name != "all"}
