"""What the synthetic pretraining is worth: one row of the table per command, each resumable, each a record.

    LANDMIX_DATA_ROOT=../shared/data .venv/bin/python bench/pretraining.py --row pretrained --seed 0
    .venv/bin/python bench/pretraining.py --row real-only-matched --seed 0     # after the row it is matched to
    .venv/bin/python bench/pretraining.py --list                               # the rows and what each changes

A row = a synthetic pretraining (`landmix.pretraining.build`, its runs cached under out/pretraining/ and
resumed when interrupted) and a fine-tune of the real-baseline recipe from it (`landmix.trainer.fit` under a
fixed Ray Train name, so a re-run resumes it from its last epoch), or a real-only control. Started again after
an interruption, a row goes on where it stopped; a row already recorded for this seed is not run again
(`--force` runs it anyway). Each finished row appends one record to docs/results/train/records.jsonl
(experiment "pretraining": the row's config, the pretraining's and the fine-tune's minutes, validation NME on
the 97 validation faces, the one signal every choice is made on, and test NME on the 241 held-out faces: all,
HELEN, AFW), and `python -m landmix.records render docs/results/train.md` renders the table.

`real-only-matched` is the compute-matched control: the real-baseline recipe with a time budget equal to a
pretrained row's pretraining + fine-tuning minutes (`--match ROW`, default `pretrained`), so "synthetic data
helped" is never "more steps helped". A full row takes ~75-80 min on 2 cores (three 80-epoch synthetic runs of
~18 min, the fine-tune's 18); rows that share a pretraining (same faces, labels and length) build it once.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

from landmix import presets, pretraining, records, settings, trainer  # noqa: E402
from landmix.train_command import pinned_tracking, with_inputs  # noqa: E402

PAGE, EXPERIMENT = "train", "pretraining"
FACESYNTHETICS = "facesynthetics_100"  # the 100-render release under $LANDMIX_DATA_ROOT

# row -> (what it changes, recipe fields, fine-tune overrides {section: {field: value}}, pretrained?)
ROWS: dict[str, tuple[str, dict, dict, bool]] = {
    "real-only": ("the real-baseline preset, no pretraining", {}, {}, False),
    "real-only-matched": ("real-only at the pretrained row's total minutes", {}, {}, False),
    "pretrained": (
        "10k generated faces, 2 re-labelling rounds, 80 epochs; the preset's fine-tune",
        {},
        {},
        True,
    ),
    "pretrained-2k": ("2k generated faces", {"n_generated": 2000}, {}, True),
    "pretrained-30k": ("30k generated faces", {"n_generated": 30000}, {}, True),
    "pretrained-renders": ("+ the 100 FaceSynthetics renders", {"renders": (FACESYNTHETICS,)}, {}, True),
    "pretrained-generator-labels": (
        "generator-fitted labels only (no real-fitted round)",
        {"relabel_rounds": 0},
        {},
        True,
    ),
    "pretrained-long": ("160 pretraining epochs", {"epochs": 160}, {}, True),
    "pretrained-low-lr": ("fine-tune at lr 5e-4", {}, {"train": {"lr": 5e-4}}, True),
    "pretrained-mixed": (
        "fine-tune with a quarter of each batch synthetic",
        {},
        {"data": {"strategy": "mixed", "alpha": 0.25}},
        True,
    ),
}


def recipe_for(fields: dict) -> pretraining.Recipe:
    """The pretraining of a row: the default recipe with the row's fields (epochs go to the run's spec)."""
    fields = dict(fields)
    spec = presets.synthetic()
    if "epochs" in fields:
        spec = replace(spec, train=replace(spec.train, epochs=fields.pop("epochs")))
    if "renders" in fields:
        fields["renders"] = tuple(str(settings.data_root() / r) for r in fields["renders"])
    return pretraining.Recipe(spec=pinned_tracking(spec), **fields)


def recorded(row: str, seed: int) -> dict | None:
    """The newest record of a row and seed, if any."""
    found = [
        r
        for r in records.read_records(PAGE)
        if r["experiment"] == EXPERIMENT and r["config"].get("row") == row and r["config"].get("seed") == seed
    ]
    return found[-1] if found else None


def fine_tune_spec(row: str, seed: int, overrides: dict, init: str, budget_s: float | None):
    """The real-baseline recipe for a row under a fixed name (a re-run resumes it)."""
    spec = presets.preset("real-baseline", **{k: dict(v) for k, v in overrides.items()})
    train = {"seed": seed, "name": f"bench-pretraining-{row}-s{seed}", "init_checkpoint": init}
    if budget_s is not None:
        train["time_budget_s"] = budget_s
    spec = replace(spec, train=replace(spec.train, **train))
    if spec.data.strategy == "mixed":  # the synthetic faces the pretraining trained on, kept in the batch
        spec = replace(spec, data=replace(spec.data, synthetic_shards=pretraining_shards(init)))
    return pinned_tracking(spec)


def pretraining_shards(checkpoint: str) -> str:
    import json

    return json.loads(Path(checkpoint).parent.joinpath(pretraining.MARKER).read_text())["synthetic_shards"]


def run_row(row: str, seed: int, match: str) -> dict:
    what, fields, overrides, pretrained = ROWS[row]
    metrics: dict = {}
    init, budget = "", None
    if pretrained:
        info = pretraining.build(recipe_for(fields))
        init = info["checkpoint"]
        metrics["pretraining_min"] = round(sum(r["seconds"] for r in info["runs"]) / 60, 1)
        metrics["pretraining_runs"] = len(info["runs"])
        metrics["pretraining_val_nme"] = info["runs"][-1]["metrics"].get("val_nme")
        metrics["pretraining_test_nme"] = info["runs"][-1]["metrics"].get("test_nme")
    if row == "real-only-matched":
        ref = recorded(match, seed)
        if ref is None:
            raise SystemExit(f"run --row {match} --seed {seed} first: this row matches its total minutes")
        budget = 60 * (ref["metrics"]["pretraining_min"] + ref["metrics"]["fine_tune_min"])
        metrics["matched_to"] = match
    spec = fine_tune_spec(row, seed, overrides, init, budget)
    spec = with_inputs(spec, {})
    t0 = time.monotonic()
    result = trainer.fit(spec, str(settings.work_dir() / "bench-pretraining" / spec.train.name))
    if result.error is not None:
        raise SystemExit(f"{row}: the fine-tune failed: {result.error}; run the command again to resume it")
    m = result.metrics
    metrics |= {
        "fine_tune_min": round((time.monotonic() - t0) / 60, 1),
        "budget_s": spec.train.time_budget_s,
        "epochs": m.get("epoch", -1) + 1,
        "best_epoch": m.get("best_epoch"),
        "val_nme": m.get("val_nme"),
        "test_nme": m.get("test_nme"),
        "test_nme_helen": m.get("test_nme_helen"),
        "test_nme_afw": m.get("test_nme_afw"),
        "test_fr@10": m.get("test_fr@10"),
    }
    return {"row": row, "what": what, "seed": seed, "recipe": fields, "fine_tune": overrides} | {
        "metrics": metrics
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--row", choices=sorted(ROWS), help="the row to measure")
    p.add_argument("--seed", type=int, default=0, help="the fine-tune's seed (the pretraining keeps seed 0)")
    p.add_argument("--match", default="pretrained", help="real-only-matched: the row whose minutes it gets")
    p.add_argument("--force", action="store_true", help="measure the row again though it is recorded")
    p.add_argument("--no-record", action="store_true", help="print, append no record")
    p.add_argument("--list", action="store_true", help="list the rows and exit")
    args = p.parse_args()
    if args.list or not args.row:
        for name, (what, *_rest) in ROWS.items():
            print(f"{name:30s} {what}")
        return
    if not args.force and (done := recorded(args.row, args.seed)):
        print(f"{args.row} seed {args.seed} is recorded ({done['ended']}); --force measures it again")
        return
    settings.init_ray(num_cpus=4)
    rec = records.new_record(PAGE, EXPERIMENT, label=args.row)
    out = run_row(args.row, args.seed, args.match)
    rec["config"] = {k: v for k, v in out.items() if k != "metrics"}
    rec["metrics"] = out["metrics"]
    print(out)
    if not args.no_record:
        print(f"recorded -> {records.write_record(rec)}")


if __name__ == "__main__":
    main()
