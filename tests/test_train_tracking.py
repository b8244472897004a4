"""What a training run logs to MLflow (landmix.train_tracking), on a real SQLite store and without Ray: the
data's provenance and tags, every epoch's scalars, and at the end the test faces' figures and the model."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from _png import assert_drawn, read_png
from landmix import config as C
from landmix import crops, presets, tracking, train_tracking
from landmix.pool import Pool


def test_a_run_logs_its_data_epochs_figures_and_model_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "syn" / "shards").mkdir(parents=True)
    pq.write_table(
        pa.table({"translator_version": ["ridge-1"]}), tmp_path / "syn" / "shards" / "part-00000.parquet"
    )
    spec = presets.preset(
        "smoke", tracking={"uri": uri, "experiment": "landmix-test"}, train={"name": "run-a"}
    )
    folders = {"real": "", "synthetic": str(tmp_path / "syn")}
    tracker = train_tracking.start_run(spec, folders, "fp32")
    c = crops.context_size(spec.model.image_size)
    test = Pool(
        ["a", "b"],
        np.zeros((2, c, c, 3), np.uint8),
        np.full((2, 68, 2), c / 2, np.float32),
        ["300w/helen/a.png", "300w/afw/b.png"],
    )
    result = {"errors": np.array([0.02, 0.05]), "pred": np.full((2, 68, 2), 20.0), "per_subset": {}}
    train_tracking.log_epoch(
        tracker, {"epoch": 0, "val_nme": 0.1, "stop_reason": ""}, 0, None, test, None, 64
    )
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "model.pt").write_bytes(b"weights")
    report = {"epoch": 1, "val_nme": 0.05, "test_fr@10": 0.0, "stop_reason": "epochs", "resumed": True}
    train_tracking.log_epoch(tracker, report, 1, str(tmp_path / "ckpt"), test, result, spec.model.image_size)
    tracker.flush()  # the loop flushes before each report (train.REPORT_FLUSH_S); a restart comes after one
    again = train_tracking.start_run(spec, folders, "fp32")  # restarted by Ray: the same run, nothing twice
    assert again.resumed and again.run_id == tracker.run_id
    assert again.flush() == []

    run = tracking.get_run(uri, tracker.run_id)
    assert run.data.params["model.head"] == spec.model.head and run.data.tags["landmix.precision"] == "fp32"
    assert run.data.tags["data.synthetic.translator"] == "ridge-1" and "data.synthetic.hash" in run.data.tags
    assert "data.synthetic.generator" not in run.data.tags and "data.real.hash" not in run.data.tags
    assert (
        run.data.tags["landmix.stop_reason"] == "epochs"
        and run.data.tags["landmix.strategy"] == spec.data.strategy
    )
    assert run.data.metrics["val_nme"] == 0.05 and "test_fr_at_10" in run.data.metrics
    assert "resumed" not in run.data.metrics  # booleans are not metrics
    assert set(tracking.list_artifacts(uri, tracker.run_id)) == {"model", "test", "provenance.json"}
    assert set(tracking.list_artifacts(uri, tracker.run_id, "test")) == {
        "test/ced.png",
        "test/predictions.png",
        "test/metrics.json",
    }
    from mlflow.tracking import MlflowClient

    figs = Path(MlflowClient(uri).download_artifacts(tracker.run_id, "test", str(tmp_path / "dl")))
    assert_drawn(read_png(figs / "ced.png"), (300, 450), (400, 560))
    grid = read_png(figs / "predictions.png")  # 2 faces of a 4-column grid, at twice the model's input size
    s = spec.model.image_size * 2
    assert grid.shape == (s, 4 * s, 3) and not grid[:, 2 * s :].any()
    for tile in (grid[:, :s], grid[:, s : 2 * s]):  # truth green and prediction red drawn on each face
        green, red = (tile == (0, 255, 0)).all(-1), (tile == (255, 0, 0)).all(-1)
        assert green.sum() >= 5 and red.sum() >= 5  # a dot each: all 68 points share one place here


def test_a_restarted_run_whose_first_attempt_died_before_logging_gets_its_params(mlflow_tracking, tmp_path):
    """Ray restarted a run whose first attempt died right after creating its MLflow run: the restart logs the
    params, the provenance and the data tags it never got (on the real MLflow server)."""
    (tmp_path / "syn" / "shards").mkdir(parents=True)
    pq.write_table(
        pa.table({"translator_version": ["ridge-1"]}), tmp_path / "syn" / "shards" / "part-00000.parquet"
    )
    spec = presets.preset(
        "smoke",
        tracking={"uri": mlflow_tracking, "experiment": "landmix-test"},
        train={"name": "restarted-early"},
    )
    first = tracking.Tracker(
        mlflow_tracking, "landmix-test", run_key="restarted-early", run_name="restarted-early"
    )
    again = train_tracking.start_run(spec, {"real": "", "synthetic": str(tmp_path / "syn")}, "fp32")
    assert again.resumed and again.run_id == first.run_id
    assert again.flush() == []  # logging is queued (tracking.Tracker): delivered before it is read back
    run = tracking.get_run(mlflow_tracking, first.run_id)
    assert run.data.params == {k: str(v) for k, v in C.flat_params(spec).items()}
    assert run.data.tags["data.synthetic.translator"] == "ridge-1" and "data.synthetic.hash" in run.data.tags
    assert tracking.list_artifacts(mlflow_tracking, first.run_id) == ["provenance.json"]


def test_no_uri_means_no_tracking(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert train_tracking.start_run(presets.smoke(), {"real": "", "synthetic": ""}, "fp32") is None
