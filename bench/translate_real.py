"""The label translator's gain on REAL faces: a synthetic-trained model's predictions before and after it.

    .venv/bin/python bench/translate_real.py --real-shards out/prepared/real-128/shards --sweep runs/landmix-study
    .venv/bin/python bench/translate_real.py --real-shards DIR --checkpoint CKPT [CKPT ...]

For each synthetic-only checkpoint (e.g. the study's once-per-seed pretraining): predict the 68 points on
the real 300-W faces of the fixed split (`landmix.mixing.real_split`, the held-out faces every training run
validates on), fit the ridge translator IBUG68 (as this model places the points) -> IBUG68 (as the 300-W
annotators did) on the TRAINING faces' predictions and human labels, and score the held-out faces before
and after translation. This is the translation layer the FaceSynthetics authors recommend, fitted on
real training faces only. Also reported: the same fit on 50 and 250 training faces (what a team with
that many labelled faces would get), and the per-point offset alone (what re-labelling synthetic faces
uses, docs/results/prepare.md), with how far each moves the held-out human labels. Writes
out/bench/translate_real.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from landmix import checkpoint as ckpt_io
from landmix.config import ALL_REAL

OUT = Path("out/bench")


def one(checkpoint: str, shards: str) -> dict:
    """`checkpoint.fit_translator` on 50, 250 and all training faces, scored on the held-out faces: the full ridge
    map (for predictions) and the per-point offset (what re-labelling synthetic faces uses)."""
    row = {"checkpoint": checkpoint}
    for n in (50, 250, ALL_REAL):
        for offset_only, kind in ((False, "ridge"), (True, "offset")):
            _, report = ckpt_io.fit_translator(checkpoint, shards, n, offset_only=offset_only)
            row |= {"val_faces": report["held_out_faces"], "before": report["held_out_nme_before"],
                    f"{kind}_fit_on_{report['fit_faces']}": report["held_out_nme_after"] | {
                        "alpha": report["alpha"], "human_labels_moved": report["human_labels_moved"]["all"]}}  # fmt: skip
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
    keys = [k for k in rows[0] if k == "before" or "_fit_on_" in k]
    print("\nmedian NME % over checkpoints on the held-out real faces (all / jaw / inner):")
    for k in keys:
        moved = f"   moves human labels {np.median([r[k]['human_labels_moved'] for r in rows]):.2f}" if k != "before" else ""
        print(f"  {k:>18}: " + " / ".join(f"{np.median([r[k][g] for r in rows]):.2f}" for g in ("all", "jaw", "inner"))
              + moved)


if __name__ == "__main__":
    main()
