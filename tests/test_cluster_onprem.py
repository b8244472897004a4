"""`ray up` for real: cluster.onprem.yaml brought up on this machine, used, and torn down.

The route of a team with a few machines of its own (Ray's `local` provider, SSH, no Docker), with this
machine as the head and no workers:
- set-up, as root and idempotent: a dedicated unprivileged user (USER) whose home is made afresh, a
  throwaway SSH key pair, the pip configuration this machine's own pip uses (the same wheels and index),
  and a private sshd on 127.0.0.1 (a free port, its own config, host key and pid file; the machine's own
  sshd, if any, is left alone); Ray's SSH reaches it through `auth.ssh_proxy_command` (`nc`);
- cluster.onprem.yaml with its EDIT values filled in for this machine: head 127.0.0.1, no workers, that user
  and key, a folder of the head in place of the NFS export. For isolation from the suite's own Ray cluster
  and anyone else's: the head's Ray ports come from a free-port helper, RAY_TMPDIR gives its sessions their
  own temp dir, and every `ray stop` in the file runs as that user, who can signal no one else's process;
- `ray up -y` (a real install of the project into the user's virtualenv, as `make venv` does), `ray exec`
  of a check, `ray dashboard`'s port forward, a request without the token refused, `ray job submit` of
  `jobs/tune_mix.py --smoke-test` with the token (RAY_AUTH_MODE=token, as docs/cluster.md says), the head's
  MLflow server refusing a request without a login, the sweep's runs read back from it with the operator's
  MLflow login (~/.mlflow/credentials, shipped by file_mounts), the documented MLflow stop, `ray down -y`,
  and no process of the cluster left.
From `ray up` to the end of `ray down` it took 7 min 53 s and 9 min 3 s in two runs in a row on 2 cores
(`ray up` 2.5-3 min, mostly pip; the smoke job 5-5.5 min). Marked `cluster`: `pytest -m "not cluster"`
leaves it out. It needs root (CI runs as root) and sshd, rsync and netcat (`make cluster-tools`); without
them it skips outside CI and fails in CI.
"""

from __future__ import annotations

import ast
import copy
import fcntl
import getpass
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _ray_head import processes_naming  # noqa: E402
from landmix import sweep  # noqa: E402
from landmix.mlflow_server import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ONPREM_YAML = ROOT / "cluster.onprem.yaml"
USER = "landmix-ci"  # the cluster's login user on "every machine" (here: this one)
TOOLS = ("/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen", "/usr/bin/rsync", "/usr/bin/nc")
LOCK = Path("/tmp/landmix-cluster-onprem.lock")  # one run of this test at a time on a machine (one USER)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The smoke sweep's cells with an MLflow run of their own (the data-adaptation cell is the pretraining's run).
SMOKE_RUNS = [c.name for c in sweep.grid_cells(sweep.smoke()) if c.strategy != "synthetic_only"]


def _why_it_cannot_run() -> str | None:
    if os.geteuid() != 0:
        return "needs root: it creates the cluster's SSH user and starts sshd on 127.0.0.1 (CI runs as root)"
    if any(not Path(t).exists() for t in TOOLS) and IN_CI:
        subprocess.run(["make", "-s", "cluster-tools"], cwd=ROOT, timeout=600)  # what .ci/run does first
    missing = [t for t in TOOLS if not Path(t).exists()]
    if missing:
        return f"{', '.join(missing)} missing: `make cluster-tools` (as root) installs openssh-server, rsync, netcat"
    if not Path("/usr/bin/python3.11").exists() and not Path("/usr/local/bin/python3.11").exists():
        return "no system python3.11 for the cluster user's virtualenv (cluster.onprem.yaml runs `python3.11 -m venv`)"
    return None


def _user_pids(uid: int) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                status = (proc / "status").read_text()
            except OSError:
                continue
            if re.search(rf"^Uid:\s+{uid}\s", status, flags=re.M):
                pids.append(int(proc.name))
    return pids


def _describe(pids: list[int]) -> str:
    out = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            out.append(f"{pid}: {cmdline[:200]}")
        except OSError:
            pass
    return "\n".join(out)


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _pip_conf() -> str:
    """This machine's effective pip configuration (files and PIP_* variables) as a pip.conf for the user."""
    done = subprocess.run(
        [str(BIN / "python"), "-m", "pip", "config", "list"], capture_output=True, text=True
    )
    sections: dict[str, dict[str, str]] = {}
    # PIP_* win, as in pip
    lines = sorted(done.stdout.splitlines(), key=lambda line: line.startswith(":env:"))
    for line in lines:
        m = re.match(r"^([^.=]*)\.([\w-]+)=(.*)$", line)
        if m:
            section = "global" if m[1] in (":env:", "") else m[1]
            sections.setdefault(section, {})[m[2]] = ast.literal_eval(m[3])
    return "".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) for s, kv in sections.items())


def _make_user(key_pub: str) -> pwd.struct_passwd:
    """The cluster's login user with a fresh home (a new machine's), our key, and this machine's pip set-up."""
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--create-home",
                "--shell",
                "/bin/bash",
                "--comment",
                "landmix on-prem cluster test",
                USER,
            ],
            check=True,
        )
        pw = pwd.getpwnam(USER)
    # what an earlier run that was killed mid-way left (the user runs nothing else)
    _kill(_user_pids(pw.pw_uid))
    # No password, and not locked either: sshd without PAM refuses a locked ("!") account even with a key.
    subprocess.run(["usermod", "-p", "*", USER], check=True)
    home = Path(pw.pw_dir)
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree("/etc/skel", home, symlinks=True)
    (home / ".ssh").mkdir(mode=0o700)
    (home / ".ssh" / "authorized_keys").write_text(key_pub)
    (home / ".config" / "pip").mkdir(parents=True)
    (home / ".config" / "pip" / "pip.conf").write_text(_pip_conf())
    subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", str(home)], check=True)
    home.chmod(0o750)
    return pw


def _start_sshd(tmp: Path) -> tuple[subprocess.Popen, int]:
    """sshd on 127.0.0.1:<free port>, for USER's key only, in its own process group."""
    port = free_port()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "host_key")], check=True)
    config = tmp / "sshd_config"
    config.write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {tmp / "host_key"}
PidFile {tmp / "sshd.pid"}
AllowUsers {USER}
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
AllowTcpForwarding local
X11Forwarding no
PrintMotd no
MaxSessions 64
MaxStartups 64
""")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    check = subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, f"sshd rejects its config: {check.stderr}"
    with open(tmp / "sshd.log", "wb") as log:  # the child keeps its own copy of the file
        proc = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while subprocess.run(["nc", "-z", "127.0.0.1", str(port)]).returncode != 0:
        assert proc.poll() is None and time.monotonic() < deadline, (
            f"sshd did not come up:\n{(tmp / 'sshd.log').read_text()[-2000:]}"
        )
        time.sleep(0.5)
    return proc, port


def _fill_in(
    template: dict, *, name: str, key: Path, sshd_port: int, data: Path, shared: str, ports: dict[str, int]
) -> dict:
    """cluster.onprem.yaml with its EDIT values for this machine, and its ports and temp dir made private."""
    c = copy.deepcopy(template)
    c["cluster_name"] = name
    c["provider"].update(head_ip="127.0.0.1", worker_ips=[])  # this machine is the head; no workers
    c["auth"] = {
        "ssh_user": USER,
        "ssh_private_key": str(key),
        "ssh_proxy_command": f"nc 127.0.0.1 {sshd_port}",
    }
    c["file_mounts"]["~/data"] = str(data)
    # One machine: a folder of the head stands in for the NFS export (there is nothing to mount).
    c["initialization_commands"] = [f"mkdir -p {shared}"]
    edits = {
        "export LANDMIX_HEAD_IP=192.168.1.10": "export LANDMIX_HEAD_IP=127.0.0.1",
        "/mnt/landmix": shared,
        "--port=6379": f"--port={ports['gcs']}",
        "$RAY_HEAD_IP:6379": f"$RAY_HEAD_IP:{ports['gcs']}",
        "--object-manager-port=8076": f"--object-manager-port={ports['object_manager']}",
        "--dashboard-port=8265": f"--dashboard-port={ports['dashboard']}",
        "--port 5000": f"--port {ports['mlflow']}",
        ":5000": f":{ports['mlflow']}",
    }
    found = dict.fromkeys(edits, False)
    for k, cmds in c.items():
        if k.endswith("_commands") and k != "initialization_commands":
            for i, cmd in enumerate(cmds):
                for old, new in edits.items():
                    found[old] |= old in cmd
                    cmd = cmd.replace(old, new)
                cmds[i] = cmd
    stale = [old for old, hit in found.items() if not hit]
    assert not stale, f"cluster.onprem.yaml changed: this test's fill-in no longer finds {stale}"
    # Ray's sessions under the user's own temp dir (RAY_TMPDIR: ray start, ray stop, the autoscaler's state).
    settings_at = next(i for i, cmd in enumerate(c["setup_commands"]) if "> ~/landmix.env" in cmd)
    c["setup_commands"].insert(
        settings_at + 1, "mkdir -p ~/rt && echo 'export RAY_TMPDIR=$HOME/rt' >> ~/landmix.env"
    )
    (i,) = [i for i, cmd in enumerate(c["head_start_ray_commands"]) if "ray start --head" in cmd]
    c["head_start_ray_commands"][i] += (
        f" --num-cpus=4 --ray-client-server-port={ports['client']}"  # 4 logical CPUs: 2 trials at once, as in CI
        f" --dashboard-agent-listen-port={ports['agent']} --metrics-export-port={ports['metrics']}"
    )
    return c


def _run(cmd: list[str], env: dict, log: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run a `ray` CLI command from the repository root, its output appended to `log` and returned. On a
    timeout its whole process group goes (the ssh it spawned too), and the error carries the output."""
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        with open(log, "a") as f:
            f.write(out + err + f"\n(timed out after {timeout:.0f} s)\n")
        raise AssertionError(
            f"`{' '.join(cmd[:3])}` timed out after {timeout:.0f} s:\n{(out + err)[-3000:]}"
        ) from None
    with open(log, "a") as f:
        f.write(out + err)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


class OnPremCluster:
    """The filled-in cluster file, the environment of `your machine` (root here), and the head's logs."""

    def __init__(self, tmp: Path, home: Path, config: dict, ports: dict[str, int], operator: Path):
        self.tmp, self.home, self.ports = tmp, home, ports
        self.file = tmp / "cluster.onprem.yaml"
        self.file.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log = tmp / "ray-cli.log"
        self.token = (operator / ".ray" / "auth_token").read_text().strip()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        # HOME: "your machine" has the token at ~/.ray/auth_token (file_mounts and the job client read it);
        # TMPDIR/RAY_TMPDIR: Ray's local cluster state and config cache go to this test's temp dir.
        env |= {
            "HOME": str(operator),
            "TMPDIR": str(tmp),
            "RAY_TMPDIR": str(tmp),
            "RAY_USAGE_STATS_ENABLED": "0",
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        }
        self.env = env

    def ray(self, *args: str, timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
        return _run([str(BIN / "ray"), *args], env or self.env, self.log, timeout)

    def tails(self) -> str:
        """The last lines of every log that says why something failed: the ray CLI, the head, MLflow, sshd."""
        logs = [
            self.log,
            self.tmp / "dashboard-forward.log",
            self.home / "mlflow" / "server.log",
            self.tmp / "sshd.log",
        ]
        session = self.home / "rt" / "ray" / "session_latest" / "logs"
        logs += [
            session / n
            for n in ("gcs_server.out", "raylet.out", "dashboard.log", "monitor.log", "monitor.err")
        ]
        parts = []
        for p in logs:
            if p.exists():
                parts.append(f"--- {p} (tail) ---\n{p.read_text(errors='replace')[-2500:]}")
        return "\n".join(parts)


def _wait_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> int:
    """Poll `url` until it answers; returns the HTTP status (401/403 included)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
                raise AssertionError(f"{url} did not answer within {timeout_s:.0f} s") from None
            time.sleep(1)


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    """Root-only set-up: the cluster user, a throwaway key, a private sshd. Yields what the cluster needs."""
    if reason := _why_it_cannot_run():
        (pytest.fail if IN_CI else pytest.skip)(reason)
    lock = open(LOCK, "w")
    deadline = time.monotonic() + 1800
    while True:  # a second run on this machine (same USER) waits for the first
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            assert time.monotonic() < deadline, f"another run of this test held {LOCK} for 30 min"
            time.sleep(5)
    tmp = Path(tempfile.mkdtemp(prefix="lmxc-", dir="/tmp"))  # short: Ray's socket paths are limited
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "landmix on-prem test",
            "-f",
            str(tmp / "id_ed25519"),
        ],
        check=True,
    )
    pw = _make_user((tmp / "id_ed25519.pub").read_text())
    sshd, port = _start_sshd(tmp)
    name = f"landmix-ci-{uuid.uuid4().hex[:8]}"  # the cluster's name: Ray keys its SSH control sockets by it
    try:
        yield {"tmp": tmp, "pw": pw, "sshd_port": port, "key": tmp / "id_ed25519", "name": name}
    finally:
        os.killpg(sshd.pid, signal.SIGTERM)
        sshd.wait(timeout=30)
        # Whatever of the cluster is still alive (a failed run): the user's processes, and on "your machine"
        # the SSH masters and `nc` proxies of this sshd. Then the user's home (its virtualenv is ~1 GB).
        _kill(_user_pids(pw.pw_uid))
        _kill(processes_naming(f"nc 127.0.0.1 {port}"))
        user_hash, name_hash = (
            hashlib.sha256(s.encode()).hexdigest()[:10] for s in (getpass.getuser(), name)
        )
        # Ray's SSH control sockets
        shutil.rmtree(f"/tmp/ray_ssh_{user_hash}/{name_hash}", ignore_errors=True)
        try:
            os.rmdir(f"/tmp/ray_ssh_{user_hash}")  # only if no other cluster of this user has sockets there
        except OSError:
            pass
        shutil.rmtree(pw.pw_dir, ignore_errors=True)
        Path(pw.pw_dir).mkdir(mode=0o750)
        os.chown(pw.pw_dir, pw.pw_uid, pw.pw_gid)
        shutil.rmtree(tmp, ignore_errors=True)
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _documented_runtime_env() -> str:
    """The --runtime-env-json of the documented `ray job submit` (docs/cluster.md)."""
    (text,) = set(re.findall(r"--runtime-env-json '([^']*)'", (ROOT / "docs" / "cluster.md").read_text()))
    return text


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.timeout(3000)  # the cycle is 8-9 min; each step below has its own bound
def test_onprem_cluster_up_submit_down(machine, shared_data, monkeypatch):
    from mlflow.tracking import MlflowClient
    from ray.job_submission import JobSubmissionClient

    tmp, pw = machine["tmp"], machine["pw"]
    home = Path(pw.pw_dir)
    operator = tmp / "operator"  # "your machine"'s home: the token lives in its ~/.ray/auth_token
    operator.mkdir()
    ports = {
        k: free_port() for k in ("gcs", "object_manager", "dashboard", "mlflow", "client", "agent", "metrics")
    }
    config = _fill_in(
        yaml.safe_load(ONPREM_YAML.read_text()),
        name=machine["name"],
        key=machine["key"],
        sshd_port=machine["sshd_port"],
        data=shared_data,
        shared=str(home / "shared"),
        ports=ports,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"HOME": str(operator)}
    done = subprocess.run(
        [str(BIN / "ray"), "get-auth-token", "--generate"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"ray get-auth-token --generate failed: {done.stderr}"
    (operator / ".ray" / "auth_token").chmod(0o600)  # as docs/cluster.md says
    # The MLflow login, written once on "your machine" as docs/cluster.md says; file_mounts ships it.
    mlflow_login = ("admin", secrets.token_urlsafe(24))
    (operator / ".mlflow").mkdir(mode=0o700)
    (operator / ".mlflow" / "credentials").write_text(
        f"[mlflow]\nmlflow_tracking_username = {mlflow_login[0]}\nmlflow_tracking_password = {mlflow_login[1]}\n"
    )
    (operator / ".mlflow" / "credentials").chmod(0o600)
    cluster = OnPremCluster(tmp, home, config, ports, operator)
    times: dict[str, float] = {}
    forward = None
    try:
        t0 = time.monotonic()
        done = cluster.ray(
            "up", "-y", "--no-config-cache", "--log-color", "false", str(cluster.file), timeout=1200
        )
        assert done.returncode == 0, f"ray up failed:\n{cluster.tails()}"
        times["ray up"] = time.monotonic() - t0

        # The check: the node's Ray answers with the token, and the project and pins are the virtualenv's.
        check = (
            'ray status && python -c "import landmix, ray, torch; '
            "print('node-check', ray.__version__, torch.__version__, landmix.__file__)\""
        )
        done = cluster.ray("exec", str(cluster.file), check, timeout=300)
        out = done.stdout + done.stderr
        assert done.returncode == 0 and "node-check 2.60.0 2.13.0" in out, (
            f"ray exec check failed:\n{out[-3000:]}"
        )
        assert "CPU" in out and f"{home}/landmix/platform/landmix" in out, out[-3000:]

        # `ray dashboard` forwards the job API over SSH; without the token the API refuses.
        local = free_port()
        flog = open(tmp / "dashboard-forward.log", "wb")
        forward = subprocess.Popen(
            [
                str(BIN / "ray"),
                "dashboard",
                "--port",
                str(local),
                "--remote-port",
                str(ports["dashboard"]),
                str(cluster.file),
            ],
            cwd=ROOT,
            env=cluster.env,
            stdout=flog,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        address = f"http://127.0.0.1:{local}"
        assert _wait_http(f"{address}/api/version", 120, forward) == 401, (
            f"no token asked for:\n{cluster.tails()}"
        )
        assert _wait_http(f"{address}/api/jobs/", 30) == 401, (
            "the job API answered a request without the token"
        )

        t0 = time.monotonic()
        sweep_name = f"onprem-smoke-{uuid.uuid4().hex[:6]}"
        submit = [
            "job",
            "submit",
            "--address",
            address,
            "--working-dir",
            ".",
            "--runtime-env-json",
            _documented_runtime_env(),
            "--submission-id",
            sweep_name,
            "--no-wait",
            "--",
            "python",
            "jobs/tune_mix.py",
            "--smoke-test",
            "--name",
            sweep_name,
        ]
        deadline = time.monotonic() + 300
        while True:  # a head that just came up may not have registered its job agent yet
            done = cluster.ray(*submit, timeout=300, env=cluster.env | {"RAY_AUTH_MODE": "token"})
            if done.returncode == 0 or "No available agent" not in done.stderr or time.monotonic() > deadline:
                break
            time.sleep(5)
        assert done.returncode == 0, f"ray job submit with the token failed:\n{done.stdout}\n{done.stderr}"
        jobs = JobSubmissionClient(address, headers={"Authorization": f"Bearer {cluster.token}"})
        deadline = time.monotonic() + 1500
        while not (status := str(jobs.get_job_status(sweep_name))).endswith(
            ("SUCCEEDED", "FAILED", "STOPPED")
        ):
            assert time.monotonic() < deadline, (
                f"job still {status} after 25 min:\n{jobs.get_job_logs(sweep_name)[-4000:]}"
            )
            time.sleep(5)
        logs = jobs.get_job_logs(sweep_name)
        assert status.endswith("SUCCEEDED"), f"job {status}:\n{logs[-5000:]}\n{cluster.tails()}"
        times["smoke job"] = time.monotonic() - t0

        # The head's MLflow server (on 127.0.0.1 here, the head's address) has the sweep; its settings put the
        # Tune results and the work folder on the "NFS export".
        # It asks for a login: refused without one, read with the operator's (as a laptop through a forward).
        mlflow_url = f"http://127.0.0.1:{ports['mlflow']}"
        assert _wait_http(f"{mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1", 30) == 401
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_login[0])
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_login[1])
        mlflow = MlflowClient(mlflow_url)
        exp = mlflow.get_experiment_by_name(sweep_name)
        assert exp is not None, f"no MLflow experiment {sweep_name} on the head; job logs:\n{logs[-3000:]}"
        (parent,) = mlflow.search_runs([exp.experiment_id], filter_string="tags.`landmix.role` = 'sweep'")
        assert parent.info.status == "FINISHED" and parent.data.metrics["n_failed_trials"] == 0
        runs = mlflow.search_runs([exp.experiment_id], max_results=100)
        names = {r.info.run_name for r in runs}
        assert names >= set(SMOKE_RUNS) and any(n.startswith("pretrain-s0-") for n in names), sorted(names)
        assert (home / "shared" / "ray" / sweep_name).is_dir() and (home / "shared" / "work").is_dir()
        assert list((home / "shared" / "mlflow").rglob("*")), "no MLflow artifact on the shared folder"
    finally:
        if forward is not None:
            os.killpg(forward.pid, signal.SIGTERM)
            try:
                forward.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(forward.pid, signal.SIGKILL)
                forward.wait()
            flog.close()
        t0 = time.monotonic()
        # The documented teardown (also after a failed step, whose error is the one reported): MLflow outlives
        # Ray on machines that stay up, so it is stopped first; then `ray down`.
        try:
            cluster.ray("exec", str(cluster.file), "kill -- -$(cat ~/mlflow/server.pid)", timeout=300)
            down = cluster.ray("down", "-y", str(cluster.file), timeout=600)
        except AssertionError as e:  # a timeout: the fixture still kills what is left
            down = subprocess.CompletedProcess([], 1, "", str(e))
        deadline = time.monotonic() + 60  # Ray's SSH masters linger 10 s (ControlPersist)
        while left := _user_pids(pw.pw_uid) + processes_naming(f"nc 127.0.0.1 {machine['sshd_port']}"):
            if time.monotonic() > deadline:
                break
            time.sleep(2)
        times["teardown"] = time.monotonic() - t0
        print(f"\non-prem cluster cycle: {json.dumps({k: round(v) for k, v in times.items()})} s", flush=True)
    assert down.returncode == 0, f"ray down failed:\n{down.stderr[-2000:]}\n{cluster.tails()}"
    assert not left, f"processes of the cluster outlived `ray down`:\n{_describe(left)}"
