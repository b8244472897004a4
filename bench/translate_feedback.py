"""The real-fitted label translator fed back into the synthetic labels: does re-labelling help on real faces?

    .venv/bin/python bench/translate_feedback.py --faces 50 -1 --seeds 0 1      # ~1 h on 2 cores

With the study's settings (docs/results/study.md: 4,000 generated faces + the 100 FaceSynthetics renders,
128 px, pretraining 12 epochs x 512, fine-tuning on 50 real faces), on the held-out real 300-W faces:
  baseline  synthetic labels translated by the generator-fitted translator (the default);
  offset N  the same, then the translator's real-face stage fitted on N real training faces
            (`sweep.fit_real_translator`: a synthetic model's predictions -> human labels, as a per-point
            offset), chained, the synthetic shards re-prepared with the chain, pretraining and fine-tuning
            run again; `--full-ridge`: the full ridge map instead (arms ridge N; out/bench/translate_feedback_ridge.json).
For each: the synthetic-only pretraining's held-out NME and the NME after fine-tuning on 50 real faces,
per seed, plus the post-hoc translation of the round-1 model's predictions (the fit report). Runs through
the sweep code (`sweep.run_sweep`, tracked in MLflow as experiments landmix-feedback*). Writes
out/bench/translate_feedback.json.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402

from landmix import settings, sweep  # noqa: E402
from landmix.inputs import Inputs, build_inputs  # noqa: E402

OUT = Path("out/bench")


def arm(sw: sweep.SweepConfig) -> dict:
    out = sweep.run_sweep(sw)
    trials = out["trials"]
    pre = {s: json.loads(next((sw.root / "pretrain").glob(f"pretrain-s{s}-*/pretrain.json")).read_text())
           for s in sw.seeds}  # fmt: skip
    return {"translator": sw.translator,
            "synthetic_only": {s: pre[s].get("val_nme") for s in sw.seeds},
            "finetuned_50": {int(r.seed): float(r.nme) for r in trials.itertuples()}}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--faces", type=int, nargs="+", default=[50, -1], help="real faces of the translator fit")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--full-ridge", action="store_true", help="feed back the full ridge map, not the per-point offset")
    p.add_argument("--synthetic", default=str(settings.data_root() / "facesynthetics_100"))
    args = p.parse_args()
    settings.default_tracking_uri()
    settings.init_ray(num_cpus=4)
    build = dict(work=settings.work_dir(), synthetic_roots=[Path(args.synthetic)], n_generated=4000, crop_size=128)
    inputs = build_inputs(**build)

    def study_sweep(inputs: Inputs, **kw) -> sweep.SweepConfig:
        sw = sweep.study(real_shards=str(inputs.real_shards), synthetic_shards=str(inputs.synthetic_shards))
        return replace(sw, strategies=("pretrain_finetune",), n_real=(50,), seeds=tuple(args.seeds),
                       translator=str(inputs.translator), **kw)  # fmt: skip

    base = study_sweep(inputs, name="landmix-feedback")
    rows = {"baseline": arm(base)}
    for n in args.faces:
        path = sweep.fit_real_translator(base, n, offset_only=not args.full_ridge)
        relabelled = build_inputs(**build, translator=str(path))
        arm_name = f"{'ridge' if args.full_ridge else 'offset'}{n}"
        sw = study_sweep(relabelled, name=f"landmix-feedback-{arm_name}", translator_real_faces=n)
        rows[arm_name] = arm(sw) | {"fit_report": json.loads(path.with_suffix(".json").read_text())}
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"translate_feedback{'_ridge' if args.full_ridge else ''}.json").write_text(json.dumps(rows, indent=1))
    print("\nheld-out real NME %, median over seeds (synthetic-only pretraining / after fine-tuning on 50 real):")
    for name, r in rows.items():
        per_seed = {k: [round(100 * v, 2) for v in r[k].values()] for k in ("synthetic_only", "finetuned_50")}
        print(f"  {name:>10}: {100 * np.median(list(r['synthetic_only'].values())):.2f} / "
              f"{100 * np.median(list(r['finetuned_50'].values())):.2f}   per seed {per_seed}")


if __name__ == "__main__":
    main()
