"""Train a landmark detector with Ray Train from a preset (landmix.train, presets in landmix.presets).

Locally (starts a local Ray; MLflow where $MLFLOW_TRACKING_URI points, e.g. sqlite:////abs/out/mlflow.db):

    python jobs/train.py --smoke-test                                   # 2 epochs, tiny model, 2 CPU workers
    python jobs/train.py --preset pretrained --smoke-test               # any preset's path at that size
    python jobs/train.py --preset real-baseline --out out/real-baseline # 19 min of training on 2 cores
    landmix eval --checkpoint out/real-baseline/checkpoint --data ../shared/data/300w --json out/eval.json
    landmix predict --checkpoint out/real-baseline/checkpoint my_photos/ --out out/predict

The first run of a preset builds its inputs from the shared data (ingest + prepare of the 300-W faces, and
generated faces for the presets that mix; cached under out/); --real-shards / --synthetic-shards point at
`landmix prepare` folders instead. The run ends when validation NME stops improving (train.patience), when
its compute budget is spent (train.time_budget_s) or after train.epochs; it prints the test faces' NME.

On a cluster (shards and --out on storage every node sees; MLflow on a server):

    ray job submit --address http://HEAD:8265 --working-dir . \
        --runtime-env-json '{"excludes": [".venv", ".git", "runs", "out", "data"],
                             "env_vars": {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}}' \
        -- python jobs/train.py --preset gpu --real-shards /mnt/data/prepared/real-416 \
           --synthetic-shards /mnt/data/prepared/synthetic-416 --out /mnt/runs/gpu
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # Ray 2.59+ default is token auth; set it explicitly
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from landmix import train_command  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    train_command.add_arguments(parser)  # --smoke-test: the preset (default: smoke) at the smoke size
    return train_command.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
