"""Shared fixtures: one real local Ray cluster and one real MLflow server per test session.

Ray costs seconds to start and each Train run ~30 s on 2 cores, so the cluster is session-scoped.
Tests that need the research-only shared data use `shared_data` and skip with the reason when the
folder is absent (a fresh clone without ../shared still passes its unit tests).

In CI (`CI` set, as `.ci/run` sets it) a skip is a failure: a missing prerequisite (shared data, chromium,
sshd) must not let CI pass without running what it claims to test. Outside CI a skip stays a skip.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # token auth is on by default since Ray 2.59
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

import pytest  # noqa: E402

from landmix import mlflow_server, settings  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _skip_fails_in_ci(report) -> None:
    """Turn a skipped report (a test's setup or call, or a module's collection) into a failure, in CI only.
    An xfail is left alone: it is an expected failure, not a missing prerequisite."""
    if not (IN_CI and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped in CI (CI={os.environ['CI']}), which counts as a failure: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    _skip_fails_in_ci(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    _skip_fails_in_ci(report)
    return report


@pytest.fixture(scope="session")
def shared_data():
    """The shared data root (../shared/data or $LANDMIX_DATA_ROOT); skips if absent."""
    root = settings.data_root()
    if not (root / "300w").is_dir():
        pytest.skip(f"shared data not found at {root} (set LANDMIX_DATA_ROOT)")
    return root


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray cluster shared by the whole session (dashboard on: Tune's ASHA needs it)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",  # a cluster of its own, even where a `ray start` head runs on this machine
            num_cpus=4,  # logical CPUs: a Tune trial plus its Train workers fit on this 2-core machine
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            runtime_env={"env_vars": settings.ray_runtime_env_vars()},
            logging_level="WARNING",
        )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def mlflow_tracking(tmp_path_factory):
    """A real MLflow tracking server on loopback (SQLite + proxied artifacts); yields its URL."""
    store = tmp_path_factory.mktemp("mlflow")
    spec = mlflow_server.ServerSpec(store=store, port=mlflow_server.free_port())
    proc = mlflow_server.start(spec)
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = spec.url
    yield spec.url
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old
    mlflow_server.stop(proc)


@pytest.fixture
def checkpoint(tmp_path):
    """A checkpoint folder of an untrained regression model (64 px, crop 1.25): it answers the crop centre,
    i.e. the landmark box centre, for every point. For eval and predict tests that need no training."""
    import torch

    from landmix import checkpoint as ckpt_io
    from landmix import config, presets
    from landmix.models import create_model

    spec = presets.smoke()
    spec = config.RunSpec(
        model=config.ModelConfig(head="regression", width=8, image_size=64, crop_scale=1.25),
        data=spec.data,
        train=spec.train,
    )
    model = create_model(spec.model)
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    resume = {
        "model": model.state_dict(),
        "optimizer": torch.optim.AdamW(model.parameters()).state_dict(),
        "epoch": 0,
    }
    ckpt_io.save(str(folder), model.state_dict(), resume, spec, epoch=0)
    return folder
