"""A sweep's bookkeeping: which grid cells finished (`cells/<cell>.json`, what makes a re-run skip them), the
report's rows (one per trial, never dropping one that failed), the compute it spent, and what a finished sweep
leaves behind: its report and each strategy's best model in MLflow's model registry.

A cell's file holds its final metrics, its compute, the real faces it trained on (`faces.train`), was
validated on (`faces.val`) and tested on (`faces.test`), and each test face's error (`faces.test_errors`, the
report's bootstrap resamples them). A mixing ratio stopped early by ASHA is recorded too (status "stopped",
no test score): a re-run does not train it again."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from landmix.sweep.spec import FROM_PRETRAINING, METRIC, REPORTED, Cell, SweepConfig, grid_cells


def cell_result_path(sweep: SweepConfig, cell: Cell) -> Path:
    return sweep.root / "cells" / f"{cell.name}.json"


def from_checkpoint(result) -> dict:
    """{"metrics": the final numeric metrics, "faces": the faces file of the final checkpoint} of a Ray Train
    Result: what a cell's file keeps of a finished training run."""
    import pyarrow.fs

    with result.checkpoint.as_directory() as folder:
        return _final(pyarrow.fs.LocalFileSystem(), str(folder)) | {"metrics": _numeric(result.metrics)}


def _numeric(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _final(fs, folder: str) -> dict:
    """{"metrics", "faces", "run_id"} of a final checkpoint folder on filesystem `fs` (a pyarrow.fs
    FileSystem): meta.json's metrics, the faces file."""
    from landmix.checkpoint import META_FILE
    from landmix.train import FACES_FILE

    def read(name: str) -> dict:
        with fs.open_input_stream(f"{folder}/{name}") as f:
            return json.loads(f.read())

    meta = read(META_FILE)
    return {
        "metrics": _numeric(meta.get("metrics", {})),
        "faces": read(FACES_FILE),
        "run_id": meta.get("mlflow_run_id") or "",
    }


def finished_train_run(sweep: SweepConfig, cell: Cell) -> dict | None:
    """The end of a cell's Train run as its final checkpoint holds it ({"metrics", "faces", "run_id"}: the faces
    file is written into the last checkpoint only), or None where the run did not get there. A trial that ASHA
    stopped while its workers were finishing their last epoch ended all the same. The checkpoints are read
    where Ray Train wrote them, through the filesystem Ray resolves the storage path to (pyarrow's
    `FileSystem.from_uri`: a folder, file://, s3://, gs://...)."""
    import pyarrow.fs

    from landmix.train import FACES_FILE

    storage = sweep.ray_storage("train")
    fs, base = pyarrow.fs.FileSystem.from_uri(storage if "://" in storage else str(Path(storage).resolve()))
    runs = fs.get_file_info(pyarrow.fs.FileSelector(f"{base}/{cell.name}", allow_not_found=True))
    folders = sorted(i.path for i in runs if i.type == pyarrow.fs.FileType.Directory)
    finals = [
        f
        for f in folders
        if Path(f).name.startswith("checkpoint_")
        and fs.get_file_info(f"{f}/{FACES_FILE}").type == pyarrow.fs.FileType.File
    ]
    final = _final(fs, finals[-1]) if finals else None
    return final if final and REPORTED in final["metrics"] else None


def write_cell_result(
    sweep: SweepConfig,
    cell: Cell,
    metrics: dict,
    seconds: float,
    faces: dict | None = None,
    status: str = "ok",
    **extra,
) -> None:
    """Record a grid cell that is done (its final metrics, the faces it used); written last, so it means "done".
    status "stopped": a mixing ratio that ASHA stopped early (validation NME only, no test score)."""
    path = cell_result_path(sweep, cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {
        **cell.row(),
        "nme": float(metrics[REPORTED]) if status == "ok" else math.nan,
        "val_nme": float(metrics.get(METRIC, math.nan)),
        "seconds": seconds,
        "epochs": int(metrics.get("epoch", -1)) + 1,
        "status": status,
        **extra,
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        "faces": faces or {},
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=1, default=float))
    tmp.replace(path)


def is_finished(sweep: SweepConfig, cell: Cell) -> bool:
    return cell_result_path(sweep, cell).exists()


def finished_cells(sweep: SweepConfig) -> dict[str, dict]:
    """run name -> recorded result of every grid cell that is done (finished, or stopped early by ASHA)."""
    paths = {cell.name: cell_result_path(sweep, cell) for cell in grid_cells(sweep)}
    return {name: json.loads(path.read_text()) for name, path in paths.items() if path.exists()}


def per_face_test_errors(sweep: SweepConfig) -> dict[str, np.ndarray]:
    """run name -> each test face's NME, for every finished cell (the same faces in the same order in all)."""
    done = finished_cells(sweep)
    return {
        name: np.asarray(r["faces"]["test_errors"], float)
        for name, r in done.items()
        if r["status"] == "ok" and r.get("faces", {}).get("test_errors")
    }


def trial_rows(results) -> pd.DataFrame:
    """One row per Tune trial (optimize mode): its values, test NME, seconds and status. A trial that ASHA
    stopped early has no test score (the test faces are scored only when a run finishes): status "stopped"."""
    rows = []
    for r in results:
        ok = r.metrics is not None and REPORTED in r.metrics and r.error is None
        stopped = not ok and r.error is None and r.metrics is not None and METRIC in r.metrics
        rows.append(
            {
                **Cell.from_dict(r.config).row(r.metrics if ok else None),
                "nme": float(r.metrics[REPORTED]) if ok else math.nan,
                "val_nme": float(r.metrics[METRIC]) if ok or stopped else math.nan,
                "seconds": float(r.metrics.get("time_total_s", math.nan)) if ok else math.nan,
                "epochs": int(r.metrics.get("training_iteration", 0)) if ok else 0,
                "status": "ok" if ok else ("stopped" if stopped else "error" if r.error else "no metrics"),
                "run": f"trial-{r.metrics['trial_id']}" if r.metrics and "trial_id" in r.metrics else "",
            }
        )
    return pd.DataFrame(rows)


def ended_by(done: dict) -> str:
    """Why a finished training run ended: "patience" (validation NME stopped improving: converged), "budget"
    (its time budget or epochs ran out first), "asha" (a mixing ratio stopped early); "" for a fit."""
    m = done.get("metrics", {})
    if done["status"] == "stopped":
        return "asha"
    if "planned_epochs" not in m:
        return ""
    return "patience" if m["epoch"] + 1 < m["planned_epochs"] else "budget"


def grid_rows(sweep: SweepConfig, results) -> pd.DataFrame:
    """One row per grid cell: the recorded result of finished cells; the Tune error of the others."""
    done = finished_cells(sweep)
    errors = {}
    for r in results or []:
        name = Cell.from_dict(r.config["cell"]).name
        if name not in done:
            errors[name] = "error" if r.error else "no metrics"
    rows = []
    for cell in grid_cells(sweep):
        if cell.name in done:
            row = {k: v for k, v in done[cell.name].items() if k not in ("metrics", "faces")}
            row["ended_by"] = ended_by(done[cell.name])
            rows.append(row | cell.row(done[cell.name]["metrics"]) | {"run": cell.name})
        else:
            rows.append(
                {
                    **cell.row(),
                    "nme": math.nan,
                    "seconds": math.nan,
                    "epochs": 0,
                    "status": errors.get(cell.name, "not run"),
                    "run": cell.name,
                }
            )
    return pd.DataFrame(rows)


def compute_accounting(trials: pd.DataFrame, pretrain_seconds: float, n_pretrain: int) -> dict[str, float]:
    """The sweep's compute beside a naive grid: one that trains a synthetic model inside every cell that uses
    one (each fine-tune, each label adaptation, the data-adaptation cell) and runs every mixing ratio to its end
    (a stopped ratio costs what the finished ratios of its n_real and seed cost on average).

    trials: one row per cell (strategy, n_real, seed, seconds, status); synthetic_only rows are the pretraining
    itself (counted once, in pretrain_seconds) and label_adaptation rows the seconds of their fit."""
    if not len(trials):
        return {
            "compute_trial_seconds": 0.0,
            "compute_pretrain_seconds": pretrain_seconds,
            "compute_total_seconds": pretrain_seconds,
            "compute_naive_grid_seconds": pretrain_seconds,
        }
    own = trials[trials["strategy"] != "synthetic_only"]
    trial_s = float(own["seconds"].fillna(0).sum())
    per_pretrain = pretrain_seconds / n_pretrain if n_pretrain else 0.0
    uses_pretraining = int(trials["strategy"].isin(FROM_PRETRAINING).sum())
    mixing = trials[trials["strategy"] == "mixed"]
    unfinished = 0.0
    for _, group in mixing.groupby(["n_real", "seed"]):
        full = group.loc[group["status"] == "ok", "seconds"]
        stopped = group.loc[group["status"] == "stopped", "seconds"].fillna(0)
        if len(full) and len(stopped):
            unfinished += float((full.mean() - stopped).clip(lower=0).sum())
    return {
        "compute_trial_seconds": trial_s,
        "compute_pretrain_seconds": pretrain_seconds,
        "compute_total_seconds": trial_s + pretrain_seconds,
        "compute_naive_grid_seconds": trial_s + uses_pretraining * per_pretrain + unfinished,
    }


def write_report(sweep: SweepConfig, trials, pretrained: dict[int, dict]) -> dict:
    """The comparison's files from the grid's cells (per-face test errors: bootstrap intervals), or from the
    optimising mode's trials (no per-face errors kept: intervals over seeds only)."""
    from landmix import report_files

    rows = trials.copy()
    # compute behind each model: a derived arm's includes its pretraining
    if "seconds" in rows and pretrained:
        per_seed = {seed: info["seconds"] for seed, info in pretrained.items()}
        # that one is it
        derived = rows["strategy"].isin(FROM_PRETRAINING) & (rows["strategy"] != "synthetic_only")
        rows.loc[derived, "seconds"] += rows.loc[derived, "seed"].map(per_seed).fillna(0)
    errors = per_face_test_errors(sweep) if sweep.mode == "grid" else None
    return report_files.write_report(rows, sweep.root / "report", errors=errors)


def register_best(sweep: SweepConfig, ok, tracking_uri: str | None) -> dict[str, dict]:
    """Register the best model of each strategy (lowest validation NME over its finished cells) in MLflow's
    model registry as `<sweep>.<strategy>`, alias "best", tagged with its metrics and the data it saw."""
    from landmix import registry

    out = {}
    if tracking_uri is None:
        return out
    for strategy, rows in ok.groupby("strategy"):
        best = rows.loc[rows["val_nme"].idxmin()]
        run_id = best.get("mlflow_run_id") if "mlflow_run_id" in rows else None
        if not isinstance(run_id, str) or not run_id:
            continue
        tags = {
            "strategy": strategy,
            "n_real": int(best["n_real"]),
            "seed": int(best["seed"]),
            "cell": best["run"],
            "val_nme": float(best["val_nme"]),
            "test_nme": float(best["nme"]),
            "sweep": sweep.name,
            "real_shards": sweep.base.data.real_shards,
            "synthetic_shards": sweep.base.data.synthetic_shards,
            "translator": sweep.translator,
        }
        if strategy == "mixed":
            tags["alpha"] = float(best["alpha"])
        name = registry.registered_model_name(sweep.name, strategy)
        out[strategy] = registry.register_model(
            tracking_uri,
            name,
            run_id,
            tags=tags,
            description=f"The best {strategy} model of sweep {sweep.name} by validation NME: cell {best['run']}, "
            f"{int(best['n_real'])} real faces, test NME {float(best['nme']) * 100:.2f} %.",
        )
        print(f"registered {name} version {out[strategy]['version']} ({best['run']})", flush=True)
    return out
