"""The platform's MLflow tracking server: one command, a database backend and a proxied artifact store.

    landmix mlflow-server --store runs/mlflow            # SQLite + local artifacts, 127.0.0.1:5000
    landmix mlflow-server --backend-store-uri postgresql://user@db/mlflow \
        --artifacts-destination s3://bucket/mlflow --host 10.0.0.5   # on a cluster head

Clients then set MLFLOW_TRACKING_URI=http://HOST:PORT (the one setting jobs read). Artifacts are
proxied through the server (`--serve-artifacts`), so workers need no storage credentials of their own.
The server binds to 127.0.0.1 unless told otherwise; a non-loopback host sets --allowed-hosts.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServerSpec:
    """How to run the tracking server.

    store: a local folder holding mlflow.db and artifacts/ when the two URIs below are not given.
    backend_store_uri: database URI (sqlite:////abs/path.db or postgresql://...).
    artifacts_destination: where the server writes artifacts (a folder or s3://bucket/prefix).
    host/port: the bind address; 127.0.0.1 by default so nothing outside this machine reaches it.
    """

    store: Path
    host: str = "127.0.0.1"
    port: int = 5000
    backend_store_uri: str | None = None
    artifacts_destination: str | None = None
    workers: int = 1

    def command(self) -> list[str]:
        store = Path(self.store).resolve()
        backend = self.backend_store_uri or f"sqlite:///{store / 'mlflow.db'}"
        artifacts = self.artifacts_destination or str(store / "artifacts")
        mlflow_bin = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
        cmd = [
            mlflow_bin,
            "server",
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            artifacts,
            "--serve-artifacts",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        if self.host not in LOOPBACK:
            # Exposed beyond loopback: only requests naming this host, or loopback on any port (an SSH
            # port forward from a laptop arrives as "localhost:5000"), pass MLflow's Host-header check.
            local = "localhost,localhost:*,127.0.0.1,127.0.0.1:*"
            cmd += ["--allowed-hosts", f"{self.host},{self.host}:{self.port},{local}"]
        return cmd

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout_s: float = 180.0, proc: subprocess.Popen | None = None) -> None:
    """Poll GET {url}/health until it answers 200; raise with the reason after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with code {proc.returncode} before becoming healthy")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError as e:
            last = e
        time.sleep(0.5)
    raise TimeoutError(f"mlflow server at {url} not healthy after {timeout_s:.0f}s (last error: {last})")


def start(spec: ServerSpec, log_path: Path | None = None) -> subprocess.Popen:
    """Start the server in its own process group and wait until it is healthy."""
    Path(spec.store).mkdir(parents=True, exist_ok=True)
    log = open(log_path or Path(spec.store) / "server.log", "ab")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(
        spec.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        wait_healthy(spec.url, proc=proc)
    except Exception:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """Stop the server and every process it started (uvicorn/gunicorn workers)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def add_arguments(parser) -> None:
    parser.add_argument(
        "--store",
        type=Path,
        default=Path("runs/mlflow"),
        help="folder for mlflow.db and artifacts/ (default runs/mlflow)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--backend-store-uri", default=None, help="database URI, e.g. postgresql://user@host/db"
    )
    parser.add_argument(
        "--artifacts-destination", default=None, help="artifact root, e.g. s3://bucket/mlflow"
    )
    parser.add_argument("--workers", type=int, default=1)


def run(args) -> int:
    spec = ServerSpec(
        store=args.store,
        host=args.host,
        port=args.port,
        backend_store_uri=args.backend_store_uri,
        artifacts_destination=args.artifacts_destination,
        workers=args.workers,
    )
    print(f"MLflow server: {spec.url}  (set MLFLOW_TRACKING_URI={spec.url})", flush=True)
    os.execvpe(spec.command()[0], spec.command(), {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
