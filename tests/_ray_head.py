"""A private Ray head for tests: `ray start --head --block` on loopback, in its own process group and temp dir.

Shared by test_tune_mix_job.py (the smoke sweep submitted with `ray job submit`) and test_token_auth.py (the
job API refusing a submission without the token). Stopping it signals its own process group and then
sweeps up, by pid, whatever still names its temp dir: never a `ray stop`, which would stop every Ray
cluster on the machine, other people's test clusters included.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from landmix.mlflow_server import free_port

BIN = Path(sys.executable).parent


def processes_naming(marker: str) -> list[int]:
    """pids of processes whose command line contains `marker` (a head's temp dir: GCS, raylet, workers...)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def _answers(url: str) -> bool:
    """True once the dashboard's HTTP server responds at all (401/403 too: a token-auth head is up)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError as e:
        return e.code in (401, 403)
    except OSError:
        return False


class RayHead:
    """A Ray head on loopback in its own process group: started, waited for, stopped with all it spawned.

    `env` is the head's whole environment: RAY_AUTH_MODE (and for token auth, RAY_AUTH_TOKEN_PATH) in it
    decide how the job API authenticates.
    """

    def __init__(self, env: dict[str, str], num_cpus: int = 4):
        # short: Ray's socket paths are limited
        self.temp = Path(tempfile.mkdtemp(prefix="lmx-head-", dir="/tmp"))
        self.dashboard = f"http://127.0.0.1:{(dash := free_port())}"
        # The dashboard and job API listen on loopback; GCS and raylet take this node's own address (Ray
        # resolves a loopback --node-ip-address to it), which never leaves the machine either.
        cmd = [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            f"--port={free_port()}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dash}",
            f"--num-cpus={num_cpus}",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--temp-dir={self.temp}",
        ]
        self.log = open(self.temp / "head.log", "wb")
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 180
        while not _answers(f"{self.dashboard}/api/version"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.temp / "head.log").read_text()[-3000:]
                self.stop()
                raise RuntimeError(f"Ray head did not come up:\n{log}") from None
            time.sleep(1)

    def stop(self) -> list[int]:
        """Stop the head and everything it started; returns the pids that had to be killed afterwards."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # `ray start --block` stops its processes on SIGTERM
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        deadline = time.monotonic() + 30
        while (left := processes_naming(str(self.temp))) and time.monotonic() < deadline:
            time.sleep(1)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()
        shutil.rmtree(self.temp, ignore_errors=True)
        return left
