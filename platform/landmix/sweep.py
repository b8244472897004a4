"""Ray Tune over the real/synthetic mix: search space, trial driver, pretrain-once fan-out, resume.

Ray Train V2 composition: each Tune trial function builds and runs its own `TorchTrainer`
(`landmix.train.build_trainer`) with a `TuneReportCallback`, so per-epoch metrics reach Tune
(and ASHA) while the Train run keeps its own checkpoints under a stable name (`trial-<trial_id>`).

Pretrain once, fan out: synthetic pretraining runs once per distinct pretraining config (per seed)
in the driver before the Tuner starts; every `pretrain_finetune` trial starts from its checkpoint.
A finished pretraining leaves `pretrain/<name>/pretrain.json` in the sweep's folder, so a re-run skips it.

Where things go: Ray Train/Tune state under `{storage_path}/{sweep name}/{train,pretrain,tune}` (a folder,
or s3://... on a cluster), the sweep's own bookkeeping in `SweepConfig.root` on the driver's disk.

Resume: a finished grid cell writes `cells/<cell>.json` in the sweep's folder; running the same sweep again
runs only the cells without one, and a cell cut off mid-training resumes from its last epoch checkpoint
(its Train run name is stable). The optimising mode restores its Tuner (`Tuner.restore`). The MLflow
parent run id is kept in `parent_run_id` there, so the resumed sweep logs under the same parent.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from landmix import config as cfg
from landmix import settings

N_REAL_CHOICES = (0, 10, 25, 50, 100, 250, 500, -1)  # -1 = all real training faces
METRIC = "val_nme"  # what Tune selects and stops trials on: NME on the validation faces, never the test faces
REPORTED = "test_nme"  # what the report compares: NME on the held-out test faces, scored once per finished trial


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: which cells to train, how, and where results go.

    name: MLflow experiment and storage folder name; a re-run with the same name resumes.
    mode: "grid" (every strategy x n_real x alpha x seed cell) or "optimize" (Optuna + ASHA).
    strategies / n_real / alphas / seeds: the grid's axes (alphas apply to "mixed" only).
    base: the run preset every trial starts from (model, epochs, samples per epoch...).
    pretrain_epochs: epochs of the once-per-seed synthetic pretraining for "pretrain_finetune".
    num_samples: trials of the optimising mode; grace_period: ASHA's minimum epochs.
    budget_n_real: optimising mode only: the real faces you have (the search picks the mix for it).
    """

    name: str = "landmix-mix"
    mode: str = "grid"
    strategies: tuple[str, ...] = cfg.STRATEGIES
    n_real: tuple[int, ...] = (10, 50, 250)
    alphas: tuple[float, ...] = (0.5,)
    seeds: tuple[int, ...] = (0, 1, 2)
    lr: float = 2e-3
    augment_strength: float = 0.5
    pretrain_epochs: int = 6
    num_samples: int = 12
    grace_period: int = 2
    budget_n_real: int = 50
    storage_path: str = field(default_factory=settings.storage_path)
    base: cfg.RunSpec = field(default_factory=cfg.cpu)
    max_concurrent_trials: int = 0  # 0 = from the cluster's CPUs/GPUs
    translator: str = ""  # the .npz that translated the synthetic labels (logged on the parent run); "" = fixed
    translator_real_faces: int = 0  # real training faces the translator's real-fitted stage saw (-1 = all)

    def __post_init__(self):
        if self.mode not in ("grid", "optimize"):
            raise ValueError(f"sweep.mode={self.mode!r}; choose 'grid' or 'optimize'")
        for s in self.strategies:
            if s not in cfg.STRATEGIES:
                raise ValueError(f"sweep.strategies has {s!r}; allowed: {list(cfg.STRATEGIES)}")
        for n in self.n_real:
            if n not in N_REAL_CHOICES:
                raise ValueError(f"sweep.n_real has {n}; allowed: {list(N_REAL_CHOICES)} (-1 = all)")

    @property
    def root(self) -> Path:
        """The sweep's own bookkeeping, on the driver's disk: sweep.json, parent_run_id, cells/, report/.

        Under storage_path when that is a folder; under the project's runs/ (the head node, where the
        driver runs and a resumed sweep runs again) when storage_path is a URI such as s3://...
        """
        local = settings.PROJECT_ROOT / "runs" if "://" in self.storage_path else Path(self.storage_path)
        return local / self.name

    def ray_storage(self, part: str) -> str:
        """Ray Train/Tune storage of one part of the sweep ("train", "pretrain", "tune"): a folder or a URI."""
        return f"{self.storage_path.rstrip('/')}/{self.name}/{part}"


def grid_cells(sweep: SweepConfig) -> list[dict]:
    """Every trial of the grid: one dict per (strategy, n_real, alpha, seed) that makes sense.

    real_only, mixed and pretrain_finetune need real faces (n_real != 0); synthetic_only uses none.
    alpha is the synthetic share of each batch and only varies for "mixed".
    """
    cells = []
    for seed in sweep.seeds:
        for strategy in sweep.strategies:
            if strategy == "synthetic_only":
                cells.append(dict(strategy=strategy, n_real=0, alpha=1.0, seed=seed))
                continue
            for n in (n for n in sweep.n_real if n != 0):
                alphas = sweep.alphas if strategy == "mixed" else (0.0,)
                cells += [dict(strategy=strategy, n_real=n, alpha=a, seed=seed) for a in alphas]
    return cells


def cell_run_name(cell: dict) -> str:
    alpha = f"-a{cell['alpha']:g}" if cell["strategy"] == "mixed" else ""
    n = "all" if cell["n_real"] == -1 else cell["n_real"]
    return f"{cell['strategy']}-n{n}{alpha}-s{cell['seed']}"


def trial_spec(sweep: SweepConfig, cell: dict, pretrained: dict[int, str], parent_run_id: str,
               tracking_uri: str, train_name: str) -> cfg.RunSpec:  # fmt: skip
    """The RunSpec of one trial: the base preset with the cell's strategy, n_real, alpha and seed."""
    base = sweep.base
    strategy = cell["strategy"]
    data = replace(
        base.data,
        strategy="real_only" if strategy == "pretrain_finetune" else strategy,
        # Cells that draw no synthetic sample do not read the synthetic shards (a fine-tune's synthetic
        # data is its pretraining's, recorded in that run).
        synthetic_shards=base.data.synthetic_shards if strategy in ("synthetic_only", "mixed") else "",
        n_real=0 if cell["n_real"] == -1 else cell["n_real"],
        alpha=float(cell["alpha"]),
        augment_strength=float(cell.get("augment_strength", sweep.augment_strength)),
        pretrain_epochs=0,
    )
    train = replace(
        base.train,
        seed=int(cell["seed"]),
        lr=float(cell.get("lr", sweep.lr)),
        init_checkpoint=pretrained.get(int(cell["seed"]), "") if strategy == "pretrain_finetune" else "",
        storage_path=sweep.ray_storage("train"),
        name=train_name,
        experiment=sweep.name,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
        run_label=cell_run_name(cell),
        strategy_label=strategy,
    )
    return replace(base, data=data, train=train)


def pretrain_spec(sweep: SweepConfig, seed: int, tracking_uri: str, parent_run_id: str) -> cfg.RunSpec:
    """Synthetic-only pretraining for `pretrain_finetune` trials of one seed."""
    base = sweep.base
    spec = replace(
        base,
        data=replace(base.data, strategy="synthetic_only", n_real=0, alpha=1.0, pretrain_epochs=0,
                     augment_strength=sweep.augment_strength),
        train=replace(base.train, seed=seed, lr=sweep.lr, epochs=sweep.pretrain_epochs, init_checkpoint="",
                      storage_path=sweep.ray_storage("pretrain"), experiment=sweep.name,
                      tracking_uri=tracking_uri, parent_run_id=parent_run_id, strategy_label="pretrain"),
    )  # fmt: skip
    # Keyed by the shards' content too: shards re-prepared under the same path (a new translator) re-pretrain.
    # Where it is tracked does not change what it trains: one pretraining serves every parent run.
    untracked = replace(spec, train=replace(spec.train, tracking_uri="", parent_run_id=""))
    ident = {"spec": cfg.to_dict(untracked), "synthetic": shards_key(spec.data.synthetic_shards)}
    key = hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:10]
    name = f"pretrain-s{seed}-{key}"
    return replace(spec, train=replace(spec.train, name=name, run_label=name))


def shards_key(folder: str) -> str:
    """What a `landmix prepare` folder was built from and holds (a hash of its prepare.json), "" when unknown."""
    from landmix.train import prepare_summary

    try:
        summary = prepare_summary(folder)
    except FileNotFoundError:  # no shards (yet)
        return ""
    return hashlib.sha1(summary.read_bytes()).hexdigest()[:12] if summary else ""


def pretrain(sweep: SweepConfig, seed: int, tracking_uri: str, parent_run_id: str) -> dict:
    """The synthetic pretraining of one seed, run once: {"checkpoint": uri, "seconds": s}, kept in a marker
    file under the sweep's folder so that a re-run (or a resumed sweep) finds it."""
    from landmix import checkpoint
    from landmix import train as train_lib

    spec = pretrain_spec(sweep, seed, tracking_uri, parent_run_id)
    marker = sweep.root / "pretrain" / spec.train.name / "pretrain.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        print(f"pretraining seed {seed}: reusing {info['checkpoint']}", flush=True)
        return info
    t0 = time.monotonic()
    result = train_lib.build_trainer(spec).fit()
    if result.checkpoint is None:
        raise RuntimeError(f"pretraining {spec.train.name} ended without a checkpoint: {result.error}")
    info = {"checkpoint": checkpoint.checkpoint_uri(result.checkpoint), "seconds": time.monotonic() - t0,
            "val_nme": result.metrics.get(METRIC)}  # fmt: skip
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(info))
    return info


def fit_real_translator(sweep: SweepConfig, n_faces: int, tracking_uri: str = "none", offset_only: bool = True) -> Path:
    """The label translator's second stage, fitted on real faces, chained after the current one.

    Pretrains a synthetic-only model on the sweep's synthetic shards (the sweep's pretraining config, first
    seed, not tracked in MLflow; its marker makes a re-run reuse it), fits IBUG68 as that model
    places the points -> IBUG68 as the 300-W annotators did on the first `n_faces` real training faces in the
    n_real order (0 = all; the held-out faces are never used; a per-point offset unless offset_only=False:
    see `translate.fit_on_model`), and saves translator-then-real-fit as one
    chain under the sweep's folder, with a JSON report beside it (held-out NME before/after). Cached by the
    checkpoint and n_faces. Re-prepare the synthetic shards with the returned .npz (`datasets.build_inputs`).
    """
    import ray.train

    from landmix import translate

    info = pretrain(sweep, sweep.seeds[0], tracking_uri, "")
    base = sweep.translator or ""
    key = hashlib.sha1(json.dumps([info["checkpoint"], n_faces, base, offset_only]).encode()).hexdigest()[:10]
    kind = "offset" if offset_only else "ridge"
    out = sweep.root / "translators" / f"real{n_faces or 'all'}-{kind}-{key}.npz"
    if out.exists():
        return out
    with ray.train.Checkpoint(info["checkpoint"]).as_directory() as folder:  # a folder, or s3://... on a cluster
        real_stage, report = translate.fit_on_model(folder, sweep.base.data.real_shards, n_faces,
                                                    sweep.base.data.split_seed, offset_only)
    tr = translate.chain(translate.load_or_fixed(base), real_stage)
    tr.save(out)
    b, a = report["held_out_nme_before"]["all"], report["held_out_nme_after"]["all"]
    out.with_suffix(".json").write_text(json.dumps(report | {"base": base, "saved_version": tr.version}, indent=1))
    print(f"label translator fitted on {report['fit_faces']} real training faces: the synthetic-trained model's "
          f"held-out NME {b} -> {a} %; {tr.version} -> {out}", flush=True)
    return out


def run_pretraining(sweep: SweepConfig, tracking_uri: str, parent_run_id: str) -> tuple[dict[int, str], float]:
    """Run (or find) one synthetic pretraining per seed; returns seed -> checkpoint dir and seconds spent."""
    out, spent = {}, 0.0
    needed = "pretrain_finetune" in sweep.strategies  # the optimising mode samples from the same strategies
    if not needed:
        return out, spent
    for seed in sweep.seeds:
        info = pretrain(sweep, seed, tracking_uri, parent_run_id)
        out[seed] = info["checkpoint"]
        spent += info["seconds"]
    return out, spent


def make_trial_fn(sweep: SweepConfig, pretrained: dict[int, str], parent_run_id: str, tracking_uri: str):
    """The Tune trial function: builds and runs its own TorchTrainer (Ray Train V2 composition).

    Grid cells train under a stable Train run name (`cell_run_name`), so a cell cut off by a killed
    driver resumes from its last epoch checkpoint, and write `cells/<name>.json` when they finish, which
    is what makes a re-run skip them. Optimising trials are named by their Tune trial id.
    """

    def trial(config: dict) -> None:
        from ray import tune
        from ray.tune.integration.ray_train import TuneReportCallback

        from landmix import train as train_lib

        cell = config.get("cell", config)  # grid mode: {"cell": {...}}; optimize mode: the sampled values
        name = cell_run_name(cell) if "cell" in config else f"trial-{tune.get_context().get_trial_id()}"
        spec = trial_spec(sweep, cell, pretrained, parent_run_id, tracking_uri, name)
        if "cell" not in config:  # sampled values can repeat a grid name: name the MLflow run by the trial
            spec = replace(spec, train=replace(spec.train, run_label=name))
        t0 = time.monotonic()
        result = train_lib.build_trainer(spec, callbacks=[TuneReportCallback()]).fit()
        if result.error is not None:
            raise result.error
        if "cell" in config:
            write_cell_result(sweep, cell, result.metrics, time.monotonic() - t0)

    return trial


def cell_result_path(sweep: SweepConfig, cell: dict) -> Path:
    return sweep.root / "cells" / f"{cell_run_name(cell)}.json"


def write_cell_result(sweep: SweepConfig, cell: dict, metrics: dict, seconds: float) -> None:
    """Record a finished grid cell (its final-epoch metrics); written last, so it means "done"."""
    path = cell_result_path(sweep, cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {**_cell(cell), "nme": float(metrics[REPORTED]), "val_nme": float(metrics[METRIC]), "seconds": seconds, "epochs": int(metrics["epoch"]) + 1,
           "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))}, "status": "ok"}  # fmt: skip
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=1, default=float))
    tmp.replace(path)


def finished_cells(sweep: SweepConfig) -> dict[str, dict]:
    """run name -> recorded result of every grid cell that already finished."""
    out = {}
    for cell in grid_cells(sweep):
        path = cell_result_path(sweep, cell)
        if path.exists():
            out[cell_run_name(cell)] = json.loads(path.read_text())
    return out


def param_space(sweep: SweepConfig, cells: list[dict] | None = None) -> dict:
    from ray import tune

    if sweep.mode == "grid":
        return {"cell": tune.grid_search(grid_cells(sweep) if cells is None else cells)}
    strategies = [s for s in sweep.strategies if s != "synthetic_only" or sweep.budget_n_real == 0]
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


def _tuner(sweep: SweepConfig, trial_fn, cells: list[dict] | None = None):
    """The Tuner of this run of the sweep.

    Grid mode: a fresh Tuner over the cells not finished yet, in `tune/attempt-<k>` (finished cells are
    known from their `cells/*.json`, so a re-run never redoes them, and Tune's concurrency limit holds:
    a restored Tuner would start all of its pending trials at once). Optimize mode: `Tuner.restore` of
    `tune/optimize` when it exists, which keeps the Optuna study and ASHA state.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    # The trial function only waits on its TorchTrainer: it holds no CPU (the workers and Ray Data's read
    # tasks need them all on a small machine), just memory, which Tune needs to place it at all.
    trainable = tune.with_resources(trial_fn, {"CPU": 0, "memory": 256 * 1024**2})
    tune_config = tune.TuneConfig(metric=METRIC, mode="min", max_concurrent_trials=concurrent_trials(sweep))
    if sweep.mode == "grid":  # each run of the sweep is a new Tune experiment: attempt-0, attempt-1, ...
        attempts = sweep.root / "tune_attempts.txt"
        name = f"attempt-{len(attempts.read_text().split()) if attempts.exists() else 0}"
        with attempts.open("a") as f:
            f.write(name + "\n")
    else:
        name = "optimize"
        exp_path = f"{sweep.ray_storage('tune')}/{name}"
        if tune.Tuner.can_restore(exp_path):
            print(f"resuming sweep from {exp_path}", flush=True)
            return tune.Tuner.restore(exp_path, trainable=trainable, resume_unfinished=True,
                                      resume_errored=True)  # fmt: skip
        tune_config = replace(
            tune_config,
            num_samples=sweep.num_samples,
            search_alg=OptunaSearch(seed=sweep.seeds[0]) if (OptunaSearch := _optuna()) else None,
            scheduler=ASHAScheduler(time_attr="training_iteration", max_t=sweep.base.train.epochs,
                                    grace_period=sweep.grace_period, reduction_factor=2),
        )  # fmt: skip
    return tune.Tuner(
        trainable,
        param_space=param_space(sweep, cells),
        tune_config=tune_config,
        run_config=tune.RunConfig(name=name, storage_path=sweep.ray_storage("tune")),
    )


def _optuna():
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch


def _trial_rows(results) -> pd.DataFrame:
    """One row per Tune trial (optimize mode): its values, test NME, seconds and status. A trial that ASHA
    stopped early has no test score (the test faces are scored only when a run finishes): status "stopped"."""
    rows = []
    for r in results:
        c = r.config.get("cell", r.config)
        ok = r.metrics is not None and REPORTED in r.metrics and r.error is None
        stopped = not ok and r.error is None and r.metrics is not None and METRIC in r.metrics
        rows.append({
            **_cell(c, r.metrics if ok else None),
            "nme": float(r.metrics[REPORTED]) if ok else math.nan,
            "val_nme": float(r.metrics[METRIC]) if ok or stopped else math.nan,
            "seconds": float(r.metrics.get("time_total_s", math.nan)) if ok else math.nan,
            "epochs": int(r.metrics.get("training_iteration", 0)) if ok else 0,
            "status": "ok" if ok else ("stopped" if stopped else "error" if r.error else "no metrics"),
            "run": f"trial-{r.metrics['trial_id']}" if r.metrics and "trial_id" in r.metrics else "",
        })  # fmt: skip
    return pd.DataFrame(rows)


def _grid_rows(sweep: SweepConfig, results) -> pd.DataFrame:
    """One row per grid cell: the recorded result of finished cells; the Tune error of the others."""
    done = finished_cells(sweep)
    errors = {}
    for r in results or []:
        c = r.config.get("cell", r.config)
        if cell_run_name(c) not in done:
            errors[cell_run_name(c)] = "error" if r.error else "no metrics"
    rows = []
    for cell in grid_cells(sweep):
        name = cell_run_name(cell)
        if name in done:
            row = {k: v for k, v in done[name].items() if k != "metrics"} | {"run": name}
            rows.append(row | {"n_real": _cell(row, done[name]["metrics"])["n_real"]})
        else:
            rows.append({**_cell(cell), "nme": math.nan, "seconds": math.nan, "epochs": 0,
                         "status": errors.get(name, "not run"), "run": name})  # fmt: skip
    return pd.DataFrame(rows)


def _cell(c: dict, metrics: dict | None = None) -> dict:
    """A trial's values as a report row. With its metrics, n_real = -1 ("all") becomes the number of real
    faces it trained on (`n_real_faces`), which the report plots and interpolates."""
    keys = ("strategy", "n_real", "alpha", "seed", "lr", "augment_strength")
    out = {k: c[k] for k in keys if k in c}
    if metrics and out.get("n_real") == -1:
        out["n_real"] = int(metrics.get("n_real_faces", -1))
    out["alpha"] = float(out["alpha"]) if out.get("strategy") == "mixed" else math.nan
    return out


def compute_accounting(trials: pd.DataFrame, pretrain_seconds: float, n_pretrain: int) -> dict[str, float]:
    """The sweep's compute beside a naive grid that pretrains inside every fine-tune trial."""
    finetunes = int((trials["strategy"] == "pretrain_finetune").sum()) if len(trials) else 0
    trial_s = float(trials["seconds"].fillna(0).sum()) if len(trials) else 0.0
    per_pretrain = pretrain_seconds / n_pretrain if n_pretrain else 0.0
    return {
        "compute_trial_seconds": trial_s,
        "compute_pretrain_seconds": pretrain_seconds,
        "compute_total_seconds": trial_s + pretrain_seconds,
        "compute_naive_grid_seconds": trial_s + finetunes * per_pretrain,
    }


def run_sweep(sweep: SweepConfig) -> dict:
    """Run (or resume) the sweep, then attach the comparison to the MLflow parent run.

    Returns a summary dict: parent run id, experiment, report files, compute accounting, trial table.
    """

    from landmix import report, tracking

    settings.init_ray()
    sweep.root.mkdir(parents=True, exist_ok=True)
    (sweep.root / "sweep.json").write_text(json.dumps(asdict(sweep), indent=2, default=str))
    tracking_uri = tracking.resolve_uri(sweep.base.train.tracking_uri)
    parent = tracking.sweep_parent_run(tracking_uri, sweep.name, sweep.root / "parent_run_id",
                                       params={"sweep." + k: v for k, v in asdict(sweep).items() if k != "base"}
                                       | {f"base.{k}": v for k, v in cfg.flat_params(sweep.base).items()})  # fmt: skip
    if sweep.translator and tracking_uri:
        for path in (Path(sweep.translator), Path(sweep.translator).with_suffix(".json")):  # .json: its fit report
            if path.exists():
                tracking.log_file(tracking_uri, parent, path, "translator")
    pretrained, pretrain_s = run_pretraining(sweep, tracking_uri, parent)
    trial_fn = make_trial_fn(sweep, pretrained, parent, tracking_uri)
    if sweep.mode == "grid":
        done = finished_cells(sweep)
        todo = [c for c in grid_cells(sweep) if cell_run_name(c) not in done]
        print(f"sweep {sweep.name}: {len(done)} cell(s) already finished, {len(todo)} to run", flush=True)
        results = _tuner(sweep, trial_fn, todo).fit() if todo else None
        trials = _grid_rows(sweep, results)
    else:
        trials = _trial_rows(_tuner(sweep, trial_fn).fit())
    ok = trials[trials["status"] == "ok"]
    compute = compute_accounting(trials, pretrain_s, len(pretrained))
    trials.to_csv(sweep.root / "trials.csv", index=False)  # first: the trials' results outlive any report error
    files = report.write_report(ok, sweep.root / "report") if len(ok) else {}
    files["trials_csv"] = sweep.root / "trials.csv"
    best = ok.loc[ok["val_nme"].idxmin()].to_dict() if len(ok) else None  # chosen on validation, not test
    tracking.log_sweep_report(tracking_uri, parent, files, compute, n_trials=len(trials),
                              n_failed=len(trials) - len(ok), best=best)  # fmt: skip
    failed = trials[trials["status"] != "ok"]
    if len(failed):
        print(f"WARNING: {len(failed)} trial(s) did not finish (run the same command again to retry them):\n"
              f"{failed.to_string()}", flush=True)  # fmt: skip
    return {"parent_run_id": parent, "experiment": sweep.name, "files": files, "compute": compute, "trials": trials}


# ----------------------------------------------------------------------------------------- presets
def smoke(real_shards: str = "", synthetic_shards: str = "", storage_path: str | None = None) -> SweepConfig:
    """A complete small sweep in a few minutes on 2 cores: every strategy, n_real 10 and 50, one seed."""
    base = cfg.smoke()
    base = replace(
        base,
        data=replace(base.data, real_shards=real_shards or base.data.real_shards,
                     synthetic_shards=synthetic_shards or base.data.synthetic_shards),
        train=replace(base.train, num_workers=1, epochs=2),
    )  # fmt: skip
    return SweepConfig(
        name="landmix-smoke", n_real=(10, 50), alphas=(0.5,), seeds=(0,), pretrain_epochs=1, base=base,
        storage_path=storage_path or settings.storage_path(),
    )  # fmt: skip


def study(real_shards: str = "", synthetic_shards: str = "", storage_path: str | None = None) -> SweepConfig:
    """The seed study on real faces: 4 strategies x n_real {10, 50, 250, all} x 3 seeds, ~1 h on 2 cores."""
    base = cfg.cpu()
    base = replace(
        base,
        data=replace(base.data, real_shards=real_shards or base.data.real_shards,
                     synthetic_shards=synthetic_shards or base.data.synthetic_shards, samples_per_epoch=512),
        train=replace(base.train, num_workers=1, cpus_per_worker=1, epochs=6, time_budget_s=0),
    )  # fmt: skip
    return SweepConfig(
        name="landmix-study", n_real=(10, 50, 250, -1), alphas=(0.5,), seeds=(0, 1, 2), pretrain_epochs=12,
        base=base, storage_path=storage_path or settings.storage_path(),
    )  # fmt: skip


PRESETS = {"smoke": smoke, "study": study}
