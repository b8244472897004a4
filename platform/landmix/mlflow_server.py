"""The platform's MLflow tracking server: one command, a database backend and a proxied artifact store.

    landmix mlflow-server --store runs/mlflow            # SQLite + local artifacts, 127.0.0.1:5000
    landmix mlflow-server --auth --backend-store-uri postgresql://user@db/mlflow \
        --artifacts-destination s3://bucket/mlflow --host 10.0.0.5   # on a cluster head

Clients then set MLFLOW_TRACKING_URI=http://HOST:PORT (the one setting jobs read). Artifacts are
proxied through the server (`--serve-artifacts`), so workers need no storage credentials of their own.
The server binds to 127.0.0.1 unless told otherwise; a non-loopback host sets --allowed-hosts.

`--auth` runs MLflow's basic-auth app: every request but /health needs a login. The admin user is created
at the first start of a store, with the password from the environment: MLFLOW_AUTH_ADMIN_PASSWORD (MLflow's
own name; MLFLOW_AUTH_ADMIN_USERNAME, default "admin"), else this machine's MLflow client login when it
names the admin (MLFLOW_TRACKING_USERNAME/PASSWORD, or ~/.mlflow/credentials: how a cluster head gets it).
Never MLflow's old default password, never from the repository. The auth state lives in the store folder,
owner-only: basic_auth.ini (no password in it), basic_auth.db (users, password hashes) and the Flask
secret key. Every start checks that the configured password logs in, and says so when the admin of an
existing store has another one. Off loopback, `--auth` is required unless `--insecure-no-auth` says the
network alone is trusted.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")
LEGACY_DEFAULT_PASSWORD = "password1234"  # the admin password older MLflow versions shipped: public knowledge
MIN_PASSWORD_LENGTH = 12  # MLflow's own password policy


@dataclass
class ServerSpec:
    """How to run the tracking server.

    store: a local folder holding mlflow.db and artifacts/ when the two URIs below are not given, and with
        auth on, the auth state (basic_auth.ini, basic_auth.db, the Flask secret key; owner-only).
    backend_store_uri: database URI (sqlite:////abs/path.db or postgresql://...).
    artifacts_destination: where the server writes artifacts (a folder or s3://bucket/prefix).
    host/port: the bind address; 127.0.0.1 by default so nothing outside this machine reaches it.
    auth: MLflow's basic-auth app (a login for every request but /health).
    insecure_no_auth: allow a non-loopback host without auth (a network that is trusted by itself).
    """

    store: Path
    host: str = "127.0.0.1"
    port: int = 5000
    backend_store_uri: str | None = None
    artifacts_destination: str | None = None
    workers: int = 1
    auth: bool = False
    insecure_no_auth: bool = False

    def __post_init__(self):
        if self.host not in LOOPBACK and not self.auth and not self.insecure_no_auth:
            raise ValueError(
                f"--host {self.host} would open MLflow beyond this machine with no login: add --auth (the admin "
                "password from MLFLOW_AUTH_ADMIN_PASSWORD), or --insecure-no-auth if that network alone is "
                "trusted"
            )

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
        if self.auth:
            cmd += ["--app-name", "basic-auth"]
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

    @property
    def auth_db(self) -> Path:
        """The auth app's users and password hashes (SQLite, in the store folder)."""
        return Path(self.store).resolve() / "basic_auth.db"


def admin_login() -> tuple[str, str]:
    """The admin's (username, password) from the environment; ValueError saying what to set when there is none
    or it is MLflow's old default or too short."""
    from landmix import tracking

    username = os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME") or "admin"
    password = os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD")
    source = "MLFLOW_AUTH_ADMIN_PASSWORD"
    if not password:
        client_user, client_password = tracking.credentials()
        if client_user == username and client_password:
            password, source = (
                client_password,
                "this machine's MLflow login (MLFLOW_TRACKING_PASSWORD or ~/.mlflow/credentials)",
            )
    if not password:
        raise ValueError(
            f"--auth needs the admin password in the environment: set MLFLOW_AUTH_ADMIN_PASSWORD (at least "
            f"{MIN_PASSWORD_LENGTH} characters, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`),"
            f" or give this machine an MLflow login as {username!r} (~/.mlflow/credentials, docs/cluster.md)"
        )
    if password == LEGACY_DEFAULT_PASSWORD:
        raise ValueError(
            f"{source} is {LEGACY_DEFAULT_PASSWORD!r}, the admin password older MLflow versions shipped and "
            "everyone knows: choose another one"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"{source} is shorter than {MIN_PASSWORD_LENGTH} characters: choose a longer one")
    return username, password


def _write_private(path: Path, text: str) -> None:
    """Write `text` readable by this user alone (0600), whatever the umask and whatever was there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


def auth_env(spec: ServerSpec, username: str, password: str) -> dict[str, str]:
    """The environment that runs MLflow's basic-auth app on `spec.store`: a private basic_auth.ini (the user
    database in the store folder; no password in it), the static Flask secret key (CSRF of the sign-up form,
    made once) and the admin login, which MLflow reads at the store's first start only."""
    store = Path(spec.store).resolve()
    store.mkdir(parents=True, exist_ok=True)
    ini = store / "basic_auth.ini"
    _write_private(
        ini,
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{spec.auth_db}\n"
        f"admin_username = {username}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # A login's password hash (PBKDF2) costs the server ~0.5 s of CPU; without this cache every request
        # of every Train worker pays it. Changes through MLflow's user API take effect at once (one worker).
        "auth_cache_ttl_seconds = 60\n",
    )
    key_file = store / "flask_secret_key"
    if not key_file.exists():
        _write_private(key_file, secrets.token_hex(32))
    key_file.chmod(0o600)
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_AUTH_ADMIN_USERNAME": username,
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
        or key_file.read_text().strip(),
    }


def login_status(url: str, username: str | None = None, password: str | None = None) -> int:
    """The HTTP status of an authenticated (or, without a username, anonymous) request for the current user."""
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/users/current")
    if username is not None:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def check_admin_login(spec: ServerSpec, username: str, password: str) -> None:
    """Raise ValueError, saying what to do, unless the configured admin password logs in: MLflow sets it at a
    store's first start only, so an admin made earlier with another password keeps that one."""
    status = login_status(spec.url, username, password)
    if status == 200:
        return
    if status == 401:
        raise ValueError(
            f"the admin user {username!r} of {spec.auth_db} already exists with another password (MLflow sets it "
            "at a store's first start only): set MLFLOW_AUTH_ADMIN_PASSWORD to that password, or change it with "
            "MLflow's update-password API (docs/cluster.md), or remove that file to start its users afresh"
        )
    raise RuntimeError(f"{spec.url} answered {status} to the admin's login check; see the server's log")


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


def _launch(spec: ServerSpec, **popen) -> subprocess.Popen:
    """Start the server in a process group of its own, wait until it is healthy and, with auth, until the
    admin's password logs in; stop it again if that fails."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    login = None
    if spec.auth:
        login = admin_login()
        env |= auth_env(spec, *login)
    proc = subprocess.Popen(spec.command(), env=env, start_new_session=True, **popen)
    try:
        wait_healthy(spec.url, proc=proc)
        if login:
            check_admin_login(spec, *login)
            spec.auth_db.chmod(0o600)  # the password hashes: owner-only, as the rest of the auth state
    except BaseException:
        stop(proc)
        raise
    return proc


def start(spec: ServerSpec, log_path: Path | None = None) -> subprocess.Popen:
    """Start the server in its own process group and wait until it is healthy (and its admin logs in)."""
    Path(spec.store).mkdir(parents=True, exist_ok=True)
    with open(log_path or Path(spec.store) / "server.log", "ab") as log:  # the child keeps its own copy
        return _launch(spec, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """Stop the server and every process it started (uvicorn workers, job runners): its process group."""
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
        help="folder for mlflow.db and artifacts/ (default runs/mlflow), and the auth state with --auth",
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
    parser.add_argument(
        "--auth",
        action="store_true",
        help="require a login (MLflow's basic-auth app); the admin password from MLFLOW_AUTH_ADMIN_PASSWORD "
        "(or ~/.mlflow/credentials), set at the store's first start",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow a --host beyond loopback without --auth: anyone who reaches it reads and writes every run",
    )


def run(args) -> int:
    spec = ServerSpec(
        store=args.store,
        host=args.host,
        port=args.port,
        backend_store_uri=args.backend_store_uri,
        artifacts_destination=args.artifacts_destination,
        workers=args.workers,
        auth=args.auth,
        insecure_no_auth=args.insecure_no_auth,
    )
    # The server runs in a process group of its own (its workers and job runners with it), its output on this
    # terminal or log. SIGTERM to this process (`kill -- -PGID` of cluster.yaml's background job) or Ctrl-C
    # stops that whole group, during the start too, and waits for it.
    signal.signal(signal.SIGTERM, _terminated)
    proc = _launch(spec)
    login = f"; log in as {os.environ.get('MLFLOW_AUTH_ADMIN_USERNAME') or 'admin'}" if spec.auth else ""
    print(f"MLflow server: {spec.url}  (set MLFLOW_TRACKING_URI={spec.url}{login})", flush=True)
    try:
        return proc.wait()
    except (KeyboardInterrupt, Terminated):
        stop(proc)
        return 0


class Terminated(BaseException):
    """SIGTERM, raised where the process is (a wait), so that the server is stopped outside the handler."""


def _terminated(signum, frame):
    raise Terminated()
