"""Training benchmarks: head choice on real validation faces, and whether the input pipeline keeps up.

    .venv/bin/python bench/train.py heads --epochs 12        # each head, same budget, real-baseline data
    .venv/bin/python bench/train.py pipeline                 # batches ready/s vs steps/s, one worker's view

`heads` runs the real-baseline preset (2 Ray Train workers) once per head and prints validation NME,
FR@10, AUC@10 and wall time per head. `pipeline` times, in one process with one torch thread (what a
worker gets on this 2-core machine), (a) the input pipeline alone: sampling + augmentation + batching
from decoded shards, (b) the model step alone on ready tensors, (c) both together as train.py runs them.
Results are written as JSON under out/bench/ and quoted in docs/results/train.md.
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

OUT = Path("out/bench")


def heads(args) -> None:
    import ray

    from landmix import config as C
    from landmix import train

    ray.init(num_cpus=4, logging_level="WARNING")
    rows = {}
    for head in args.heads.split(","):
        spec = C.preset("real-baseline", model={"head": head},
                        data={"samples_per_epoch": args.samples} | ({"real_shards": args.real} if args.real else {}),
                        train={"epochs": args.epochs, "name": f"bench-head-{head}-{int(time.time())}",
                               "tracking_uri": "none"})  # fmt: skip
        t0 = time.perf_counter()
        result = train.fit(spec)
        wall = time.perf_counter() - t0
        m = result.metrics
        rows[head] = {"val_nme": m["val_nme"], "val_fr@10": m["val_fr@10"], "val_auc@10": m["val_auc@10"],
                      "wall_s": wall, "samples_per_s_last_epoch": m["samples_per_s"]}
        print(head, json.dumps(rows[head]), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "heads.json").write_text(json.dumps({"epochs": args.epochs, "samples_per_epoch": args.samples,
                                                "rows": rows}, indent=1))


def pipeline(args) -> None:
    import numpy as np
    import pyarrow.parquet as pq
    import torch

    from landmix import config as C
    from landmix import mixing
    from landmix.losses import landmark_loss
    from landmix.models import create_model
    from landmix.train import batches, make_augmenter, read_pool

    torch.set_num_threads(1)
    spec = C.real_baseline()
    m, d, t = spec.model, spec.data, spec.train
    folder = args.real or d.real_shards
    table_batches = [b.to_pydict() for b in pq.read_table(folder).to_batches(256)]
    t0 = time.perf_counter()
    pool = read_pool([{k: np.asarray(v, dtype=object) for k, v in b.items()} for b in table_batches], m.image_size)
    decode_s = time.perf_counter() - t0
    steps = args.steps
    plan = mixing.epoch_batches(len(pool), 0, 0.0, t.batch_size, steps, seed=0)
    empty = pool.take([])
    augment = make_augmenter(d.augment_strength, m.image_size, seed=0)

    def rate(fn, n):
        t0 = time.perf_counter()
        fn()
        return n / (time.perf_counter() - t0)

    ready = [rate(lambda: sum(1 for _ in batches((pool, empty), plan, augment)), steps) for _ in range(3)]
    model = create_model(m)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = next(iter(batches((pool, empty), plan[:1], augment)))

    def step(x, y):
        loss = landmark_loss(model(x), y, m.head, m.image_size)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(x, y)
    model_only = [rate(lambda: [step(x, y) for _ in range(steps)], steps) for _ in range(3)]
    both = [rate(lambda: [step(a, b) for a, b in batches((pool, empty), plan, augment)], steps) for _ in range(3)]
    res = {
        "faces": len(pool), "decode_s": decode_s, "batch_size": t.batch_size, "image_size": m.image_size,
        "augment_strength": d.augment_strength, "steps": steps,
        "batches_ready_per_s": statistics.median(ready), "model_steps_per_s": statistics.median(model_only),
        "train_steps_per_s": statistics.median(both),
    }
    res["ready_over_steps"] = res["batches_ready_per_s"] / res["model_steps_per_s"]
    print(json.dumps(res, indent=1))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "pipeline.json").write_text(json.dumps(res, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("heads")
    h.add_argument("--heads", default="regression,heatmap,soft_argmax")
    h.add_argument("--epochs", type=int, default=12)
    h.add_argument("--samples", type=int, default=1024)
    h.add_argument("--real", default="", help="real shard folder (default: the preset's out/shards/300w)")
    q = sub.add_parser("pipeline")
    q.add_argument("--steps", type=int, default=20)
    q.add_argument("--real", default="")
    args = p.parse_args()
    {"heads": heads, "pipeline": pipeline}[args.cmd](args)


if __name__ == "__main__":
    main()
