"""The headline job: Ray Tune over the real/synthetic mix and the fine-tuning set size, tracked in MLflow.

Locally (starts a local Ray cluster, and MLflow in runs/mlflow.db unless MLFLOW_TRACKING_URI is set):

    make demo                                         # = python jobs/tune_mix.py --smoke-test
    python jobs/tune_mix.py --preset study --num-cpus 4   # the seed study on the shared real faces (2 cores)
    python jobs/tune_mix.py --preset study-selection --num-cpus 4   # which real faces to label (landmix select)
    python jobs/tune_mix.py --mode optimize --budget-n-real 50 --num-samples 16   # best mix for 50 real faces

On a cluster (`ray up cluster.yaml`; `ray dashboard cluster.yaml` forwards port 8265):

    ray job submit --address http://127.0.0.1:8265 --working-dir . \
        --runtime-env-json '{"excludes": [".venv", ".git", "runs", "out", "data"]}' \
        -- python jobs/tune_mix.py --preset study-cluster --storage s3://BUCKET/landmix

Steps: (1) build the inputs once (generate the embedded synthetic faces, ingest them and the real
300-W faces into manifests, prepare training-ready shards; cached under --work; with
--translator-real-faces N, also pretrain a synthetic model, fit the label translator's real-face stage
on its predictions for N real training faces (the per-point offset; with --translator-modes K also a map of the
predicted shape's first K principal components) and re-prepare the synthetic labels with it; --translator-rounds
R repeats that from a model trained on the re-labelled faces), (2) pretrain on
synthetic faces once per seed, (3) run the Tune sweep (each trial runs its own TorchTrainer),
(4) attach the comparison (NME vs n_real per strategy, tables, real-image equivalence) to the
sweep's MLflow parent run. Prints where everything went.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # Ray 2.59+ default is token auth; set it explicitly
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")  # bars from every trial garble the job log

from landmix import config as cfg  # noqa: E402
from landmix import relabel, results_page, settings, sweep, translate  # noqa: E402
from landmix.inputs import Inputs, build_inputs  # noqa: E402
from landmix.sweep.spec import SELECTION_ARMS  # noqa: E402

TITLE = "The study on real faces: does synthetic data replace real data?"
TITLE_SELECTION = "Which real faces to label: annotation-budget selection with a synthetic-pretrained model"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke-test", action="store_true", help="a complete small sweep in a few minutes")
    p.add_argument("--preset", choices=sorted(sweep.PRESETS), default="study")
    p.add_argument("--mode", choices=["grid", "optimize"], default=None, help="override the preset's mode")
    p.add_argument(
        "--name", default=None, help="sweep name = MLflow experiment; re-running a name resumes it"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument(
        "--strategies",
        nargs="+",
        default=None,
        choices=sweep.STRATEGIES,
        help="override the preset's arms (e.g. synthetic_only: only each seed's synthetic-only model)",
    )
    p.add_argument("--num-samples", type=int, default=None, help="optimize mode: number of trials")
    p.add_argument("--budget-n-real", type=int, default=None, help="optimize mode: real faces you have")
    p.add_argument("--real", type=Path, default=None, help="300-W folder (default: $LANDMIX_DATA_ROOT/300w)")
    p.add_argument(
        "--synthetic",
        type=Path,
        nargs="*",
        default=None,
        help="FaceSynthetics-layout folders to add to the generated faces (the study preset's default: "
        "the shared FaceSynthetics renders, $LANDMIX_DATA_ROOT/facesynthetics_100, when present)",
    )
    p.add_argument("--n-generated", type=int, default=None, help="embedded synthetic faces to generate")
    p.add_argument(
        "--translator",
        default="",
        help="label translator .npz for the synthetic labels (default: fitted on the generated faces' "
        "paired conventions; landmix fit-translator writes real-fitted ones)",
    )
    p.add_argument(
        "--translator-real-faces",
        type=int,
        default=None,
        metavar="N",
        help="also fit the translator on N real training faces (-1 = all): pretrain a synthetic model, "
        "fit its predictions to the human labels, re-prepare the synthetic labels with the chain, "
        "then run the sweep on them (one extra pretraining)",
    )
    p.add_argument(
        "--translator-modes",
        type=int,
        default=0,
        metavar="K",
        help="with --translator-real-faces: fit the per-point offset plus a linear map of the predicted "
        "shape's first K principal components (head pose, mouth opening, ..), not the offset "
        "alone; 135 = the full map. At convergence on 869 faces, 6 moved the synthetic-only "
        "error from 5.89 to 5.38 %%, 135 to 4.97 %%, and a second round (--translator-rounds 2) "
        "to 4.90 %% over three seeds (docs/results/generate.md)",
    )
    p.add_argument(
        "--translator-rounds",
        type=int,
        default=1,
        metavar="R",
        help="with --translator-real-faces: fit and re-label R times, each round on a synthetic model "
        "trained on the last round's labels, its map chained after theirs (R extra pretrainings)",
    )
    p.add_argument(
        "--work",
        type=Path,
        default=settings.work_dir(),
        help="cache of generated faces, manifests and prepared shards, on a folder every node sees "
        "(default $LANDMIX_WORK, else out/)",
    )
    p.add_argument(
        "--num-cpus",
        type=int,
        default=None,
        help="logical CPUs of the local Ray cluster this job starts (ignored when joining a cluster); "
        "4 on a 2-core machine runs 2 one-worker trials at once",
    )
    p.add_argument(
        "--results-page",
        type=Path,
        default=None,
        metavar="MD",
        help="also write the report as a results page (e.g. docs/results/study.md: the command, its wall "
        "time over every run of it, the settings, verdict, figure and tables; notes kept)",
    )
    p.add_argument(
        "--storage",
        default=settings.storage_path(),
        help="Ray Train/Tune storage: a local folder or s3://... (shared storage on a cluster; "
        "default $LANDMIX_STORAGE_PATH, else runs/)",
    )
    args = p.parse_args(argv)
    if args.translator_modes and args.translator_real_faces is None:
        p.error("--translator-modes shapes the map --translator-real-faces N fits: give N too")
    if args.translator_rounds != 1 and args.translator_real_faces is None:
        p.error("--translator-rounds repeats the fit --translator-real-faces N makes: give N too")
    if args.translator_rounds < 1:
        p.error(f"--translator-rounds {args.translator_rounds}: give 1 or more")
    return args


def describe(
    sw: sweep.SweepConfig, inputs: Inputs, n_generated: int, synthetic: list[Path] | None
) -> list[str]:
    """What the sweep ran, in words, for its results page."""
    import pyarrow.parquet as pq

    from landmix.pool import shard_folder
    from landmix.sources.split import real_split

    d, m, t = sw.base.data, sw.base.model, sw.base.train
    table = pq.read_table(shard_folder(str(inputs.real_shards)), columns=["id", "is_synthetic"]).to_pydict()
    ids = [i for i, syn in zip(table["id"], table["is_synthetic"]) if not syn]
    split = real_split(ids, d)
    n_real = ", ".join("all" if n == cfg.ALL_REAL else str(n) for n in sw.n_real)
    return [
        f"real faces: {len(ids)}{' (a GENERATED STAND-IN: no real faces found)' if inputs.real_is_standin else ''}: "
        f"{len(split.test)} test faces (reporting only), {len(split.val)} validation faces (early stopping, model "
        f"selection, the mixing ratio, the registered models), {len(split.train)} in the training pool, from which "
        f"n_real in {{{n_real}}} are nested prefixes of one seeded order",
        f"synthetic faces: {n_generated} generated (generator {inputs.generator_version or '-'})"
        + "".join(f" + the FaceSynthetics renders of {p}" for p in synthetic or [])
        + f", labels translated by {translator_words(sw)}",
        f"arms: {', '.join(sw.strategies)}; seeds {', '.join(map(str, sw.seeds))}"
        + (
            f"; mixing ratios {', '.join(f'{a:g}' for a in sw.alphas)} per n_real and seed, the losers stopped by "
            f"ASHA after {sw.grace_period} epochs, the best kept by validation NME"
            if "mixed" in sw.strategies
            else ""
        ),
        f"model: {m.backbone} backbone, {m.head} head, {m.image_size} px; every trial trains until validation NME "
        f"has not improved for {t.patience} epochs or {budget(t.time_budget_s, t.epochs)} ({t.num_workers} "
        f"worker x {t.cpus_per_worker:g} CPU, epochs of {d.samples_per_epoch} samples); each seed's synthetic-only "
        f"model: {budget(sw.pretrain_budget_s or t.time_budget_s, sw.pretrain_epochs)} on "
        f"{sw.pretrain_cpus_per_worker or t.cpus_per_worker:g} CPUs, once, shared by every arm that derives from it",
    ] + (
        [
            f"selection: real faces picked by {', '.join(m_ for m_ in sw.selections if m_ != 'random')} (`landmix "
            f"select`'s methods, ranked by each seed's synthetic-only model from detector boxes) against random picks, "
            f"for {' and '.join(SELECTION_ARMS)} at every n_real but all"
        ]
        if len(sw.selections) > 1
        else []
    )


def translator_words(sw: sweep.SweepConfig) -> str:
    """The synthetic labels' translator for the results page: its file, version and stages (one real-fitted map
    per --translator-rounds round)."""
    if not sw.translator:
        return "the fixed table"
    tr = translate.load(sw.translator)
    words = f"{Path(sw.translator).name} ({tr.version}: {translate.in_words(tr)}"
    if not sw.translator_real_faces:
        return words + ")"
    faces = "all" if sw.translator_real_faces == cfg.ALL_REAL else sw.translator_real_faces
    return (
        words + f", each map fitted on a synthetic-only model's predictions for {faces} real training faces)"
    )


def budget(seconds: float, epochs: int) -> str:
    return f"its {seconds:g} s budget is spent" if seconds else f"{epochs} epochs are done"


def main(argv=None) -> int:
    args = parse_args(argv)
    preset = "smoke" if args.smoke_test else args.preset
    settings.default_tracking_uri()  # MLFLOW_TRACKING_URI, else an absolute sqlite:////.../runs/mlflow.db
    settings.init_ray(num_cpus=args.num_cpus)  # $RAY_ADDRESS (a cluster, a submitted job), else a local one
    synthetic = args.synthetic
    if synthetic is None and preset != "smoke" and (settings.data_root() / "facesynthetics_100").is_dir():
        synthetic = [settings.data_root() / "facesynthetics_100"]
    n_generated = 256 if preset == "smoke" else sweep.STUDY_GENERATED
    build = dict(
        work=args.work,
        real_root=args.real,
        synthetic_roots=synthetic,
        n_generated=args.n_generated if args.n_generated is not None else n_generated,
        crop_size=cfg.shard_size(sweep.PRESETS[preset]().base.model),
    )
    overrides = {
        k: v
        for k, v in dict(
            mode=args.mode, name=args.name, num_samples=args.num_samples, budget_n_real=args.budget_n_real
        ).items()
        if v is not None
    }
    if args.seeds:
        overrides["seeds"] = tuple(args.seeds)
    if args.strategies:
        overrides["strategies"] = tuple(args.strategies)
    # The job's time counts from here (the Ray start above takes seconds): inputs, training, the report.
    root = replace(sweep.PRESETS[preset](storage_path=args.storage), **overrides).root
    started = results_page.record_job_start(
        root, ["python", "jobs/tune_mix.py", *(argv if argv is not None else sys.argv[1:])]
    )
    inputs = build_inputs(**build, translator=args.translator)

    def make_sweep(inputs: Inputs, **extra) -> sweep.SweepConfig:
        sw = sweep.PRESETS[preset](
            real_shards=str(inputs.real_shards),
            synthetic_shards=str(inputs.synthetic_shards),
            storage_path=args.storage,
        )
        return replace(
            sw,
            translator=str(inputs.translator or ""),
            generator_version=inputs.generator_version,
            **overrides,
            **extra,
        )

    sw = make_sweep(inputs)
    if args.translator_real_faces is not None:  # the re-labelling rounds (landmix.relabel.rounds)
        n, modes = args.translator_real_faces, args.translator_modes

        def pretrained_on(
            translator: str,
        ) -> str:  # the synthetic faces labelled by it, a synthetic-only model on them
            return sweep.synthetic_model(make_sweep(build_inputs(**build, translator=translator)))

        chain = relabel.rounds(
            sw.translator,
            args.translator_rounds,
            pretrained_on,
            partial(sweep.translator_path, sw, n, True, modes),
            n_faces=n,
            modes=modes,
        )
        inputs = build_inputs(**build, translator=chain[-1])
        sw = make_sweep(inputs, translator_real_faces=n)
    out = sweep.run_sweep(sw)
    results_page.record_job_end(sw.root, started)
    if args.results_page and "summary_md" in out["files"]:
        page = results_page.write_results_page(
            args.results_page,
            f"{TITLE_SELECTION if len(sw.selections) > 1 else TITLE} ({sw.name})",
            sw.root,
            out["files"],
            describe(sw, inputs, build["n_generated"], synthetic),
            out["compute"],
        )
        print(f"results page: {page}")
    c = out["compute"]
    print(
        f"\nsweep {sw.name}: {len(out['trials'])} trials; MLflow experiment '{out['experiment']}', "
        f"parent run {out['parent_run_id']} at {os.environ['MLFLOW_TRACKING_URI']}"
    )
    print(
        f"compute: {c['compute_total_seconds']:.0f} s (a naive grid, a synthetic model trained in every cell "
        "that uses one and every mixing ratio run to its end: "
        f"{c['compute_naive_grid_seconds']:.0f} s)"
    )
    for name, path in out["files"].items():
        print(f"  {name}: {path}")
    for strategy, model in out["registered"].items():
        print(
            f"  registered model {model['name']} version {model['version']} (best {strategy}): "
            f"mlflow.artifacts.download_artifacts('models:/{model['name']}@best')"
        )
    if "summary_md" in out["files"]:
        print("\n" + Path(out["files"]["summary_md"]).read_text())
    return 0 if out["trials"]["status"].isin(["ok", "stopped"]).all() else 1


if __name__ == "__main__":
    sys.exit(main())
