"""Process-wide settings read from the environment, in one place.

LANDMIX_DATA_ROOT: where the research-only shared data lives (default ../shared/data from the
project root). It is read from there, never copied into the repository.
MLFLOW_TRACKING_URI: where runs are tracked (a server URL or an absolute sqlite:////path).
LANDMIX_STORAGE_PATH: Ray Train/Tune storage (default runs/ in the project; s3://... on a cluster).
LANDMIX_WORK: the jobs' work folder of generated faces, manifests and shards (default out/; on a
multi-node cluster a shared mount, since Ray Data tasks on every node read the shards).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_ROOT = PROJECT_ROOT.parent / "shared" / "data"


def data_root() -> Path:
    """The shared data folder: $LANDMIX_DATA_ROOT, else ../shared/data beside the project."""
    return Path(os.environ.get("LANDMIX_DATA_ROOT", DEFAULT_DATA_ROOT)).resolve()


def ray_runtime_env_vars() -> dict[str, str]:
    """Environment variables every Ray worker needs, forwarded through runtime_env."""
    keys = (
        "LANDMIX_DATA_ROOT",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_DISABLE_TELEMETRY",
        "RAY_AUTH_MODE",
        "RAY_DATA_DISABLE_PROGRESS_BARS",
    )
    return {k: os.environ[k] for k in keys if k in os.environ}


def work_dir() -> Path:
    """Generated faces, manifests, prepared shards: $LANDMIX_WORK (a folder every node sees), else out/."""
    return Path(os.environ.get("LANDMIX_WORK") or PROJECT_ROOT / "out")


def storage_path() -> str:
    """Ray Train/Tune storage: $LANDMIX_STORAGE_PATH (s3://... on a cluster: shared by every node), else runs/."""
    return os.environ.get("LANDMIX_STORAGE_PATH") or str(PROJECT_ROOT / "runs")


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect this process to Ray, the same way in every command and job.

    `address` (or $RAY_ADDRESS, which `ray job submit` sets for the job's driver) joins that cluster, and
    the cluster's or the job's runtime_env applies. Without one, a private local cluster of this process
    ("local": never another user's Ray found on the machine), dashboard on loopback (Tune's ASHA needs the
    dashboard to release placement groups), with this process's settings forwarded to every worker.
    """
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # token auth is on by default since Ray 2.59
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address != "local":
        ray.init(address=address, logging_level="WARNING")
        return
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        runtime_env={"env_vars": ray_runtime_env_vars()},
        logging_level="WARNING",
    )


def require_ray(what: str) -> None:
    """Library functions that run on Ray call this instead of starting Ray themselves: the entry points
    (the `landmix` commands, jobs/, tests' fixtures) connect once, with `init_ray`."""
    import ray

    if not ray.is_initialized():
        raise RuntimeError(
            f"{what} runs on Ray, which this process has not connected to: call "
            "landmix.settings.init_ray() first (the landmix commands and jobs/ do)"
        )


def default_tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else an absolute SQLite store at runs/mlflow.db (exported for Ray workers).

    The path must be absolute: Ray runs workers in their own working directories, and MLflow 3.13+
    refuses the old ./mlruns file store.
    """
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        db = PROJECT_ROOT / "runs" / "mlflow.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{db}"
    return os.environ["MLFLOW_TRACKING_URI"]
