"""Tracking: URIs that work under Ray, one MLflow run per run key (resume), params, metrics, artifacts."""

import numpy as np
import pytest

from landmix import figures, tracking


def test_resolve_uri_accepts_servers_and_absolute_sqlite_only(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.resolve_uri("") is None and tracking.resolve_uri("none") is None
    assert tracking.resolve_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert tracking.resolve_uri("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    with pytest.raises(ValueError, match="absolute"):
        tracking.resolve_uri("sqlite:///mlflow.db")
    with pytest.raises(ValueError, match="file store"):
        tracking.resolve_uri("/tmp/mlruns")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://h:1")
    assert tracking.resolve_uri("") == "http://h:1"


def _exercise(uri: str, key: str, tmp_path):
    t = tracking.Tracker(
        uri, "landmix-test", run_key=key, run_name="a run", tags={"landmix.strategy": "mixed"}
    )
    assert not t.resumed
    t.log_params({"model.head": "soft_argmax", "train.lr": 0.002})
    t.log_metrics({"val_nme": 0.2, "val_fr@10": 0.5}, step=0)
    again = tracking.Tracker(uri, "landmix-test", run_key=key, run_name="a run")  # after a worker failure
    assert again.resumed and again.run_id == t.run_id
    again.log_params({"model.head": "soft_argmax"})  # a no-op on resume, never a conflict
    again.log_metrics({"val_nme": 0.1}, step=1)
    (tmp_path / "model.pt").write_bytes(b"weights")
    again.log_checkpoint(str(tmp_path))
    again.log_figure_files({"ced.png": figures.ced_png({"val": np.array([0.02, 0.05, 0.2])})}, "val")
    again.log_dict({"a": 1}, "provenance.json")
    again.finish()
    runs = tracking.runs_with_key(uri, "landmix-test", key)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run = tracking.get_run(uri, t.run_id)
    assert run.data.params["train.lr"] == "0.002" and run.data.metrics["val_nme"] == 0.1
    assert "val_fr_at_10" in run.data.metrics and run.data.tags["landmix.strategy"] == "mixed"
    assert set(tracking.list_artifacts(uri, t.run_id)) == {"model", "val", "provenance.json"}
    assert tracking.list_artifacts(uri, t.run_id, "model") == ["model/model.pt"]


def test_tracker_against_a_server_resumes_one_run(mlflow_tracking, tmp_path):
    _exercise(mlflow_tracking, "server-key", tmp_path)


def test_tracker_against_local_sqlite(tmp_path, monkeypatch):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # as a Ray worker runs: in a working directory of its own
    _exercise(f"sqlite:///{tmp_path / 'mlflow.db'}", "sqlite-key", tmp_path / "ckpt")
    assert (tmp_path / "artifacts").is_dir() and not list((tmp_path / "elsewhere").iterdir())  # beside the db


def test_a_resumed_sweep_stops_when_its_parent_cannot_be_reached(mlflow_tracking, tmp_path, monkeypatch):
    """A sweep's parent run, resumed through its id file: a store that says "no such run" gives a new parent;
    a server that is down stops the sweep with the reason (never a second parent); back up, the same parent."""
    from mlflow.tracking import MlflowClient

    from landmix import mlflow_server

    monkeypatch.setenv(
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0"
    )  # a down server answers at once, not after ~2 min
    uri, exp, id_file = mlflow_tracking, "landmix-resume", tmp_path / "sweep" / "parent_run_id"
    parent = tracking.sweep_parent_run(uri, exp, id_file, {"sweep.seeds": 2})
    assert tracking.sweep_parent_run(uri, exp, id_file, {}) == parent
    id_file.write_text("0123456789abcdef0123456789abcdef")  # the file outlived its store: no such run
    new = tracking.sweep_parent_run(uri, exp, id_file, {"sweep.seeds": 2})
    assert new != parent and id_file.read_text() == new
    down = f"http://127.0.0.1:{mlflow_server.free_port()}"  # the same sweep while its server is down
    with pytest.raises(RuntimeError, match=f"cannot resume the sweep's parent run {new} .*did not answer"):
        tracking.sweep_parent_run(down, exp, id_file, {"sweep.seeds": 2})
    assert id_file.read_text() == new
    assert tracking.sweep_parent_run(uri, exp, id_file, {}) == new  # back up: the same parent
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(exp).experiment_id])
    assert {r.info.run_id for r in runs} == {parent, new}


def test_a_resumed_run_logs_the_params_its_first_attempt_never_logged(mlflow_tracking):
    uri, exp = mlflow_tracking, "landmix-test"
    first = tracking.Tracker(uri, exp, run_key="died-early", run_name="r")  # died before logging its params
    again = tracking.Tracker(uri, exp, run_key="died-early", run_name="r")
    assert again.resumed and again.run_id == first.run_id
    assert again.log_params({"model.head": "heatmap", "train.lr": 0.002}) == 2
    assert again.flush() == []  # logging is queued: delivered before the next attempt starts
    third = tracking.Tracker(uri, exp, run_key="died-early", run_name="r")
    # only the missing one: MLflow refuses to change a logged param, so a changed value is never sent
    assert third.log_params({"model.head": "regression", "train.epochs": 3}) == 1
    third.flush()
    params = tracking.get_run(uri, first.run_id).data.params
    assert params == {"model.head": "heatmap", "train.lr": "0.002", "train.epochs": "3"}


def test_an_outage_of_the_tracking_server_neither_stalls_training_nor_loses_a_metric(tmp_path, monkeypatch):
    """The server killed mid-run and restarted: every log call returns at once meanwhile, the metrics logged
    during the outage arrive after it, one run; an outage longer than the limit is said precisely."""
    import time

    from landmix import mlflow_server

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries would hide the outage
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    spec = mlflow_server.ServerSpec(store=tmp_path / "store", port=mlflow_server.free_port())
    proc = mlflow_server.start(spec)
    try:
        t = tracking.Tracker(spec.url, "outage", run_key="outage-run", run_name="r", outage_s=120)
        t.log_metrics({"val_nme": 0.5}, step=0)
        assert t.flush() == []
        mlflow_server.stop(proc)
        t0 = time.monotonic()
        for step in (1, 2, 3):  # the training loop goes on while the server is down
            t.log_metrics({"val_nme": 0.5 - 0.1 * step}, step=step)
        t.log_dict({"ids": [1, 2]}, "test/metrics.json")
        assert time.monotonic() - t0 < 1.0
        time.sleep(4)  # down for a while: the tracker is retrying
        proc = mlflow_server.start(spec)  # the same store, the same port
        assert t.finish() == [] and t.retried > 0
        history = t.client.get_metric_history(t.run_id, "val_nme")
        assert sorted(m.step for m in history) == [0, 1, 2, 3]
        assert len(tracking.runs_with_key(spec.url, "outage", "outage-run")) == 1
        assert "test" in tracking.list_artifacts(spec.url, t.run_id)

        # longer than the limit: the calls given up are listed, and finish returns instead of hanging
        short = tracking.Tracker(spec.url, "outage", run_key="too-long", run_name="r", outage_s=3)
        mlflow_server.stop(proc)
        short.log_metrics({"val_nme": 0.2, "val_fr@10": 0.1}, step=7)
        t0 = time.monotonic()
        lost = short.finish()
        assert time.monotonic() - t0 < 60
        assert [u["what"] for u in lost] == ["metrics step 7: val_fr_at_10, val_nme", "run status"]
    finally:
        mlflow_server.stop(proc)
