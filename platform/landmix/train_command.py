"""`landmix train`: train a landmark detector from a preset, building its inputs on first use.

    landmix train --preset smoke --out out/smoke                  # seconds, 2 CPU workers (gloo)
    landmix train --preset real-baseline --out out/real           # 20 min on 2 cores, real 300-W faces only
    landmix train --preset synthetic                              # the synthetic pretraining, built once
    landmix train --preset pretrained --out out/pretrained        # real-baseline fine-tuned from it
    landmix train --preset real-baseline --init models:/landmix-synthetic@best   # any preset from any start
    landmix train --preset pretrained --smoke-test                # any preset's path at the smoke size
    RAY_ADDRESS=auto landmix train --preset gpu --out /mnt/shared/gpu   # on a GPU cluster (NCCL, bf16)

A preset builds its own inputs from the shared data the first time (`landmix.inputs`: ingest + prepare, and
generated faces for the presets that mix; cached under out/); --real-shards / --synthetic-shards point at
`landmix prepare` folders instead. The training itself is landmix.train (`fit`), which imports neither the
inputs nor the generator; jobs/train.py runs this same command as a Ray job.

`--preset synthetic` builds the platform's synthetic pretraining (`landmix.pretraining`: generated faces, the
re-labelling rounds, the synthetic-only model; each run cached, an interrupted one resumed) and registers it
as `landmix-synthetic@best` where tracking is on. `--preset pretrained` builds (or finds) it first, reports its
minutes apart, and fine-tunes the real-baseline recipe from it. `--init` starts any preset from a checkpoint
folder or a registered `models:/NAME@ALIAS` (downloaded under <work>/init/), refused in one line before any
training when its network is not the preset's (another backbone, head, width or number of points).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from ray.train import TrainingFailedError

from landmix import config as C
from landmix import presets, pretraining, registry, settings
from landmix.inputs import build_inputs, build_real
from landmix.trainer import fit, local_cpus


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
    parser.add_argument(
        "--name",
        default="",
        help="the run's name (Ray Train's and MLflow's); default <preset>-<date>-<time>, a new run each time. "
        "The same --name again resumes a run that was stopped (SIGTERM, a lost machine) from its last epoch",
    )
    parser.add_argument(
        "--real-root",
        default="",
        help="the real faces, a 300-W-layout folder (default: $LANDMIX_DATA_ROOT/300w, the shared ones)",
    )
    parser.add_argument(
        "--init",
        default="",
        help="start from these weights: a checkpoint folder (OUT/checkpoint) or models:/NAME@ALIAS of the "
        "registry (MLFLOW_TRACKING_URI); --preset pretrained defaults to the synthetic pretraining",
    )
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="the preset's whole path at the smoke preset's size (seconds to minutes): for CI and a first try",
    )
    parser.add_argument(
        "--generated",
        type=int,
        default=-1,
        help=f"synthetic pretraining: generated faces (default {pretraining.Recipe.n_generated})",
    )
    parser.add_argument(
        "--renders", nargs="*", default=[], help="synthetic pretraining: FaceSynthetics folders to add"
    )
    parser.add_argument(
        "--relabel-rounds",
        type=int,
        default=-1,
        help=f"synthetic pretraining: re-labelling rounds (default {pretraining.Recipe.relabel_rounds})",
    )


def spec_from_args(args) -> C.RunSpec:
    """The preset with the flags' overrides, named `<preset>-<date>-<time>` (a new Ray Train run each time)."""
    data = {
        k: v for k, v in (("real_shards", args.real_shards), ("synthetic_shards", args.synthetic_shards)) if v
    }
    train = {"name": getattr(args, "name", "") or f"{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"}
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
    spec = presets.preset(args.preset, model=model, data=data, train=train)
    return presets.smoke_sized(spec) if getattr(args, "smoke_test", False) else spec


SMOKE_RECIPE = {"n_generated": 48, "relabel_rounds": 1}  # --smoke-test's pretraining: seconds of faces


def recipe_from_args(args) -> pretraining.Recipe:
    """The synthetic pretraining `--preset synthetic` builds and `--preset pretrained` starts from."""
    spec = presets.synthetic()
    if args.smoke_test:
        spec = presets.smoke_sized(spec)
    if args.seed != -1 and args.preset == "synthetic":
        spec = replace(spec, train=replace(spec.train, seed=args.seed))
    fields = dict(SMOKE_RECIPE) if args.smoke_test else {}
    fields |= {
        k: v for k, v in (("n_generated", args.generated), ("relabel_rounds", args.relabel_rounds)) if v != -1
    }
    return pretraining.Recipe(
        spec=pinned_tracking(spec), renders=tuple(args.renders), real_root=args.real_root, **fields
    )


def pinned_tracking(spec: C.RunSpec) -> C.RunSpec:
    """The spec with its MLflow URI resolved here, in the driver ($MLFLOW_TRACKING_URI where the preset names
    none; "none" = off), so Ray's workers track where this command was told to, whatever their environment."""
    from landmix import tracking

    return replace(
        spec, tracking=replace(spec.tracking, uri=tracking.resolve_uri(spec.tracking.uri) or "none")
    )


def with_init(spec: C.RunSpec, source: str) -> C.RunSpec:
    """The spec starting from `source` (a checkpoint folder or models:/NAME@ALIAS, downloaded under
    <work>/init/), refused here, in one line, where its network is not the one the spec builds."""
    import torch

    from landmix import checkpoint
    from landmix.models import create_model

    if source.startswith(registry.REGISTRY_PREFIX):
        name = source.removeprefix(registry.REGISTRY_PREFIX).replace("/", "-").replace("@", "-")
        folder = registry.checkpoint_folder(source, settings.work_dir() / "init" / name)
    else:
        folder = registry.checkpoint_folder(source, None)
    given = checkpoint.model_config(checkpoint.read_meta(folder))
    state = torch.load(Path(folder, checkpoint.MODEL_FILE), map_location="cpu", weights_only=True)["model"]
    try:
        create_model(spec.model).load_state_dict(state)
    except RuntimeError:
        keys = ("backbone", "width", "head", "num_points")
        theirs = ", ".join(f"{k} {getattr(given, k)}" for k in keys)
        ours = ", ".join(f"{k} {getattr(spec.model, k)}" for k in keys)
        raise ValueError(
            f"--init {source}: its network ({theirs}) is not the one this run builds ({ours}); start from a "
            f"checkpoint of the same network, or choose the preset/--backbone/--head that matches it"
        ) from None
    return replace(spec, train=replace(spec.train, init_checkpoint=str(Path(folder).resolve())))


def with_inputs(spec: C.RunSpec, given: dict, real_root: str = "") -> C.RunSpec:
    """The spec with its inputs built (once, cached under out/) where the user named no shard folder;
    real_root: the real faces' folder ("" = the shared 300-W faces)."""
    d, work, size = spec.data, settings.work_dir(), C.shard_size(spec.model)
    root = Path(real_root) if real_root else None
    if d.synthetic_shards and not given.get("synthetic_shards"):
        inputs = build_inputs(work, real_root=root, crop_size=size)
        real = d.real_shards if given.get("real_shards") else str(inputs.real_shards)
        return replace(spec, data=replace(d, real_shards=real, synthetic_shards=str(inputs.synthetic_shards)))
    if d.real_shards and not given.get("real_shards"):
        shards, _, _ = build_real(work, real_root=root, crop_size=size)
        return replace(spec, data=replace(d, real_shards=str(shards)))
    return spec


def run(args) -> int:
    """Start Ray, build the inputs, train (landmix.trainer.fit), print the test metrics and where the results went."""
    spec = pinned_tracking(spec_from_args(args))
    if args.init and args.preset == "synthetic":
        raise ValueError(
            "--init: the synthetic pretraining starts from random weights (its runs are keyed by their "
            "config); start another preset from it, e.g. --preset real-baseline --init models:/landmix-synthetic@best"
        )
    if args.init:  # a wrong path, registry name or network said before Ray starts
        spec = with_init(spec, args.init)
    settings.init_ray(num_cpus=local_cpus(spec))
    if args.preset == "synthetic":
        return run_pretraining(args)
    pretrain_note = ""
    if args.preset == "pretrained" and not args.init:
        info = pretraining.build(recipe_from_args(args))
        spec = with_init(spec, info["checkpoint"])
        pretrain_note = f"synthetic pretraining {info['checkpoint']} ready in {info['minutes']:.1f} min; "
    t0 = time.perf_counter()
    given = {"real_shards": args.real_shards, "synthetic_shards": args.synthetic_shards}
    spec = with_inputs(spec, given, args.real_root)
    inputs_s = time.perf_counter() - t0
    out = args.out or str(settings.PROJECT_ROOT / "runs" / spec.train.name)
    t0 = time.perf_counter()
    try:
        result = fit(spec, out)
    except TrainingFailedError as e:  # said in one line: the worker's own error, the last line of its snippet
        why = [line.strip() for line in str(e).splitlines() if line.strip()]
        print(f"landmix train: run {spec.train.name} failed: {why[-1] if why else e}", file=sys.stderr)
        return 1
    keys = (
        "resumed_from_epoch",
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
    if "resumed_from_epoch" in result.metrics:
        print(
            f"run {spec.train.name} resumed from its epoch-{result.metrics['resumed_from_epoch']} checkpoint"
        )
    print(json.dumps({k: result.metrics[k] for k in keys if k in result.metrics}))
    print(
        f"{pretrain_note}inputs ready in {inputs_s:.0f} s; trained in {time.perf_counter() - t0:.0f} s; checkpoint: "
        f"{Path(out, 'checkpoint')}; Ray Train run: {spec.train.storage_path}/{spec.train.name}; MLflow experiment "
        f"{spec.tracking.experiment!r} at {os.environ.get('MLFLOW_TRACKING_URI') or spec.tracking.uri or 'off'}"
    )
    return 0


def run_pretraining(args) -> int:
    """`--preset synthetic`: build (or find) the pretraining, copy its checkpoint to --out, say what it is."""
    import shutil

    info = pretraining.build(recipe_from_args(args))
    final = info["runs"][-1]
    if args.out:
        shutil.copytree(info["checkpoint"], Path(args.out, "checkpoint"), dirs_exist_ok=True)
    m = final["metrics"]
    print(json.dumps({k: m.get(k) for k in ("epoch", "best_epoch", "val_nme", "test_nme", "test_nme_helen")}))
    registered = info["registered"]
    print(
        f"synthetic pretraining ready in {info['minutes']:.1f} min ({len(info['runs'])} runs, "
        f"{sum(r['reused'] for r in info['runs'])} reused): {info['checkpoint']}; "
        + (
            f"registered as models:/{registered['name']}@best (version {registered['version']})"
            if registered
            else "not registered (tracking is off: set MLFLOW_TRACKING_URI)"
        )
    )
    return 0
