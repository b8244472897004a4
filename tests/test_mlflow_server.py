"""The tracking server the platform starts: real servers on loopback, real clients.

The suite's own server (conftest `mlflow_tracking`) runs without a login; this module starts one server
with `--auth` (MLflow's basic-auth app) and shares it: anonymous requests are refused, the admin's login
from the environment works, landmix's tracking logs through it, and the MLflow UI shows runs after a login.
"""

import json
import secrets
import stat
import sys
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pytest

from landmix import cli, mlflow_server, tracking

sys.path.insert(0, str(Path(__file__).parent))
from _browser import browser_missing, check_runs_page  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "out" / "test-artifacts"
LOGIN_VARS = (
    "MLFLOW_AUTH_ADMIN_USERNAME",
    "MLFLOW_AUTH_ADMIN_PASSWORD",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)


@pytest.fixture
def no_login(monkeypatch, tmp_path):
    """An environment with no MLflow login at all: none of the variables, and a HOME without ~/.mlflow."""
    for var in LOGIN_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """One `--auth` server for the module: its spec and the admin's (username, password)."""
    password = secrets.token_urlsafe(18)
    with pytest.MonkeyPatch.context() as mp:
        for var in LOGIN_VARS:
            mp.delenv(var, raising=False)
        mp.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", password)  # the first start creates the admin with it
        spec = mlflow_server.ServerSpec(
            store=tmp_path_factory.mktemp("mlflow-auth"), port=mlflow_server.free_port(), auth=True
        )
        proc = mlflow_server.start(spec)
    yield spec, ("admin", password)
    mlflow_server.stop(proc)


def _anonymous_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


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


def test_default_bind_is_loopback_and_public_bind_needs_auth_and_sets_allowed_hosts(tmp_path):
    cmd = mlflow_server.ServerSpec(store=tmp_path).command()
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert "--allowed-hosts" not in cmd and "--app-name" not in cmd
    public = mlflow_server.ServerSpec(store=tmp_path, host="10.0.0.5", auth=True).command()
    assert "10.0.0.5" in public[public.index("--allowed-hosts") + 1]
    assert public[public.index("--app-name") + 1] == "basic-auth"
    with pytest.raises(ValueError, match="--auth .* or --insecure-no-auth"):
        mlflow_server.ServerSpec(store=tmp_path, host="10.0.0.5")
    open_ = mlflow_server.ServerSpec(store=tmp_path, host="10.0.0.5", insecure_no_auth=True).command()
    assert "--app-name" not in open_  # said explicitly, for a network trusted by itself


def _one_line(capsys, *argv) -> str:
    assert cli.main(["mlflow-server", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_command_refuses_a_public_host_without_auth_and_auth_without_a_good_password(
    no_login, tmp_path, capsys
):
    store = str(tmp_path / "store")
    line = _one_line(capsys, "--host", "10.0.0.5", "--store", store)
    assert "--auth" in line and "--insecure-no-auth" in line
    line = _one_line(capsys, "--auth", "--store", store)
    assert "MLFLOW_AUTH_ADMIN_PASSWORD" in line and "~/.mlflow/credentials" in line
    no_login.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "password1234")  # the default older MLflow shipped
    assert "'password1234'" in _one_line(capsys, "--auth", "--store", store)
    no_login.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "short")
    assert "shorter than 12" in _one_line(capsys, "--auth", "--store", store)
    assert not (tmp_path / "store" / "mlflow.db").exists()  # refused before any server started


def test_admin_password_can_come_from_the_machines_mlflow_login(no_login, tmp_path):
    """A cluster head: `ray up` ships the operator's ~/.mlflow/credentials, and `--auth` reads it there."""
    creds = Path(tmp_path / "home" / ".mlflow" / "credentials")
    creds.parent.mkdir(parents=True)
    creds.write_text(
        "[mlflow]\nmlflow_tracking_username = admin\nmlflow_tracking_password = from-the-file-123\n"
    )
    assert mlflow_server.admin_login() == ("admin", "from-the-file-123")
    no_login.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "from-the-variable-1")  # MLflow's own name wins
    assert mlflow_server.admin_login() == ("admin", "from-the-variable-1")


def test_auth_server_refuses_anonymous_requests_and_admits_the_admin(auth_server):
    spec, (user, password) = auth_server
    assert _anonymous_status(f"{spec.url}/api/2.0/mlflow/experiments/search?max_results=1") == 401
    assert _anonymous_status(f"{spec.url}/") == 401  # the UI too
    assert _anonymous_status(f"{spec.url}/health") == 200  # what the start waits on
    assert mlflow_server.login_status(spec.url, user, password) == 200
    assert mlflow_server.login_status(spec.url, user, password + "x") == 401
    # The auth state is the owner's alone, and the password is not written into it.
    store = Path(spec.store)
    for name in ("basic_auth.ini", "basic_auth.db", "flask_secret_key"):
        assert stat.S_IMODE((store / name).stat().st_mode) == 0o600, name
    assert password not in (store / "basic_auth.ini").read_text()


def test_a_start_with_another_admin_password_says_so(auth_server):
    spec, (user, password) = auth_server
    with pytest.raises(ValueError, match="already exists with another password"):
        mlflow_server.check_admin_login(spec, user, "not-the-first-password")
    mlflow_server.check_admin_login(spec, user, password)


def test_landmix_tracking_logs_with_the_login_from_the_environment(auth_server, no_login):
    spec, (user, password) = auth_server
    with pytest.raises(
        ValueError, match="asks for a login and no login was given: set MLFLOW_TRACKING_USERNAME"
    ):
        tracking.Tracker(spec.url, "auth-smoke", "key-1", "run-1")
    no_login.setenv("MLFLOW_TRACKING_USERNAME", user)
    no_login.setenv("MLFLOW_TRACKING_PASSWORD", password + "x")
    with pytest.raises(ValueError, match="the password of 'admin' is wrong"):
        tracking.Tracker(spec.url, "auth-smoke", "key-1", "run-1")
    no_login.setenv("MLFLOW_TRACKING_PASSWORD", password)
    tracker = tracking.Tracker(spec.url, "auth-smoke", "key-1", "run-1")
    tracker.log_params({"lr": 0.001})
    tracker.log_metrics({"val_nme": 0.05}, step=0)
    tracker.finish()
    run = tracking.get_run(spec.url, tracker.run_id)
    assert run.data.metrics["val_nme"] == 0.05 and run.data.params == {"lr": "0.001"}  # no login in params


def test_mlflow_ui_asks_for_a_login_and_shows_the_runs_after_it(auth_server, no_login, tmp_path):
    if why := browser_missing():
        pytest.skip(why)
    spec, (user, password) = auth_server
    no_login.setenv("MLFLOW_TRACKING_USERNAME", user)
    no_login.setenv("MLFLOW_TRACKING_PASSWORD", password)
    parent_id = tracking.sweep_parent_run(spec.url, "auth-ui", tmp_path / "parent_run_id", {"seed": 0})
    children = ["real_only-n10-s0", "mixed-n10-s0"]
    for i, name in enumerate(children):
        child = tracking.Tracker(
            spec.url, "auth-ui", f"child-{i}", name, tags={"mlflow.parentRunId": parent_id}
        )
        child.log_metrics({"val_nme": 0.1 + i / 100}, step=0)
        child.finish()
    tracking.log_sweep_report(
        spec.url,
        parent_id,
        {},
        {},
        n_trials=2,
        n_failed=0,
        best={"val_nme": 0.1, "nme": 0.2, "run": children[0]},
    )
    experiment = tracking.get_run(spec.url, parent_id).info.experiment_id
    shot = tmp_path / "mlflow_ui_login.png"
    shown = check_runs_page(
        spec.url, experiment, "auth-ui", children, shot, metric="val_nme", login=(user, password)
    )
    assert shown[children[1]] == pytest.approx(0.11, rel=1e-2)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "mlflow_ui_login.png").write_bytes(shot.read_bytes())
    (ARTIFACTS / "mlflow_ui_login.json").write_text(json.dumps(shown, indent=1))
