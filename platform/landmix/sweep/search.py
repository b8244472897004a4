"""The search: Ray Tune over the real/synthetic mix, each trial a Ray Train run, the comparison on MLflow.

Ray Train V2 composition: each Tune trial function builds and runs its own `TorchTrainer`
(`landmix.trainer.build_trainer`) with a `TuneReportCallback`, so per-epoch metrics reach Tune
(and ASHA) while the Train run keeps its own checkpoints under a stable name.

Where things go: Ray Train/Tune state under `{storage_path}/{sweep name}/{train,pretrain,tune}` (a folder,
or s3://... on a cluster), the sweep's own bookkeeping in `SweepConfig.root` on the driver's disk.

Resume: a finished grid cell writes `cells/<cell>.json` in the sweep's folder; running the same sweep again
runs only the cells without one, and a cell cut off mid-training resumes from its last epoch checkpoint
(its Train run name is stable). The optimising mode restores its Tuner (`Tuner.restore`). The MLflow
parent run id is kept in `parent_run_id` there, so the resumed sweep logs under the same parent.

Where the time goes: the real and synthetic faces are decoded once per sweep run and put in Ray's object
store (`share_pools`); every trial's workers read them from there instead of reading and decoding the shards
again. In the grid, the mixing ratios of one (n_real, seed) race under their own ASHA (landmix.sweep.asha):
the losers stop at the first rung, and the report keeps the ratio with the best validation NME.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

from landmix import config as cfg
from landmix import settings
from landmix.sweep import adapt, pretrain, results, selection
from landmix.sweep.asha import mixing_asha, record_stopped
from landmix.sweep.spec import METRIC, TUNED, Cell, SweepConfig, grid_cells

# How often Tune starts a trial again after its actor died (its node lost): each start resumes the cell's run.
TRIAL_RETRIES = 3


def trial_spec(
    sweep: SweepConfig,
    cell: Cell,
    pretrained: dict[int, str],
    parent_run_id: str,
    tracking_uri: str,
    train_name: str,
    picks: dict | None = None,
) -> cfg.RunSpec:
    """The RunSpec of one trial: the base preset with the cell's strategy, n_real, alpha and seed; a cell of a
    selection method trains on the first n_real of that method's ranking for its seed (picks[(seed, method)])."""
    base = sweep.base
    faces = ()
    if cell.selection != "random":
        ranking = (picks or {}).get((cell.seed, cell.selection))
        if ranking is None or len(ranking) < cell.n_real:
            raise ValueError(
                f"cell {cell.name}: no ranking of {cell.n_real} faces by {cell.selection} for seed "
                f"{cell.seed} (landmix.sweep.selection.run_selection makes them)"
            )
        faces = tuple(ranking[: cell.n_real])
    data = replace(
        base.data,
        strategy="real_only" if cell.strategy == "pretrain_finetune" else cell.strategy,
        # Cells that draw no synthetic sample do not read the synthetic shards (a fine-tune's synthetic
        # data is its pretraining's, recorded in that run).
        synthetic_shards=base.data.synthetic_shards if cell.strategy in ("synthetic_only", "mixed") else "",
        n_real=cell.n_real,
        alpha=float(cell.alpha),
        augment_strength=sweep.augment_strength
        if cell.augment_strength is None
        else float(cell.augment_strength),
        pretrain_epochs=0,
        selection=cell.selection,
        real_faces=faces,
    )
    train = replace(
        base.train,
        seed=cell.seed,
        lr=sweep.lr if cell.lr is None else float(cell.lr),
        init_checkpoint=pretrained.get(cell.seed, "") if cell.strategy == "pretrain_finetune" else "",
        storage_path=sweep.ray_storage("train"),
        name=train_name,
    )
    tracking = replace(
        base.tracking,
        uri=tracking_uri,
        experiment=sweep.name,
        parent_run_id=parent_run_id,
        run_label=train_name,
        strategy_label=cell.strategy,
    )
    return replace(base, data=data, train=train, tracking=tracking)


def share_pools(sweep: SweepConfig):
    """Decode the sweep's real and synthetic faces once (this process) and put them in Ray's object store:
    ({"real"/"synthetic": ObjectRef}, the real Pool) for the trials' workers and for label adaptation."""
    import ray

    from landmix.pool import read_shards

    d, m, refs, real = sweep.base.data, sweep.base.model, {}, None
    t0 = time.monotonic()
    if d.real_shards:
        real = read_shards(d.real_shards, m)
        refs["real"] = ray.put(real)
    if d.synthetic_shards:
        refs["synthetic"] = ray.put(read_shards(d.synthetic_shards, m, synthetic=True))
    print(
        f"sweep {sweep.name}: faces decoded once for every trial in {time.monotonic() - t0:.0f} s", flush=True
    )
    return refs, real


def make_trial_fn(
    sweep: SweepConfig,
    pretrained: dict[int, str],
    parent_run_id: str,
    tracking_uri: str,
    shared_pools: dict | None = None,
    picks: dict | None = None,
):
    """The Tune trial function: builds and runs its own TorchTrainer (Ray Train V2 composition).

    Grid cells train under their stable name (`Cell.name`), so a cell cut off by a killed driver resumes
    from its last epoch checkpoint, and write `cells/<name>.json` when they finish, which is what makes a
    re-run skip them. Optimising trials (sampled values can repeat a grid name) are named by their trial id.
    """
    grid = sweep.mode == "grid"

    def trial(config: dict) -> None:
        from ray import tune
        from ray.tune.integration.ray_train import TuneReportCallback

        from landmix import trainer

        cell = Cell.from_dict(config["cell"] if grid else config)
        name = cell.name if grid else f"trial-{tune.get_context().get_trial_id()}"
        spec = trial_spec(sweep, cell, pretrained, parent_run_id, tracking_uri, name, picks)
        t0 = time.monotonic()
        result = trainer.build_trainer(
            spec, callbacks=[TuneReportCallback()], shared_pools=shared_pools
        ).fit()
        if result.error is not None:
            raise result.error
        if grid:
            done = results.from_checkpoint(result)
            results.write_cell_result(
                sweep,
                cell,
                done["metrics"],
                time.monotonic() - t0,
                done["faces"],
                mlflow_run_id=done["run_id"],
            )

    return trial


def param_space(sweep: SweepConfig, cells: list[Cell] | None = None) -> dict:
    """Grid: {"cell": one grid value per cell}. Optimize: the values Optuna samples for `budget_n_real` faces."""
    from ray import tune

    if sweep.mode == "grid":
        return {
            "cell": tune.grid_search([asdict(c) for c in (grid_cells(sweep) if cells is None else cells)])
        }
    # Training strategies only (label adaptation is a fit on the synthetic-only model, a grid arm).
    strategies = [
        s
        for s in sweep.strategies
        if s in cfg.STRATEGIES and (s != "synthetic_only" or sweep.budget_n_real == 0)
    ]
    return {
        "strategy": tune.choice(strategies),
        "alpha": tune.uniform(0.0, 1.0),
        "n_real": sweep.budget_n_real,
        "lr": tune.loguniform(3e-4, 1e-2),
        "augment_strength": tune.uniform(0.0, 1.0),
        "seed": sweep.seeds[0],
    }


def concurrent_trials(sweep: SweepConfig) -> int:
    """How many trials fit at once: cluster CPUs (or GPUs) over what one trial's workers take."""
    import ray

    if sweep.max_concurrent_trials:
        return sweep.max_concurrent_trials
    res = ray.cluster_resources()
    t = sweep.base.train
    if t.use_gpu:
        return max(1, int(res.get("GPU", 0) // t.num_workers))
    per_trial = t.num_workers * t.cpus_per_worker + 1  # + one CPU for the trial's Ray Data read tasks
    return max(1, int(res.get("CPU", 1) // per_trial))


def tuner(sweep: SweepConfig, trial_fn, cells: list[Cell] | None = None):
    """The Tuner of this run of the sweep.

    Grid mode: a fresh Tuner over the cells not finished yet, in `tune/attempt-<k>` (finished cells are
    known from their `cells/*.json`, so a re-run never redoes them, and Tune's concurrency limit holds:
    a restored Tuner would start all of its pending trials at once). Optimize mode: `Tuner.restore` of
    `tune/optimize` when it exists, which keeps the Optuna study and ASHA state.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    # The trial function only waits on its TorchTrainer: it holds no CPU (the workers and Ray Data's read
    # tasks need them all on a small machine), just memory, which Tune needs to place it at all.
    trainable = tune.with_resources(trial_fn, {"CPU": 0, "memory": 256 * 1024**2})
    tune_config = tune.TuneConfig(metric=METRIC, mode="min", max_concurrent_trials=concurrent_trials(sweep))
    if sweep.mode == "grid":  # each run of the sweep is a new Tune experiment: attempt-0, attempt-1, ...
        attempts = sweep.root / "tune_attempts.txt"
        name = f"attempt-{len(attempts.read_text().split()) if attempts.exists() else 0}"
        with attempts.open("a") as f:
            f.write(name + "\n")
        tune_config = replace(tune_config, scheduler=mixing_asha(sweep))
    else:
        name = "optimize"
        exp_path = f"{sweep.ray_storage('tune')}/{name}"
        if tune.Tuner.can_restore(exp_path):
            print(f"resuming sweep from {exp_path}", flush=True)
            return tune.Tuner.restore(
                exp_path, trainable=trainable, resume_unfinished=True, resume_errored=True
            )
        tune_config = replace(
            tune_config,
            num_samples=sweep.num_samples,
            search_alg=OptunaSearch(seed=sweep.seeds[0]),
            scheduler=ASHAScheduler(
                time_attr="training_iteration",
                max_t=sweep.base.train.epochs,
                grace_period=sweep.grace_period,
                reduction_factor=2,
            ),
        )
    return tune.Tuner(
        trainable,
        param_space=param_space(sweep, cells),
        tune_config=tune_config,
        run_config=tune.RunConfig(
            name=name,
            storage_path=sweep.ray_storage("tune"),
            # A trial whose actor died with its node (a spot node taken away) is started again; its
            # TorchTrainer, under the same name, resumes from the cell's last epoch checkpoint.
            failure_config=tune.FailureConfig(max_failures=TRIAL_RETRIES),
        ),
    )


def run_sweep(sweep: SweepConfig) -> dict:
    """Run (or resume) the sweep on the connected Ray cluster, then attach the comparison to the MLflow
    parent run and register each strategy's best model. Returns a summary dict: parent run id, experiment,
    report files, compute, trial table, registered models."""
    from landmix import tracking

    settings.require_ray("run_sweep")
    t_start = time.monotonic()
    sweep.root.mkdir(parents=True, exist_ok=True)
    (sweep.root / "sweep.json").write_text(json.dumps(asdict(sweep), indent=2, default=str))
    tracking_uri = tracking.resolve_uri(sweep.base.tracking.uri)
    parent = tracking.sweep_parent_run(
        tracking_uri,
        sweep.name,
        sweep.root / "parent_run_id",
        params={"sweep." + k: v for k, v in asdict(sweep).items() if k != "base"}
        | {f"base.{k}": v for k, v in cfg.flat_params(sweep.base).items()},
    )
    if sweep.translator and tracking_uri:
        # .json: its fit report
        for path in (Path(sweep.translator), Path(sweep.translator).with_suffix(".json")):
            if path.exists():
                tracking.log_file(tracking_uri, parent, path, "translator")
    shared, real = share_pools(sweep)
    pretrained = pretrain.run_pretraining(sweep, tracking_uri, parent, shared)
    if sweep.mode == "grid" and "label_adaptation" in sweep.strategies:
        adapt.run_label_adaptation(sweep, pretrained, real, tracking_uri, parent)
    picks = (
        selection.run_selection(sweep, pretrained, real, tracking_uri, parent) if sweep.mode == "grid" else {}
    )
    del real
    checkpoints = {seed: info["checkpoint"] for seed, info in pretrained.items()}
    trial_fn = make_trial_fn(sweep, checkpoints, parent, tracking_uri, shared, picks)
    if sweep.mode == "grid":
        done = results.finished_cells(sweep)
        todo = [c for c in grid_cells(sweep) if c.name not in done and c.strategy in TUNED]
        print(
            f"sweep {sweep.name}: {len(done)} cell(s) already done, {len(todo)} trial(s) to run", flush=True
        )
        tune_results = tuner(sweep, trial_fn, todo).fit() if todo else None
        record_stopped(sweep, tune_results, tracking_uri)
        trials = results.grid_rows(sweep, tune_results)
    else:
        trials = results.trial_rows(tuner(sweep, trial_fn).fit())
    pretrain_s = sum(info["seconds"] for info in pretrained.values())
    compute = results.compute_accounting(trials, pretrain_s, len(pretrained))
    # this run of the sweep (a resumed one: its part)
    compute["sweep_wall_seconds"] = time.monotonic() - t_start
    # first: the trials' results outlive any report error
    trials.to_csv(sweep.root / "trials.csv", index=False)
    ok = trials[trials["status"] == "ok"]
    files = results.write_report(sweep, trials, pretrained) if len(ok) else {}
    files = selection.add_to_report(sweep, files)
    files["trials_csv"] = sweep.root / "trials.csv"
    best = ok.loc[ok["val_nme"].idxmin()].to_dict() if len(ok) else None  # chosen on validation, not test
    # The parent run's description, the first thing its MLflow page shows: the verdict and the tables (the
    # figure is an artifact beside them).
    summary = Path(files["summary_md"]).read_text() if "summary_md" in files else ""
    description = summary
    for figure in (Path(f).name for f in files.values() if Path(f).suffix == ".png"):
        description = description.replace(f"]({figure})", f"](comparison/{figure}) (artifact)")
    tracking.log_sweep_report(
        tracking_uri,
        parent,
        files,
        compute,
        n_trials=len(trials),
        n_failed=int((~trials["status"].isin(["ok", "stopped"])).sum()),
        best=best,
        description=description,
    )
    registered = results.register_best(sweep, ok, tracking_uri) if sweep.mode == "grid" else {}
    failed = trials[~trials["status"].isin(["ok", "stopped"])]
    if len(failed):
        print(
            f"WARNING: {len(failed)} trial(s) did not finish (run the same command again to retry them):\n"
            f"{failed.to_string()}",
            flush=True,
        )
    return {
        "parent_run_id": parent,
        "experiment": sweep.name,
        "files": files,
        "compute": compute,
        "trials": trials,
        "registered": registered,
    }
