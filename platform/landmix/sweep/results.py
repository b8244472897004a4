"""A sweep's bookkeeping: which grid cells finished (`cells/<cell>.json`, what makes a re-run skip them), the
report's rows (one per trial, never dropping one that failed) and the compute it spent."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from landmix.sweep.spec import METRIC, REPORTED, Cell, SweepConfig, grid_cells


def cell_result_path(sweep: SweepConfig, cell: Cell) -> Path:
    return sweep.root / "cells" / f"{cell.name}.json"


def write_cell_result(sweep: SweepConfig, cell: Cell, metrics: dict, seconds: float) -> None:
    """Record a finished grid cell (its final metrics); written last, so it means "done"."""
    path = cell_result_path(sweep, cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {**cell.row(), "nme": float(metrics[REPORTED]), "val_nme": float(metrics[METRIC]), "seconds": seconds,
           "epochs": int(metrics["epoch"]) + 1, "status": "ok",
           "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))}}  # fmt: skip
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=1, default=float))
    tmp.replace(path)


def finished_cells(sweep: SweepConfig) -> dict[str, dict]:
    """run name -> recorded result of every grid cell that already finished."""
    paths = {cell.name: cell_result_path(sweep, cell) for cell in grid_cells(sweep)}
    return {name: json.loads(path.read_text()) for name, path in paths.items() if path.exists()}


def trial_rows(results) -> pd.DataFrame:
    """One row per Tune trial (optimize mode): its values, test NME, seconds and status. A trial that ASHA
    stopped early has no test score (the test faces are scored only when a run finishes): status "stopped"."""
    rows = []
    for r in results:
        ok = r.metrics is not None and REPORTED in r.metrics and r.error is None
        stopped = not ok and r.error is None and r.metrics is not None and METRIC in r.metrics
        rows.append({
            **Cell.from_dict(r.config).row(r.metrics if ok else None),
            "nme": float(r.metrics[REPORTED]) if ok else math.nan,
            "val_nme": float(r.metrics[METRIC]) if ok or stopped else math.nan,
            "seconds": float(r.metrics.get("time_total_s", math.nan)) if ok else math.nan,
            "epochs": int(r.metrics.get("training_iteration", 0)) if ok else 0,
            "status": "ok" if ok else ("stopped" if stopped else "error" if r.error else "no metrics"),
            "run": f"trial-{r.metrics['trial_id']}" if r.metrics and "trial_id" in r.metrics else "",
        })  # fmt: skip
    return pd.DataFrame(rows)


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
            row = {k: v for k, v in done[cell.name].items() if k != "metrics"}
            rows.append(row | cell.row(done[cell.name]["metrics"]) | {"run": cell.name})
        else:
            rows.append({**cell.row(), "nme": math.nan, "seconds": math.nan, "epochs": 0,
                         "status": errors.get(cell.name, "not run"), "run": cell.name})  # fmt: skip
    return pd.DataFrame(rows)


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
