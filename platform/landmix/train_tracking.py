"""What a training run logs to MLflow, from rank 0 of `landmix.train`'s loop, in one place.

    tracker = start_run(spec, {"real": d.real_shards, "synthetic": d.synthetic_shards}, precision)  # None: off
    log_epoch(tracker, report, epoch, final_folder, test, test_result, image_size)

A new run gets the flattened config as params (config.flat_params), the shards' provenance as
provenance.json (pool.provenance) and tags naming the data: `data.<kind>.hash`, `.translator`, `.generator`;
a run that Ray restarted finds its MLflow run again (tracking.Tracker) and logs none of that twice, only what
its first attempt died before logging (the params it lacks; provenance and data tags when provenance.json is
missing). Every
epoch logs the report's scalars; the final epoch adds the test faces' errors (test/metrics.json), their CED
curve and a grid of predictions (test/ced.png, test/predictions.png), the stop reason as a tag, and the
checkpoint folder (under "model", what the registry points at).
"""

from __future__ import annotations

from landmix import config as C
from landmix import tracking
from landmix.figures import ced_png, predictions_png
from landmix.pool import Pool, provenance


def start_run(spec: C.RunSpec, folders: dict, precision: str) -> tracking.Tracker | None:
    """The run's Tracker (a new MLflow run, or the one it logged into before a restart); None: tracking off.
    `folders`: {"real"/"synthetic": shard folder or ""}; `precision`: what the run trains in ("bf16"/"fp32")."""
    tr = spec.tracking
    uri = tracking.resolve_uri(tr.uri)
    if uri is None:
        return None
    tags = {"landmix.strategy": tr.strategy_label or spec.data.strategy, "landmix.precision": precision}
    if tr.parent_run_id:
        tags["mlflow.parentRunId"] = tr.parent_run_id
    name = spec.train.name
    tracker = tracking.Tracker(uri, tr.experiment, run_key=name, run_name=tr.run_label or name, tags=tags)
    tracker.log_params(C.flat_params(spec))  # resumed: only those its first attempt died before logging
    if not tracker.resumed or "provenance.json" not in tracker.artifacts():
        prov = provenance(folders)
        tracker.log_dict(prov, "provenance.json")
        tracker.set_tags(
            {f"data.{k}.hash": v["folder_hash"] for k, v in prov.items()}
            | {f"data.{k}.translator": ",".join(v["translator_versions"]) for k, v in prov.items()}
            | {
                f"data.{k}.generator": ",".join(v["generator_versions"])
                for k, v in prov.items()
                if v["generator_versions"]
            }
        )
    return tracker


def log_epoch(
    tracker: tracking.Tracker,
    report: dict,
    epoch: int,
    final_folder: str | None,
    test: Pool,
    test_result: dict | None,
    size: int,
) -> None:
    """Everything rank 0 logs for an epoch; the final epoch (`final_folder`: its checkpoint folder) also logs
    the test faces' figures (`test_result`: train.score's on `test`, at `size` px) and the model."""
    scalars = {k: v for k, v in report.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    tracker.log_metrics(scalars, step=epoch)
    if final_folder is None:
        return
    if test_result:
        errors = test_result["errors"]
        tracker.log_dict(
            {"ids": test.ids, "nme": errors.tolist(), "per_subset": test_result["per_subset"]},
            "test/metrics.json",
        )
        k = min(16, len(test))
        images, gt = test.take(test.ids[:k]).model_inputs(size)
        tracker.log_figure_files(
            {
                "ced.png": ced_png({"test": errors}),
                "predictions.png": predictions_png(images, test_result["pred"][:k], gt),
            },
            "test",
        )
    tracker.set_tags({"landmix.stop_reason": report.get("stop_reason", "")})
    tracker.log_checkpoint(final_folder)
