"""The label translator's gain on REAL faces: a synthetic-trained model's predictions before and after it.

    .venv/bin/python bench/translate_real.py --real-shards out/prepared/real-128/shards --sweep runs/landmix-study
    .venv/bin/python bench/translate_real.py --real-shards DIR --checkpoint CKPT [CKPT ...]

For each synthetic-only checkpoint (e.g. the study's once-per-seed pretraining): predict the 68 points on
the real 300-W faces of the fixed split (`landmix.mixing.real_split`, the held-out faces every training run
validates on), fit the ridge translator IBUG68 (as this model places the points) -> IBUG68 (as the 300-W
annotators did) on the TRAINING faces' predictions and human labels, and score the held-out faces before
and after translation. This is the translation layer the FaceSynthetics authors recommend, fitted on
real training faces only. Also reported: the same fit on 50 and 250 training faces (what a team with
that many labelled faces would get). Writes out/bench/translate_real.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from landmix import metrics, mixing, train, translate
from landmix.schemes import IBUG68

OUT = Path("out/bench")
JAW = slice(0, 17)


def real_pools(shards: str, size: int):
    rows = pq.read_table(train.shard_folder(shards)).to_batches(256)
    pool = train.read_pool([{k: b.column(k).to_pylist() for k in b.schema.names} for b in rows], size)
    train_ids, val_ids = mixing.real_split(pool.ids)
    return pool.take(train_ids), pool.take(val_ids)


def nme_pct(pred: np.ndarray, gt: np.ndarray, idx=slice(None)) -> float:
    err = np.linalg.norm(pred[:, idx] - gt[:, idx], axis=-1).mean(1) / metrics.interocular(gt, IBUG68)
    return round(float(err.mean() * 100), 2)


def one(checkpoint: str, shards: str) -> dict:
    model, meta = train.load_checkpoint(checkpoint)
    size = meta["config"]["model"]["image_size"]
    tr_pool, val_pool = real_pools(shards, size)
    pred_tr, pred_val = train.predict(model, tr_pool.images), train.predict(model, val_pool.images)
    row = {"checkpoint": checkpoint, "train_faces": len(tr_pool), "val_faces": len(val_pool),
           "before": {"all": nme_pct(pred_val, val_pool.pts), "jaw": nme_pct(pred_val, val_pool.pts, JAW),
                      "inner": nme_pct(pred_val, val_pool.pts, slice(17, 68))}}  # fmt: skip
    for n in (50, 250, len(tr_pool)):
        tr = translate.fit(pred_tr[:n], tr_pool.pts[:n], IBUG68, IBUG68)  # train ids come in the n_real order
        after = tr(pred_val)
        row[f"after_fit_on_{n}"] = {"all": nme_pct(after, val_pool.pts), "jaw": nme_pct(after, val_pool.pts, JAW),
                                    "inner": nme_pct(after, val_pool.pts, slice(17, 68)), "alpha": tr.alpha}  # fmt: skip
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--real-shards", required=True, help="prepared real 300-W shards (a landmix prepare folder)")
    p.add_argument("--checkpoint", nargs="*", default=[], help="synthetic-only training checkpoints")
    p.add_argument("--sweep", type=Path, help="a sweep folder: use its once-per-seed pretraining checkpoints")
    args = p.parse_args()
    checkpoints = list(args.checkpoint)
    if args.sweep:
        markers = sorted(args.sweep.glob("pretrain/*/pretrain.json"))
        checkpoints += [json.loads(m.read_text())["checkpoint"] for m in markers]
    if not checkpoints:
        p.error("give --checkpoint CKPT or --sweep DIR (a sweep folder with finished pretraining)")
    rows = [one(c, args.real_shards) for c in checkpoints]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "translate_real.json").write_text(json.dumps(rows, indent=1))
    for r in rows:
        print(json.dumps({k: v for k, v in r.items() if k != "checkpoint"}))
    keys = [k for k in rows[0] if k == "before" or k.startswith("after")]
    print("\nmedian NME % over checkpoints on the held-out real faces (all / jaw / inner):")
    for k in keys:
        print(f"  {k:>18}: " + " / ".join(f"{np.median([r[k][g] for r in rows]):.2f}" for g in ("all", "jaw", "inner")))


if __name__ == "__main__":
    main()
