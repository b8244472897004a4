"""The label-adaptation arm: each seed's synthetic-only model, its outputs translated by a map fitted on n_real
real training faces (`relabel.adapt_outputs`). No training run: the model predicts every real face once per
seed, and each n_real is a fit on the first n_real of them, chosen on the validation faces, scored on the test
faces. Each cell is an MLflow run of its own under the sweep's parent (its checkpoint folder = the synthetic
model's + `translator.npz`), and a `cells/<cell>.json` like every other cell.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from landmix.pool import Pool
from landmix.sweep import results
from landmix.sweep.spec import REPORTED, Cell, SweepConfig, grid_cells


def run_label_adaptation(
    sweep: SweepConfig, pretrained: dict[int, dict], real: Pool, tracking_uri: str | None, parent_run_id: str
) -> None:
    """Fit, score and record every label-adaptation cell not done yet (`real`: the sweep's decoded real faces)."""
    import ray.train

    from landmix import checkpoint, relabel

    todo = [
        c for c in grid_cells(sweep) if c.strategy == "label_adaptation" and not results.is_finished(sweep, c)
    ]
    for seed in sorted({c.seed for c in todo}):
        info = pretrained[seed]
        with ray.train.Checkpoint(info["checkpoint"]).as_directory() as folder:
            t0 = time.monotonic()
            model, _ = checkpoint.load(folder)
            images, gt = real.model_inputs(model.cfg.image_size)
            pred = checkpoint.predict(model, images)
            cells = [c for c in todo if c.seed == seed]
            predict_s = (time.monotonic() - t0) / len(cells)  # the seed's predictions, shared by its cells
            for cell in cells:
                t0 = time.monotonic()
                fit = relabel.adapt_outputs(pred, gt, real.ids, cell.n_real, sweep.base.data)
                metrics = {
                    "val_nme": float(fit["val_errors"].mean()),
                    REPORTED: float(fit["test_errors"].mean()),
                    "n_real_faces": len(fit["faces"]["train"]),
                    "epoch": info["metrics"].get("epoch", 0),
                }
                run_id = _track(sweep, cell, folder, fit, metrics, info, tracking_uri, parent_run_id)
                seconds = time.monotonic() - t0 + predict_s
                faces = fit["faces"] | {"test_errors": fit["test_errors"].tolist()}
                results.write_cell_result(
                    sweep, cell, metrics, seconds, faces, translator=fit["kind"], mlflow_run_id=run_id
                )
                print(
                    f"label adaptation {cell.name}: {fit['kind']} map on {metrics['n_real_faces']} faces, "
                    f"val {metrics['val_nme'] * 100:.2f} %, test {metrics[REPORTED] * 100:.2f} %",
                    flush=True,
                )


def _track(
    sweep: SweepConfig,
    cell: Cell,
    folder: str,
    fit: dict,
    metrics: dict,
    info: dict,
    tracking_uri: str | None,
    parent_run_id: str,
) -> str:
    """The cell's MLflow run: params, metrics, per-face test errors, and its model (checkpoint + translator)."""
    if tracking_uri is None:
        return ""
    from landmix import tracking

    tags = {"landmix.strategy": "label_adaptation", "landmix.synthetic_model": info.get("run_id", "")}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    tracker = tracking.Tracker(tracking_uri, sweep.name, run_key=cell.name, run_name=cell.name, tags=tags)
    tracker.log_params(
        {
            "n_real": cell.n_real,
            "seed": cell.seed,
            "translator.kind": fit["kind"],
            "synthetic_checkpoint": info["checkpoint"],
        }
    )
    tracker.log_metrics({k: v for k, v in metrics.items() if k != "epoch"}, step=0)
    tracker.log_dict({"ids": fit["faces"]["test"], "nme": fit["test_errors"].tolist()}, "test/metrics.json")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(folder, tmp, dirs_exist_ok=True)
        fit["translator"].save(Path(tmp, "translator.npz"))
        Path(tmp, "translator.json").write_text(
            json.dumps(
                {
                    "kind": fit["kind"],
                    "fit_faces": fit["faces"]["train"],
                    "applies_to": "the model's outputs (IBUG68 -> IBUG68)",
                }
            )
        )
        tracker.log_checkpoint(tmp)
    tracker.finish()
    return tracker.run_id
