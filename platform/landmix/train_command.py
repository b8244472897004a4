"""`landmix train`: train a landmark detector from a preset, building its inputs on first use.

    landmix train --preset smoke --out out/smoke                  # seconds, 2 CPU workers (gloo)
    landmix train --preset real-baseline --out out/real           # 20 min on 2 cores, real 300-W faces only
    RAY_ADDRESS=auto landmix train --preset gpu --out /mnt/shared/gpu   # on a GPU cluster (NCCL, bf16)

A preset builds its own inputs from the shared data the first time (`landmix.inputs`: ingest + prepare, and
generated faces for the presets that mix; cached under out/); --real-shards / --synthetic-shards point at
`landmix prepare` folders instead. The training itself is landmix.train (`fit`), which imports neither the
inputs nor the generator; jobs/train.py runs this same command as a Ray job.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

from landmix import config as C
from landmix import presets, settings
from landmix.inputs import build_inputs, build_real
from landmix.trainer import fit


def add_arguments(parser) -> None:
    """`landmix train`'s flags: a preset and the fields a user overrides most."""
    parser.add_argument(
        "--preset", default="smoke", choices=sorted(presets.PRESETS), help="run preset (landmix.presets)"
    )
    parser.add_argument(
        "--out", default="", help="folder for the final checkpoint (OUT/checkpoint) and config"
    )
    parser.add_argument(
        "--real-shards",
        default="",
        help="override data.real_shards (default: built from the shared 300-W faces under out/)",
    )
    parser.add_argument(
        "--synthetic-shards",
        default="",
        help="override data.synthetic_shards (default: generated faces, built under out/)",
    )
    parser.add_argument("--epochs", type=int, default=0, help="override train.epochs (the most it may run)")
    parser.add_argument(
        "--time-budget", type=float, default=-1, help="override train.time_budget_s (0 = none)"
    )
    parser.add_argument("--head", default="", choices=("", *C.HEADS), help="override model.head")
    parser.add_argument("--backbone", default="", choices=("", *C.BACKBONES), help="override model.backbone")
    parser.add_argument("--workers", type=int, default=0, help="override train.num_workers")
    parser.add_argument("--seed", type=int, default=-1, help="override train.seed")


def spec_from_args(args) -> C.RunSpec:
    """The preset with the flags' overrides, named `<preset>-<date>-<time>` (a new Ray Train run each time)."""
    data = {
        k: v for k, v in (("real_shards", args.real_shards), ("synthetic_shards", args.synthetic_shards)) if v
    }
    train = {"name": f"{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"}
    for key, value, unset in (
        ("epochs", args.epochs, 0),
        ("num_workers", args.workers, 0),
        ("time_budget_s", args.time_budget, -1),
        ("seed", args.seed, -1),
    ):
        if value != unset:
            train[key] = value
    if args.workers and "num_workers" in train:  # the preset's cores, shared among the workers asked for
        base = presets.preset(args.preset).train
        train["cpus_per_worker"] = max(1.0, base.num_workers * base.cpus_per_worker / args.workers)
    model = {k: v for k, v in (("head", args.head), ("backbone", args.backbone)) if v}
    return presets.preset(args.preset, model=model, data=data, train=train)


def with_inputs(spec: C.RunSpec, given: dict) -> C.RunSpec:
    """The spec with its inputs built (once, cached under out/) where the user named no shard folder."""
    d, work, size = spec.data, settings.work_dir(), C.shard_size(spec.model)
    if d.synthetic_shards and not given.get("synthetic_shards"):
        inputs = build_inputs(work, crop_size=size)
        real = d.real_shards if given.get("real_shards") else str(inputs.real_shards)
        return replace(spec, data=replace(d, real_shards=real, synthetic_shards=str(inputs.synthetic_shards)))
    if d.real_shards and not given.get("real_shards"):
        shards, _, _ = build_real(work, crop_size=size)
        return replace(spec, data=replace(d, real_shards=str(shards)))
    return spec


def run(args) -> int:
    """Start Ray, build the inputs, train (landmix.trainer.fit), print the test metrics and where the results went."""
    spec = spec_from_args(args)
    # Locally, leave logical CPUs for Ray Data's read tasks beside the training workers.
    settings.init_ray(num_cpus=int(spec.train.num_workers * spec.train.cpus_per_worker) + 2)
    t0 = time.perf_counter()
    spec = with_inputs(spec, {"real_shards": args.real_shards, "synthetic_shards": args.synthetic_shards})
    inputs_s = time.perf_counter() - t0
    out = args.out or str(settings.PROJECT_ROOT / "runs" / spec.train.name)
    t0 = time.perf_counter()
    result = fit(spec, out)
    keys = (
        "epoch",
        "best_epoch",
        "stop_reason",
        "val_nme",
        "test_nme",
        "test_nme_helen",
        "test_nme_afw",
        "test_fr@10",
        "test_auc@10",
    )
    print(json.dumps({k: result.metrics.get(k) for k in keys}))
    print(
        f"inputs ready in {inputs_s:.0f} s; trained in {time.perf_counter() - t0:.0f} s; checkpoint: "
        f"{Path(out, 'checkpoint')}; Ray Train run: {spec.train.storage_path}/{spec.train.name}; MLflow experiment "
        f"{spec.tracking.experiment!r} at {os.environ.get('MLFLOW_TRACKING_URI') or spec.tracking.uri or 'off'}"
    )
    return 0 if result.error is None else 1
