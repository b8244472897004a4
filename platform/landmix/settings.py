"""Process-wide settings read from the environment, in one place.

LANDMIX_DATA_ROOT: where the research-only shared data lives (default ../shared/data from the
project root). It is read from there, never copied into the repository.
MLFLOW_TRACKING_URI: where runs are tracked (a server URL or an absolute sqlite:////path).
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
    keys = ("LANDMIX_DATA_ROOT", "MLFLOW_TRACKING_URI", "MLFLOW_DISABLE_TELEMETRY", "RAY_AUTH_MODE",
            "RAY_DATA_DISABLE_PROGRESS_BARS")
    return {k: os.environ[k] for k in keys if k in os.environ}


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
