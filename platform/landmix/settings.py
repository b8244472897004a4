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
    keys = ("LANDMIX_DATA_ROOT", "MLFLOW_TRACKING_URI", "MLFLOW_DISABLE_TELEMETRY", "RAY_AUTH_MODE")
    return {k: os.environ[k] for k in keys if k in os.environ}
