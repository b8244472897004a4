"""The driver's side of a training run: the Ray Train `TorchTrainer` for a `RunSpec`, and `fit`.

    result = fit(spec, out="out/smoke")           # what `landmix train` (landmix.train_command) runs
    trainer = build_trainer(spec, callbacks=...)  # what a sweep's trials run (landmix.sweep.search)

Each worker runs `landmix.train.train_loop_per_worker`; `fit` copies the final checkpoint to OUT/checkpoint, the
folder `landmix eval` and `landmix predict` read.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from landmix import config as C
from landmix.pool import rows_where_synthetic, shard_folder, verify_shards
from landmix.train import SHARED_POOLS, train_loop_per_worker

DATA_CPUS = 2  # logical CPUs a local cluster keeps beside the workers for Ray Data's read tasks


def local_cpus(spec: C.RunSpec) -> int:
    """The CPUs a private local Ray cluster needs for runs of `spec`: its workers' and Ray Data's beside them.
    A cluster of only the machine's cores (2 here) gives a 2-CPU worker all of them, and the run's datasets
    then wait forever for a CPU to read on."""
    return int(spec.train.num_workers * spec.train.cpus_per_worker) + DATA_CPUS


def build_trainer(
    spec: C.RunSpec,
    callbacks: list | None = None,
    train_fn=train_loop_per_worker,
    shared_pools: dict | None = None,
):
    """The TorchTrainer for `spec`: datasets from the shard folders, gloo on CPU, checkpoint every epoch.

    shared_pools: {"real"/"synthetic": ObjectRef of a decoded `Pool`} that a sweep decoded once for all of its
    trials (`landmix.sweep.search.share_pools`); those kinds are not read from their shards again."""
    from landmix import settings

    settings.require_ray("build_trainer")
    import ray.data
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    d, t = spec.data, spec.train
    datasets = {}
    shared_pools = {
        k: v
        for k, v in (shared_pools or {}).items()
        if {"real": d.real_shards, "synthetic": d.synthetic_shards}[k]
    }
    for name, folder in (("real", d.real_shards), ("synthetic", d.synthetic_shards)):
        if folder and name not in shared_pools:
            verify_shards(folder)  # a cut-off or replaced shard is refused with its path, before any read
            ds = ray.data.read_parquet(str(shard_folder(folder)))
            # One `landmix prepare` folder may hold both kinds: each dataset keeps its own rows.
            datasets[name] = ds.map_batches(
                rows_where_synthetic, fn_kwargs={"synthetic": name == "synthetic"}, batch_format="pyarrow"
            )
    if "real" in datasets:  # small, and read whole by every rank: read once into the object store
        datasets["real"] = datasets["real"].materialize()
    return TorchTrainer(
        train_fn,
        train_loop_config=C.to_dict(spec) | ({SHARED_POOLS: shared_pools} if shared_pools else {}),
        torch_config=TorchConfig(backend="nccl" if t.use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=t.num_workers,
            use_gpu=t.use_gpu,
            resources_per_worker={"CPU": t.cpus_per_worker},
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
        dataset_config=ray.train.DataConfig(
            datasets_to_split=["synthetic"] if "synthetic" in datasets else []
        ),
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
