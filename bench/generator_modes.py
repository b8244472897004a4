"""Which synthetic source helps real faces more: procedural faces, re-composed FaceSynthetics renders, or both.

    .venv/bin/python bench/generator_modes.py --n 2000 --seed 0       # ~25 min on 2 cores

For each source (the same count of faces, 160 px, labels translated by the same translator, fitted on the
procedural generator's paired conventions): a synthetic-only pretraining with the study's settings
(`landmix.sweep.study`: 12 epochs x 512 samples, 128 px), then fine-tuning on 50 real faces (6 x 512). Both
are scored on the study's held-out real 300-W faces. Writes out/bench/generator_modes.json (quoted in
docs/results/generate.md). "both" takes half of each source.
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

from landmix import checkpoint, settings, sweep, train  # noqa: E402
from landmix.generate import job  # noqa: E402
from landmix.inputs import build_inputs  # noqa: E402

OUT = Path("out/bench")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="synthetic faces per source")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=settings.work_dir() / "generator_modes")
    p.add_argument("--storage", default=str(settings.PROJECT_ROOT / "runs"))
    args = p.parse_args()
    settings.init_ray(num_cpus=4)
    work = args.work.resolve()
    source = settings.data_root() / "facesynthetics_100"
    recomposed = work / f"recompose-n{args.n}-s{args.seed}"
    job.generate(job.GenerateConfig(n=args.n, out=recomposed, size=160, seed=args.seed, mode="recompose",
                                    source=source))  # fmt: skip
    # One translator for every source (the procedural pairs'); recomposed faces carry x-ray labels only.
    base = build_inputs(work=work / "procedural", n_generated=args.n, crop_size=128, seed=args.seed)
    sources = {
        "procedural": base,
        "recompose": build_inputs(work=work / "recompose", n_generated=0, synthetic_roots=[recomposed],
                                           crop_size=128, translator=str(base.translator)),
        "both": build_inputs(work=work / "both", n_generated=args.n // 2, crop_size=128, seed=args.seed,
                                      synthetic_roots=[_first(recomposed, args.n // 2, work)],
                                      translator=str(base.translator)),
    }  # fmt: skip
    rows = []
    for mode, inputs in sources.items():
        sw = sweep.study(real_shards=str(inputs.real_shards), synthetic_shards=str(inputs.synthetic_shards),
                         storage_path=args.storage)  # fmt: skip
        sw = replace(sw, name=f"generator-modes-{mode}-n{args.n}", seeds=(args.seed,))
        pre = sweep.pretrain.pretrain_spec(sw, args.seed, "none", "")
        pre_result = train.fit(pre)
        cell = sweep.Cell("pretrain_finetune", n_real=50, seed=args.seed)
        fine = sweep.search.trial_spec(sw, cell, {args.seed: checkpoint.checkpoint_uri(pre_result.checkpoint)}, "", "none",
                                f"{mode}-finetune-n50")  # fmt: skip
        fine_result = train.fit(fine)
        rows.append({"mode": mode,
                     "synthetic_only_nme": pre_result.metrics["val_nme"],
                     "finetuned_50_nme": fine_result.metrics["val_nme"]})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "generator_modes.json").write_text(json.dumps(rows, indent=1))


def _first(folder: Path, n: int, work: Path) -> Path:
    """A FaceSynthetics-layout folder of the first n samples of `folder` (hard links, no copies)."""
    out = work / f"{folder.name}-first{n}"
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        for suffix in job.SUFFIXES:
            src, dst = folder / f"{i:06d}{suffix}", out / f"{i:06d}{suffix}"
            if src.exists() and not dst.exists():
                os.link(src, dst)
    return out


if __name__ == "__main__":
    main()
