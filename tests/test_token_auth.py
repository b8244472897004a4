"""Ray's token auth on the job API, as the cluster files set it: a head started with RAY_AUTH_MODE=token.

The Makefile, .ci/run and conftest.py set RAY_AUTH_MODE=disabled for the suite's own loopback cluster; this
module overrides it for one private head of its own (tests/_ray_head.py: `ray start --head`, dashboard and
job API on 127.0.0.1). The token is made the documented way, `ray get-auth-token --generate`, into the home
of "your machine" (a temp folder here, never the real ~/.ray). Then, as a user would meet it:
- `ray job submit` without a token, and with a wrong one, is refused and creates no job; a bare HTTP request
  to the job API gets 401;
- `RAY_AUTH_MODE=token ray job submit` (the client reads ~/.ray/auth_token) succeeds, and the job's driver,
  which inherits the head's settings, joins the token-protected cluster with `ray.init()`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _ray_head import RayHead  # noqa: E402

pytestmark = pytest.mark.cluster  # a Ray head of its own (`ray start`) with token auth
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DRIVER = "import ray; ray.init(); print('token-auth-ok', ray.cluster_resources()['CPU'])"


def _client_env(home: Path, **extra: str) -> dict[str, str]:
    """A client's environment with no Ray settings but `extra`, and `home` as its home (where Ray looks for
    ~/.ray/auth_token)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return env | {
        "HOME": str(home),
        "RAY_USAGE_STATS_ENABLED": "0",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        **extra,
    }


def _submit(address: str, env: dict, sid: str) -> subprocess.CompletedProcess:
    cmd = [
        str(BIN / "ray"),
        "job",
        "submit",
        "--address",
        address,
        "--submission-id",
        sid,
        "--no-wait",
        "--",
        "python",
        "-c",
        DRIVER,
    ]
    deadline = time.monotonic() + 300
    while True:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        # A head that just came up may not have registered its job agent yet: Ray says to try again later.
        if done.returncode == 0 or "No available agent" not in done.stderr or time.monotonic() > deadline:
            return done
        time.sleep(5)


@pytest.fixture(scope="module")
def token_head(tmp_path_factory):
    """A loopback Ray head with RAY_AUTH_MODE=token; yields its address, the token and the operator's home."""
    operator = tmp_path_factory.mktemp("operator")  # "your machine"'s home
    done = subprocess.run(
        [str(BIN / "ray"), "get-auth-token", "--generate"],
        env=_client_env(operator),
        capture_output=True,
        text=True,
        timeout=120,
    )
    token_file = operator / ".ray" / "auth_token"
    assert done.returncode == 0 and token_file.is_file(), (
        f"ray get-auth-token --generate failed: {done.stderr}"
    )
    # The head reads the same token (on a cluster, file_mounts copies it to every node's ~/.ray/auth_token).
    env = _client_env(
        operator, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_file), MLFLOW_DISABLE_TELEMETRY="true"
    )
    head = RayHead(env, num_cpus=2)
    try:
        yield {"address": head.dashboard, "token": token_file.read_text().strip(), "operator": operator}
    finally:
        leftovers = head.stop()
    assert not leftovers, f"processes of the token-auth head outlived `ray start --block`: {leftovers}"


def test_job_api_refuses_requests_without_the_token(token_head):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{token_head['address']}/api/jobs/", timeout=30)
    assert refused.value.code == 401
    wrong = urllib.request.Request(
        f"{token_head['address']}/api/jobs/", headers={"Authorization": "Bearer nope"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(wrong, timeout=30)
    assert refused.value.code == 403


def test_submission_without_the_token_is_refused_and_with_it_succeeds(token_head, tmp_path):
    from ray.job_submission import JobSubmissionClient

    address = token_head["address"]
    # No token anywhere (an empty home, RAY_AUTH_MODE unset as on a fresh laptop), then a wrong one.
    no_token = _submit(address, _client_env(tmp_path), "no-token")
    assert no_token.returncode != 0, f"a submission without the token was accepted:\n{no_token.stdout}"
    assert "401" in no_token.stderr or "Authentication required" in no_token.stderr, no_token.stderr[-2000:]
    wrong = _submit(
        address, _client_env(tmp_path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="not-the-token"), "wrong"
    )
    assert wrong.returncode != 0, f"a submission with a wrong token was accepted:\n{wrong.stdout}"

    # The documented way: RAY_AUTH_MODE=token, the client reads ~/.ray/auth_token.
    ok = _submit(address, _client_env(token_head["operator"], RAY_AUTH_MODE="token"), "with-token")
    assert ok.returncode == 0, f"a submission with the token failed:\n{ok.stdout}\n{ok.stderr}"
    client = JobSubmissionClient(address, headers={"Authorization": f"Bearer {token_head['token']}"})
    deadline = time.monotonic() + 300
    while not (status := str(client.get_job_status("with-token"))).endswith(
        ("SUCCEEDED", "FAILED", "STOPPED")
    ):
        assert time.monotonic() < deadline, f"job still {status} after 300 s"
        time.sleep(2)
    logs = client.get_job_logs("with-token")
    assert status.endswith("SUCCEEDED") and "token-auth-ok 2.0" in logs, f"{status}:\n{logs[-3000:]}"
    assert {j.submission_id for j in client.list_jobs()} == {"with-token"}  # the refused ones left no job
