"""The tracking server the platform starts: real server on loopback, real client."""

import mlflow

from landmix import mlflow_server


def test_server_logs_run_and_artifact(mlflow_tracking, tmp_path):
    client = mlflow.MlflowClient(tracking_uri=mlflow_tracking)
    exp = client.create_experiment("server-smoke")
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "nme", 0.05)
    f = tmp_path / "note.txt"
    f.write_text("hello")
    client.log_artifact(run.info.run_id, str(f))
    assert client.get_run(run.info.run_id).data.metrics["nme"] == 0.05
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["note.txt"]


def test_default_bind_is_loopback_and_public_bind_sets_allowed_hosts(tmp_path):
    cmd = mlflow_server.ServerSpec(store=tmp_path).command()
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert "--allowed-hosts" not in cmd
    public = mlflow_server.ServerSpec(store=tmp_path, host="10.0.0.5").command()
    assert "10.0.0.5" in public[public.index("--allowed-hosts") + 1]
