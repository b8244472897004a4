"""The generator's photographic steps, one at a time: how far each look is from real photos, and what a
synthetic-only model trained on it scores on real faces.

    LANDMIX_DATA_ROOT=../shared/data .venv/bin/python bench/generator_ablation.py          # ~50 min on 2 cores
    .venv/bin/python bench/generator_ablation.py --looks flat full --skip-train           # the gap only, minutes

For each look (cumulative by default: flat, + background, + shading, + skin, + eyes, + hair, + camera):
- the domain gap (`landmix gap`'s fixed classifier recipe): held-out accuracy of generated vs real crops,
  n crops per class x repeats, 5-fold; and the FaceSynthetics renders' once, as the calibration;
- a short fixed training budget: `--n` generated faces of that look (labels translated by the translator
  fitted on the generator's paired conventions; the faces' geometry does not depend on the look, so neither
  does the translator), a synthetic-only model (the detector recipe at `--image-size` px, `--epochs` x
  `--samples-per-epoch`, no time budget), scored on the 241 held-out real test faces: as trained, and with its
  outputs label-adapted by a map fitted on 50, 250 and all real training faces (`relabel.adapt_outputs`, the
  seed study's reading; kept under the budget's "label_adapted").
`--labels exact` trains on the generator's exact annotator-convention labels instead of the translated x-ray ones
(a hard-linked copy of the generated folder whose `_ldmks.txt` holds them, read with the fixed table): what the
label translation costs, the bound a better translator could reach (kept as "short_exact_labels" /
"converge_exact_labels" beside the translated rows).
`--pose real` draws the faces with the head-pose spread fitted on the real faces (`FaceConfig(pose="real")`)
instead of the default wide one; its generated folders and runs are named apart.
`--gen-size` renders the faces at another size (default 160 px; their crops are then scaled to the model's input
as the real ones are) and `--augment-strength` trains with another augmentation strength than the preset's 0.5:
their runs and shards are named apart (use a separate --out for another --gen-size: a row is keyed by its look).
`--translator` labels the faces with that translator (a chain: `landmix fit-translator` writes one, the generator's
stage then a real-fitted one) instead of the one fitted on the generator's pairs; its runs are named apart too.
`--relabel-rounds R` then re-labels the faces R times, each round from the last round's model: the map of
`landmix fit-translator --modes K` (`--relabel-modes`, default the full linear map) fitted on that model's
predictions on all real training faces, chained after its translator; a model trained anew on the re-labelled
faces, kept under the chain's version like a `--translator` run (the chain: `--work`/translators/relabel-RUN-*.npz).
Each look's row is kept in --out as soon as it is measured; a re-run skips what is there for the same generator
version and pose (resumable) and measures a look anew when the generator's code changed.

Every measurement (a classifier figure, a trained model) also appends a record to the generator's results page,
docs/results/generate/records.jsonl (`--no-record`: none), whose tables `python -m landmix.records render
docs/results/generate.md` regenerates: `gap` (config: source, generator, look, pose, seed, render size; metrics:
the classifier's accuracy, interval, AUC, image statistics), `short` / `converge` (config: the faces, the
budget, the labels' route, translator, re-labelling round; metrics: test and validation NME, HELEN / AFW, best
epoch, label-adapted NME, the same faces' classifier figure).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

from landmix import (  # noqa: E402
    checkpoint,
    config,
    domain_gap,
    pool,
    presets,
    records,
    relabel,
    settings,
    train,
    trainer,
    translate,
)
from landmix.generate import generator_version  # noqa: E402
from landmix.generate.face3d import POSES  # noqa: E402
from landmix.generate.look import STEPS  # noqa: E402
from landmix.inputs import GEN_SIZE, build_inputs  # noqa: E402

CUMULATIVE = {"flat": ()} | {"+" + s: STEPS[: i + 1] for i, s in enumerate(STEPS)}
NAMED = {**CUMULATIVE, "full": STEPS} | {s: (s,) for s in STEPS}


def synthetic_only_spec(
    real_shards: str,
    synthetic_shards: str,
    image_size: int,
    epochs: int,
    samples: int,
    seed: int,
    name: str,
    converge: bool = False,
) -> config.RunSpec:
    """The detector recipe (real-baseline) trained on synthetic faces only: for a fixed number of epochs at
    image_size, or (converge) exactly as the preset trains on real faces (160 px, its 18-minute budget)."""
    base = presets.real_baseline()
    model = base.model if converge else replace(base.model, image_size=image_size)
    train_cfg = base.train if converge else replace(base.train, epochs=epochs, time_budget_s=0)
    return replace(
        base,
        model=model,
        data=replace(
            base.data,
            real_shards=real_shards,
            synthetic_shards=synthetic_shards,
            strategy="synthetic_only",
            samples_per_epoch=base.data.samples_per_epoch if converge else samples,
        ),
        train=replace(train_cfg, patience=0, seed=seed, name=name),
        tracking=replace(base.tracking, experiment="landmix-generator-ablation"),
    )


def exact_label_folder(generated: Path) -> Path:
    """A copy of a generated folder (hard links) whose `_ldmks.txt` holds the exact annotator-convention labels
    (68, then the x-ray pupils): read with the fixed table, a model trains on the generator's human-convention
    labels as drawn. Rewritten each call (seconds)."""
    out = generated.with_name(generated.name + "-exact-labels")
    out.mkdir(exist_ok=True)
    if (generated / "generator.json").exists() and not (
        out / "generator.json"
    ).exists():  # provenance travels
        os.link(generated / "generator.json", out / "generator.json")
    for ann in sorted(generated.glob("*_ldmks_annotator.txt")):
        stem = ann.name.removesuffix("_ldmks_annotator.txt")
        for suffix in ("_seg.png", ".png"):
            if not (out / f"{stem}{suffix}").exists():
                os.link(generated / f"{stem}{suffix}", out / f"{stem}{suffix}")
        pts = np.vstack([np.loadtxt(ann), np.loadtxt(generated / f"{stem}_ldmks.txt")[68:70]])
        (out / f"{stem}_ldmks.txt").write_text("".join(f"{x:.3f} {y:.3f}\n" for x, y in pts))
    return out


def table(rows: dict) -> str:
    """The ablation as markdown: one row per look measured, in the order of `NAMED`."""
    fs = rows.get("facesynthetics", {}).get("gap")
    out = [
        "| look | generator | classifier accuracy [95 %] | on its crops | AUC | synthetic-only NME, short budget | at convergence |",
        "|---|---|---|---|---|---|---|",
    ]
    pct = lambda g, k: f"{100 * g[k]:.1f} % [{100 * g[k + '_ci'][0]:.0f}, {100 * g[k + '_ci'][1]:.0f}]"  # noqa: E731
    if fs:
        out.append(
            f"| FaceSynthetics renders (calibration) | | {pct(fs, 'accuracy')} | {pct(fs, 'accuracy_synthetic')} "
            f"| {fs['auc']:.3f} | | |"
        )
    measured = [(n, rows[n]) for n in NAMED if "gap" in rows.get(n, {})]
    for name, row in measured:
        same = [r for n, r in measured if r["look"] == row["look"]]  # "full" is "+camera" under another name
        if same[0] is not row:
            continue
        g = row["gap"]
        short = next((f"{100 * r['short']['test_nme']:.2f} %" for r in same if "short" in r), "")
        conv = next((f"{100 * r['converge']['test_nme']:.2f} %" for r in same if "converge" in r), "")
        out.append(
            f"| {name} | {row['generator_version']} | {pct(g, 'accuracy')} | {pct(g, 'accuracy_synthetic')} | "
            f"{g['auc']:.3f} | {short} | {conv} |"
        )
    rounds = [(name, relabel_rounds(row)) for name, row in measured]
    if any(len(r) > 1 for _, r in rounds):
        out += [
            "",
            "| look | round | labels translated by | test NME (HELEN, AFW) | val NME | best epoch of "
            "| label-adapted on all real training faces |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, chain in rounds:
            for i, (budget, r) in enumerate(chain):
                adapted = r.get("label_adapted", {}).get(str(config.ALL_REAL), {}).get("test_nme")
                out.append(
                    f"| {name} | {i} | {budget.removeprefix('converge').lstrip('_') or 'the generator-fitted stage'} "
                    f"| {100 * r['test_nme']:.2f} % ({100 * r['test_nme_helen']:.2f}, {100 * r['test_nme_afw']:.2f}) "
                    f"| {100 * r['val_nme']:.2f} % | {r['best_epoch']} of {r['epochs']} "
                    f"| {'' if adapted is None else f'{100 * adapted:.2f} %'} |"
                )
    return "\n".join(out)


def relabel_rounds(row: dict) -> list[tuple[str, dict]]:
    """A look's converged runs in `--relabel-rounds` order: the generator-fitted labels' run, then each run trained
    on the faces re-labelled by the one before (followed through "relabelled_with"); [] where none converged."""
    chain, budget = [], "converge"
    while budget in row:
        chain.append((budget, row[budget]))
        nxt = row[budget].get("relabelled_with")
        budget = next(
            (
                k
                for k, r in row.items()
                if k.startswith("converge_") and isinstance(r, dict) and nxt and r.get("translator") == nxt
            ),
            None,
        )
    return chain


def budget_and_run(args, name: str, row: dict, translator: str) -> tuple[str, str]:
    """The row's key for a training budget and the Ray Train run's name: apart per budget, labels, augmentation
    strength, translator (by its version), seed, pose and render size."""
    version = translate.load(translator).version if translator else ""
    budget = (
        ("converge" if args.converge else "short")
        + ("_exact_labels" if args.labels == "exact" else "")
        + ("" if args.augment_strength is None else f"_augment{args.augment_strength:g}")
        + (f"_{version}" if version else "")
    )
    run = (
        f"ablation-{budget.replace('_', '-')}-{name.strip('+')}-{row['generator_version']}-n{args.n}-s{args.seed}"
        + ("" if args.pose == "wide" else f"-pose-{args.pose}")
        + ("" if args.gen_size == GEN_SIZE else f"-px{args.gen_size}")
        + ("" if args.augment_strength is None else f"-aug{args.augment_strength:g}")
        + (f"-{version}" if version else "")
    )
    return budget, run


def train_look(args, name: str, look: tuple[str, ...], row: dict, translator: str) -> tuple[str, str]:
    """Train a synthetic-only model on the look's generated faces labelled by `translator` (default: the one
    fitted on the generator's pairs) and keep its figures in row[budget]; skipped where they are there.
    Returns (budget, run name)."""
    budget, run = budget_and_run(args, name, row, translator)
    if budget in row:
        return budget, run
    t0 = time.perf_counter()
    image_size = presets.real_baseline().model.image_size if args.converge else args.image_size
    size = config.shard_size(replace(presets.real_baseline().model, image_size=image_size))
    inputs = build_inputs(
        work=args.work,
        n_generated=args.n,
        gen_size=args.gen_size,
        crop_size=size,
        seed=args.seed,
        look=look,
        pose=args.pose,
        translator=translator,
    )
    if args.labels == "exact":  # the same faces, their annotator labels through the fixed table
        generated = (
            args.work / "generated" / f"n{args.n}-px{args.gen_size}-s{args.seed}-{inputs.generator_version}"
        )
        inputs = build_inputs(
            work=args.work,
            synthetic_roots=[exact_label_folder(generated)],
            n_generated=0,
            gen_size=args.gen_size,
            crop_size=size,
            seed=args.seed,
        )
    spec = synthetic_only_spec(
        str(inputs.real_shards),
        str(inputs.synthetic_shards),
        args.image_size,
        args.epochs,
        args.samples_per_epoch,
        args.seed,
        run,
        args.converge,
    )
    if args.augment_strength is not None:
        spec = replace(spec, data=replace(spec.data, augment_strength=args.augment_strength))
    result = trainer.fit(spec)
    if result.error is not None:
        raise SystemExit(f"{name}: training failed: {result.error}")
    m = result.metrics
    with result.checkpoint.as_directory() as folder:  # the seed study's reading: the outputs label-adapted
        adapted = label_adapted(folder)
    row[budget] = {
        "test_nme": m["test_nme"],
        "val_nme": m["val_nme"],
        "test_nme_helen": m.get("test_nme_helen"),
        "test_nme_afw": m.get("test_nme_afw"),
        "best_epoch": m["best_epoch"],
        "epochs": m["epoch"] + 1,
        "minutes": (time.perf_counter() - t0) / 60,
        "n": args.n,
        "gen_size": args.gen_size,
        "image_size": image_size,
        "samples_per_epoch": spec.data.samples_per_epoch,
        "max_epochs": spec.train.epochs,
        "time_budget_s": spec.train.time_budget_s,
        "label_adapted": adapted,
        "translator": translator,
        "checkpoint": result.checkpoint.path,
    }
    print(json.dumps({name: {budget: row[budget]}}), flush=True)
    return budget, run


def relabel_look(args, name: str, look: tuple[str, ...], row: dict, save, record) -> None:
    """Train on the look's faces labelled by --translator, then --relabel-rounds re-labelling rounds
    (`landmix.relabel.rounds`: each round's map fitted on the last run's predictions for all real training faces,
    chained after its translator, saved as --work/translators/relabel-RUN-modesK.npz) and a run on each round's
    labels, one record per run; row[budget]["relabelled_with"] names the chain fitted on that budget's run."""
    done: list[str] = []  # the translators trained on so far, in round order

    def trained(translator: str) -> str:  # a model on the look's faces labelled by translator: its checkpoint
        measured = set(row)
        budget, run = train_look(args, name, look, row, translator)
        save()
        if budget not in measured:
            record(train_record(name, row, budget, args, len(done) if args.relabel_rounds else None))
        done.append(translator)
        return run_checkpoint(row[budget], run)

    def chain_path(translator: str, _checkpoint: str) -> Path:  # named by the run it is fitted on
        return (
            args.work
            / "translators"
            / f"relabel-{budget_and_run(args, name, row, translator)[1]}-modes{args.relabel_modes}.npz"
        )

    chain = relabel.rounds(
        args.translator, args.relabel_rounds, trained, chain_path, modes=args.relabel_modes
    )
    trained(chain[-1])  # the last round's labels (the only run where --relabel-rounds is 0)
    for before, after in zip(chain, chain[1:]):
        row[budget_and_run(args, name, row, before)[0]]["relabelled_with"] = after
    save()


def label_adapted(folder, faces=(50, 250, config.ALL_REAL)) -> dict:
    """The checkpoint's test NME with its outputs label-adapted (`relabel.adapt_outputs`: the per-point offset or
    the ridge map, whichever scores lower on the validation faces) by a map fitted on each number of real training
    faces of the real shards it trained on: {str(n): {"kind", "fit_faces", "val_nme", "test_nme"}}."""
    model, meta = checkpoint.load(folder)
    data = config.from_dict(meta["config"]).data
    real = pool.read_shards(data.real_shards, model.cfg)
    images, gt = real.model_inputs(model.cfg.image_size)
    pred = checkpoint.predict(model, images)
    out = {}
    for n in faces:
        fit = relabel.adapt_outputs(pred, gt, real.ids, n, data)
        out[str(n)] = {
            "kind": fit["kind"],
            "fit_faces": len(fit["faces"]["train"]),
            "val_nme": float(fit["val_errors"].mean()),
            "test_nme": float(fit["test_errors"].mean()),
        }
    return out


def final_checkpoint(run_folder: Path) -> Path:
    """A run folder's final checkpoint: the last `checkpoint_*` holding the training's faces file."""
    finals = sorted(Path(run_folder).glob(f"checkpoint_*/{train.FACES_FILE}"))
    if not finals:
        raise SystemExit(f"{run_folder}: no final checkpoint_*/{train.FACES_FILE}; train the look again")
    return finals[-1].parent


def run_checkpoint(figures: dict, run: str) -> str:
    """A trained row's checkpoint: as recorded, else (rows from before it was) the run's final one."""
    return figures.get("checkpoint") or str(
        final_checkpoint(Path(presets.real_baseline().train.storage_path, run))
    )


def gap_record(name: str, row: dict, args, source: str = "generated") -> dict:
    """A classifier measurement as a record of the generator's page."""
    g = row["gap"]
    stats = row.get("stats") or {}
    cfg = {
        "source": source,
        "generator": row.get("generator_version"),
        "look": row.get("look"),
        "pose": row.get("pose") if source == "generated" else None,
        "seed": args.seed,
        "gen_size": args.gen_size if source == "generated" else None,
        "n": g.get("n"),
        "repeats": g.get("repeats"),
    }
    metrics = {
        k: g[k]
        for k in ("accuracy", "accuracy_ci", "accuracy_synthetic", "accuracy_synthetic_ci", "auc")
        if k in g
    }
    if source == "facesynthetics":
        metrics |= {"stats": stats.get("facesynthetics"), "stats_real": stats.get("real")}
    else:
        metrics["stats"] = stats
    return records.new_record(
        "generate", "gap", cfg, metrics, label=name if source == "generated" else "FaceSynthetics renders"
    )


def train_record(name: str, row: dict, budget: str, args, round_: int | None = None) -> dict:
    """A trained model's figures (row[budget]) as a record of the generator's page."""
    r = row[budget]
    adapted = {
        ("all" if k == str(config.ALL_REAL) else k): v for k, v in (r.get("label_adapted") or {}).items()
    }
    version = budget.split("_chain-", 1)[1] if "_chain-" in budget else None
    cfg = {
        "generator": row.get("generator_version"),
        "look": row.get("look"),
        "pose": row.get("pose"),
        "seed": args.seed,
        "n": r.get("n"),
        "gen_size": r.get("gen_size"),
        "image_size": r.get("image_size"),
        "samples_per_epoch": r.get("samples_per_epoch"),
        "max_epochs": r.get("max_epochs"),
        "time_budget_s": r.get("time_budget_s"),
        "labels": args.labels,
        "augment_strength": args.augment_strength,
        "translator": f"chain-{version}" if version else None,
        "relabel_rounds": args.relabel_rounds or None,
        "round": round_,
    }
    metrics = {
        k: r.get(k)
        for k in ("test_nme", "val_nme", "test_nme_helen", "test_nme_afw", "best_epoch", "epochs", "minutes")
    } | {"label_adapted": adapted or None, "checkpoint": r.get("checkpoint")}
    if "gap" in row:
        metrics["classifier"] = row["gap"]["accuracy"]
    return records.new_record(
        "generate",
        "converge" if budget.startswith("converge") else "short",
        cfg,
        metrics,
        label=name if round_ is None else f"{name}, re-labelling round {round_}",
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--looks", nargs="+", default=list(CUMULATIVE), choices=sorted(NAMED))
    p.add_argument("--n", type=int, default=2000, help="generated faces per look for the training")
    p.add_argument("--gen-size", type=int, default=GEN_SIZE)
    p.add_argument("--image-size", type=int, default=96, help="model input, px")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--samples-per-epoch", type=int, default=1024)
    p.add_argument("--gap-n", type=int, default=100)
    p.add_argument("--gap-repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--pose", choices=POSES, default="wide", help="the generator's head-pose spread (FaceConfig.pose)"
    )
    p.add_argument("--skip-train", action="store_true", help="measure the gap only")
    p.add_argument(
        "--converge",
        action="store_true",
        help="train as the real-baseline preset does (160 px, 18 min) on --n faces (use 10000); kept "
        "under each look's 'converge' (the fixed short budget's under 'short')",
    )
    p.add_argument("--work", type=Path, default=settings.work_dir() / "generator_ablation")
    p.add_argument("--out", type=Path, default=Path("out/bench/generator_ablation.json"))
    p.add_argument(
        "--labels",
        choices=("translated", "exact"),
        default="translated",
        help="train on x-ray labels translated by the translator fitted on the generator's pairs "
        "(the platform's route), or on the generator's exact annotator-convention labels",
    )
    p.add_argument(
        "--augment-strength",
        type=float,
        default=None,
        help="the training's augmentation strength (landmix.augment) on the synthetic faces; default: "
        "the preset's; its runs are named apart",
    )
    p.add_argument(
        "--translator",
        default="",
        help="a translator .npz (chain) for the generated faces' labels instead of the one fitted on the "
        "generator's pairs; its runs and rows are named by its version",
    )
    p.add_argument(
        "--relabel-rounds",
        type=int,
        default=0,
        help="then re-label the generated faces this many times: each round fits `landmix fit-translator "
        "--modes K`'s map on the last model's predictions on all real training faces, chains it "
        "after that model's translator and trains anew on the faces labelled by the chain; each "
        "round's figures are kept under its chain's version",
    )
    p.add_argument(
        "--relabel-modes",
        type=int,
        default=135,
        help="K for --relabel-rounds: the principal components of the predicted shape the map reads "
        "(135, every one but the last of the 68 points' 136 coordinates: the full linear map)",
    )
    p.add_argument(
        "--table", action="store_true", help="print the ablation table of --out as markdown and exit"
    )
    p.add_argument(
        "--no-record",
        action="store_true",
        help="write no record to docs/results/generate/records.jsonl (a trial run)",
    )
    args = p.parse_args()
    record = (lambda rec: None) if args.no_record else records.write_record  # noqa: E731
    rows = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.table:
        print(table(rows))
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save = lambda: args.out.write_text(json.dumps(rows, indent=1))  # noqa: E731
    if "facesynthetics" not in rows:
        g = domain_gap.measure(
            domain_gap.GapConfig(
                out=args.work / "gap-facesynthetics",
                sources=("facesynthetics",),
                n=args.gap_n,
                repeats=args.gap_repeats,
                seed=args.seed,
            )
        )
        rows["facesynthetics"] = {
            "gap": {k: v for k, v in g["sources"]["facesynthetics"].items() if k != "runs"},
            "stats": g["stats"],
        }
        save()
        record(gap_record("facesynthetics", rows["facesynthetics"], args, source="facesynthetics"))
    if not args.skip_train:
        settings.init_ray(num_cpus=4)
    for name in args.looks:
        look = NAMED[name]
        row = rows.get(name, {})
        if row.get("generator_version") != generator_version(look) or row.get("pose", "wide") != args.pose:
            row = rows[name] = {
                "look": list(look),
                "generator_version": generator_version(look),
                "pose": args.pose,
            }
        if "gap" not in row:
            g = domain_gap.measure(
                domain_gap.GapConfig(
                    out=args.work / f"gap-{name}",
                    sources=("generated",),
                    look=look,
                    pose=args.pose,
                    n=args.gap_n,
                    repeats=args.gap_repeats,
                    gen_size=args.gen_size,
                    seed=args.seed,
                )
            )
            row["gap"] = {k: v for k, v in g["sources"]["generated"].items() if k != "runs"}
            row["stats"] = g["stats"]["generated"]
            save()
            record(gap_record(name, row, args))
        if args.skip_train:
            continue
        relabel_look(args, name, look, row, save, record)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
