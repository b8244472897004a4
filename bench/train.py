"""Training benchmarks: recipes compared at equal wall time on real faces, and the input pipeline's speed.

    .venv/bin/python bench/train.py recipes --budget 240 --variants heads     # each head, 4 min of training each
    .venv/bin/python bench/train.py recipes --budget 240 --variants backbones,workers
    .venv/bin/python bench/train.py recipes --budget 1080 --variants precision   # bf16 at 128, 160, 192 px, 18 min each
    .venv/bin/python bench/train.py table                    # the recipes table of docs/results/train.md
    .venv/bin/python bench/train.py pipeline --threads 2 [--channels-last] [--precision bf16] [--image-size 96]
                                                             # batches ready/s vs model steps/s vs both
    .venv/bin/python bench/train.py decode CHECKPOINT... [--radius 0,1,2]
                                                             # heatmap_offset decoding windows, same weights

`recipes` runs the real-baseline preset through `landmix.trainer.fit` (Ray Train, the same loop a user runs)
once per variant, each with the same `train.time_budget_s`, and records validation NME (97 faces, the one
selection signal), test NME on the 241 held-out faces (all, HELEN, AFW), epochs, minutes and samples/s of the
whole loop against the model step alone. Each run appends a record to docs/results/train/records.jsonl
(`--no-record`: none); `table` prints the recipes table of docs/results/train.md from those records. `pipeline` times, in one process with --threads torch threads,
(a) the input pipeline alone: sampling + augmentation + batching from decoded shards, (b) the model step
alone on ready tensors, (c) both together as train.py runs them. `decode` scores checkpoints of the
heatmap_offset head on the validation and test faces of their own shards with each decoding window (radius 0:
the best cell + its offset, PIPNet's; 1: the score-weighted votes of the 3 x 3 cells around it); a record per
checkpoint and radius.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

from landmix import records  # noqa: E402

# name -> section overrides of the real-baseline preset. The groups before "precision" were measured when the
# preset ran at 96 px in fp32; they pin that, so that their commands still reproduce their rows.
FP32 = {"train": {"precision": "fp32"}}
AT_96 = {"model": {"image_size": 96}, **FP32}


def _on(base: dict, **sections) -> dict:
    return {name: {**base.get(name, {}), **sections.get(name, {})} for name in {*base, *sections}}


VARIANTS = {
    "heads": {
        f"head={h}": _on(AT_96, model={"head": h})
        for h in ("soft_argmax", "flat_regression", "heatmap_offset", "simcc", "regression")
    },
    "backbones": {
        "backbone=mobilenet": _on(AT_96, model={"backbone": "mobilenet"}),
        "backbone=mobilenet, soft_argmax": _on(AT_96, model={"backbone": "mobilenet", "head": "soft_argmax"}),
        "backbone=small,width=48": _on(AT_96, model={"width": 48}),
    },
    "sizes": {
        "image_size=128": _on(FP32, model={"image_size": 128}),
        "crop_scale=2.0 (the old crop)": _on(AT_96, model={"crop_scale": 2.0}),
    },
    "workers": {
        "2 workers x 1 thread": _on(AT_96, train={"num_workers": 2, "cpus_per_worker": 1, "batch_size": 16})
    },
    "precision": {
        "precision=bf16": {"train": {"precision": "bf16"}, "model": {"image_size": 128}},
        "precision=bf16,image_size=160": {"train": {"precision": "bf16"}, "model": {"image_size": 160}},
        "precision=bf16,image_size=192": {"train": {"precision": "bf16"}, "model": {"image_size": 192}},
    },
    "averaging": {"train.ema_decay=0.998": {"train": {"ema_decay": 0.998}}},
    "final": {"preset": {}},
}


def recipes(args) -> None:
    import ray

    from landmix import config as C
    from landmix import presets, settings, train, trainer
    from landmix.inputs import build_real
    from landmix.models import DECODE_RADIUS

    ray.init(num_cpus=4, logging_level="WARNING")
    load = os.getloadavg()
    for group in args.variants.split(","):
        for name, over in VARIANTS[group].items():
            if args.only and name not in args.only.split(";"):
                continue
            for seed in (int(s) for s in args.seeds.split(",")):
                sections = {k: dict(v) for k, v in over.items()}
                sections.setdefault("train", {}).update(
                    {
                        "time_budget_s": args.budget,
                        "seed": seed,
                        "name": f"bench-recipe-{group}-{int(time.time())}",
                    }
                )
                sections["tracking"] = {"uri": "none"}
                spec = presets.preset("real-baseline", **sections)
                shards, _, _ = build_real(settings.PROJECT_ROOT / "out", crop_size=C.shard_size(spec.model))
                spec = presets.preset("real-baseline", data={"real_shards": str(shards)}, **sections)
                rec = records.new_record(
                    "train",
                    "recipe",
                    {
                        "group": group,
                        "variant": name,
                        "seed": seed,
                        "budget_s": args.budget,
                        "overrides": sections,
                    },
                )
                t0 = time.perf_counter()
                m = trainer.fit(spec).metrics
                row = {
                    "group": group,
                    "variant": name,
                    "seed": seed,
                    "budget_s": args.budget,
                    "head": spec.model.head,
                    "backbone": spec.model.backbone,
                    "width": spec.model.width,
                    "image_size": spec.model.image_size,
                    "crop_scale": spec.model.crop_scale,
                    "workers": spec.train.num_workers,
                    "precision": train.training_precision(spec.train),
                    "decode_radius": DECODE_RADIUS if spec.model.head == "heatmap_offset" else None,
                    "decoding": "-"
                    if spec.model.head != "heatmap_offset"
                    else "best cell"
                    if DECODE_RADIUS == 0
                    else f"{2 * DECODE_RADIUS + 1}x{2 * DECODE_RADIUS + 1} votes",
                    "epochs": m["epoch"] + 1,
                    "best_epoch": m["best_epoch"],
                    "stop_reason": m["stop_reason"],
                    "val_nme": m["val_nme"],
                    "test_nme": m["test_nme"],
                    "test_nme_helen": m.get("test_nme_helen"),
                    "test_nme_afw": m.get("test_nme_afw"),
                    "test_fr@10": m["test_fr@10"],
                    "wall_s": time.perf_counter() - t0,
                    "samples_per_s": m["samples_per_s"],
                    "step_samples_per_s": m["step_samples_per_s"],
                    "mean_samples_per_s": (m["epoch"] + 1) * spec.data.samples_per_epoch / m["train_s"],
                    "load_before": load,
                    "load_after": os.getloadavg(),
                }
                print(json.dumps(row), flush=True)
                keep(args, rec | {"metrics": row})
                load = os.getloadavg()


def keep(args, rec: dict) -> None:
    """Append a run's record to the training page's records, unless --no-record."""
    if not args.no_record:
        print(f"-> {records.write_record(rec)}", flush=True)


def table(args) -> None:
    """The recipes table of docs/results/train.md from the page's `recipe` records (the latest run of each
    variant and seed; runs of several seeds shown as their median)."""
    rows = {}
    for rec in records.read_records("train"):
        if rec["experiment"] != "recipe" or rec.get("imported_from"):
            continue
        r = rec["metrics"]
        rows[(r["group"], r["variant"], r["budget_s"], r["seed"])] = r
    runs: dict[tuple, list[dict]] = {}
    for (group, variant, budget, _), r in rows.items():
        runs.setdefault((group, variant, budget), []).append(r)
    print(
        "| recipe | head | decoding | backbone | px | crop | precision | workers | budget | epochs | val NME "
        "| test NME | HELEN | AFW | FR@10 | samples/s | runs |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (_, variant, budget), rs in runs.items():

        def med(key, rs=rs):
            return statistics.median(r[key] for r in rs)

        def rate(rs):  # the whole run's mean (epochs / training seconds), where recorded
            got = [r["mean_samples_per_s"] for r in rs if "mean_samples_per_s" in r]
            return (
                f"{statistics.median(got):.0f}"
                if got
                else f"{statistics.median(r['samples_per_s'] for r in rs):.0f}*"
            )

        r = rs[0]
        backbone = r["backbone"] + (f" w{r['width']}" if r["backbone"] != "resnet50" else "")
        # rows before the decoding window was recorded (commit 190f804) read the best cell + its offset
        window = 2 * (r.get("decode_radius") or 0) + 1  # None: a head without cells
        decoding = (
            "-"
            if r["head"] != "heatmap_offset"
            else "best cell"
            if window == 1
            else f"{window}x{window} votes"
        )
        print(
            f"| {variant} | {r['head']} | {decoding} | {backbone} | {r['image_size']} | {r['crop_scale']:g} "
            f"| {r.get('precision', 'fp32')} | {r['workers']} "
            f"| {budget / 60:.0f} min | {med('epochs'):.0f} | {100 * med('val_nme'):.2f} % "
            f"| {100 * med('test_nme'):.2f} % | {100 * med('test_nme_helen'):.2f} % | {100 * med('test_nme_afw'):.2f} % "
            f"| {100 * med('test_fr@10'):.1f} % | {rate(rs)} "
            f"| {len(rs)} |"
        )


def pipeline(args) -> None:
    import numpy as np
    import pyarrow.parquet as pq
    import torch

    from landmix import crops, mixing, presets
    from landmix.augment import make_augmenter
    from landmix.losses import landmark_loss
    from landmix.models import create_model
    from landmix.pool import batches, read_pool, shard_folder

    torch.set_num_threads(args.threads)
    spec = presets.real_baseline()
    if args.image_size:
        spec = presets.preset("real-baseline", model={"image_size": args.image_size})
    m, d, t = spec.model, spec.data, spec.train
    folder = shard_folder(args.real or presets.real_shards(m))
    table_batches = [b.to_pydict() for b in pq.read_table(folder).to_batches(256)]
    t0 = time.perf_counter()
    pool = read_pool([{k: np.asarray(v, dtype=object) for k, v in b.items()} for b in table_batches], m)
    decode_s = time.perf_counter() - t0
    steps = args.steps
    plan = mixing.epoch_batches(len(pool), 0, 0.0, t.batch_size, steps, seed=0)
    empty = pool.take([])
    augment = make_augmenter(
        d.augment_strength, crops.context_size(m.image_size), seed=0, out_size=m.image_size
    )

    def rate(fn, n):
        t0 = time.perf_counter()
        fn()
        return n / (time.perf_counter() - t0)

    ready = [rate(lambda: sum(1 for _ in batches((pool, empty), plan, augment)), steps) for _ in range(3)]
    model = create_model(m)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = next(iter(batches((pool, empty), plan[:1], augment)))

    def step(x, y):
        x = x.contiguous(memory_format=torch.channels_last if args.channels_last else torch.contiguous_format)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = landmark_loss(model(x), y, m.head, m.image_size)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(x, y)
    model_only = [rate(lambda: [step(x, y) for _ in range(steps)], steps) for _ in range(3)]
    both = [
        rate(lambda: [step(a, b) for a, b in batches((pool, empty), plan, augment)], steps) for _ in range(3)
    ]
    rec = records.new_record(
        "train",
        "pipeline",
        {
            "threads": args.threads,
            "channels_last": args.channels_last,
            "precision": args.precision,
            "steps": args.steps,
        },
    )
    res = {
        "threads": args.threads,
        "channels_last": args.channels_last,
        "precision": args.precision,
        "head": m.head,
        "backbone": m.backbone,
        "faces": len(pool),
        "decode_s": decode_s,
        "batch_size": t.batch_size,
        "image_size": m.image_size,
        "augment_strength": d.augment_strength,
        "steps": steps,
        "batches_ready_per_s": statistics.median(ready),
        "model_steps_per_s": statistics.median(model_only),
        "train_steps_per_s": statistics.median(both),
    }
    res["ready_over_steps"] = res["batches_ready_per_s"] / res["model_steps_per_s"]
    for kind in ("ready", "model", "train"):  # the page's table gives samples/s too
        steps_key = "batches_ready_per_s" if kind == "ready" else f"{kind}_steps_per_s"
        res[f"{kind}_samples_per_s"] = res[steps_key] * res["batch_size"]
    print(json.dumps(res), flush=True)
    keep(args, rec | {"metrics": res})


def decode(args) -> None:
    from landmix import checkpoint as ckpt_io
    from landmix.pool import read_shards
    from landmix.sources.split import real_split
    from landmix.train import score

    print("| checkpoint | px | radius | val NME | test NME | HELEN | AFW |\n|---|---|---|---|---|---|---|")
    for folder in args.checkpoints:
        model, meta = ckpt_io.load(folder)
        m, d = ckpt_io.model_config(meta), ckpt_io.data_config(meta)
        if m.head != "heatmap_offset":
            raise SystemExit(f"{folder}: head {m.head!r}; decoding windows are a heatmap_offset matter")
        pool = read_shards(d.real_shards, m)
        split = real_split(pool.ids, d)
        val, test = pool.take(split.val), pool.take(split.test)
        for radius in (int(r) for r in args.radius.split(",")):
            model.decode_radius = radius
            rec = records.new_record(
                "train", "decode", {"checkpoint": str(Path(folder).resolve()), "radius": radius}
            )
            v, t = score(model, val, m.image_size), score(model, test, m.image_size)
            res = {
                "checkpoint": str(Path(folder).resolve()),
                "image_size": m.image_size,
                "radius": radius,
                "val_nme": 100 * v["nme"],
                "test_nme": 100 * t["nme"],
                **{f"test_{s}_nme": 100 * t["per_subset"][s]["nme"] for s in ("helen", "afw")},
            }
            keep(args, rec | {"metrics": res})
            print(
                f"| {folder} | {m.image_size} | {radius} | {res['val_nme']:.2f} % | {res['test_nme']:.2f} % "
                f"| {res['test_helen_nme']:.2f} % | {res['test_afw_nme']:.2f} % |",
                flush=True,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-record", action="store_true", help="print the figures only; write no record")
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("recipes")
    h.add_argument("--variants", default="heads", help=f"comma-separated groups of {sorted(VARIANTS)}")
    h.add_argument(
        "--budget", type=float, default=240, help="seconds of training per run (train.time_budget_s)"
    )
    h.add_argument("--seeds", default="0")
    h.add_argument("--only", default="", help="run only these variants of the groups (names joined by ';')")
    q = sub.add_parser("pipeline")
    q.add_argument("--steps", type=int, default=20)
    q.add_argument("--real", default="")
    q.add_argument("--threads", type=int, default=1, help="torch threads")
    q.add_argument("--channels-last", action="store_true", help="model and inputs in channels_last")
    q.add_argument(
        "--precision", choices=("fp32", "bf16"), default="fp32", help="the model step's arithmetic"
    )
    q.add_argument("--image-size", type=int, default=0, help="model input side (default: the preset's)")
    sub.add_parser("table")
    r = sub.add_parser("decode")
    r.add_argument(
        "checkpoints", nargs="+", help="checkpoint folders (`landmix train --out DIR`: DIR/checkpoint)"
    )
    r.add_argument("--radius", default="0,1,2", help="comma-separated decoding windows' radii, in cells")
    args = p.parse_args()
    {"recipes": recipes, "pipeline": pipeline, "table": table, "decode": decode}[args.cmd](args)


if __name__ == "__main__":
    main()
