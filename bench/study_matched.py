"""The study's control arm: real-only training given the same compute as pretraining + fine-tuning.

    .venv/bin/python bench/study_matched.py --n-real 50 -1 --seeds 0 1     # after jobs/tune_mix.py --preset study

In the study grid every trial trains `epochs` x `samples_per_epoch`, and a `pretrain_finetune` trial starts
from a synthetic pretraining of `pretrain_epochs` more: more compute. This runs `real_only` cells of the
study with epochs = epochs + pretrain_epochs (the same number of optimiser steps as pretraining plus
fine-tuning), reading the study's prepared real shards, and prints the held-out real NME of each. Results
go to out/bench/study_matched.json (quoted in docs/results/study.md).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

from landmix import settings, sweep, train  # noqa: E402

OUT = Path("out/bench")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-real", type=int, nargs="+", default=[50, -1])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--real-shards", default=str(settings.work_dir() / "prepared" / "real-128" / "shards"))
    p.add_argument("--storage", default=str(settings.PROJECT_ROOT / "runs"))
    args = p.parse_args()
    settings.init_ray(num_cpus=4)
    study = sweep.study(real_shards=args.real_shards, synthetic_shards="unused", storage_path=args.storage)
    study = replace(study, name="landmix-study-matched")
    epochs = study.base.train.epochs + study.pretrain_epochs
    rows = []
    for seed in args.seeds:
        for n in args.n_real:
            cell = sweep.Cell("real_only", n_real=n, seed=seed)
            name = f"{cell.name}-e{epochs}"
            spec = sweep.search.trial_spec(study, cell, {}, "", "none", name)
            spec = replace(spec, train=replace(spec.train, epochs=epochs))
            t0 = time.monotonic()
            result = train.fit(spec)
            rows.append({**asdict(cell), "epochs": epochs, "nme": result.metrics["val_nme"],
                         "seconds": time.monotonic() - t0})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "study_matched.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
