"""cluster.yaml, cluster.onprem.yaml and deploy/kuberay-rayjob.yaml, checked offline: Ray's own schema, pins,
commands, uploads, token auth, and that the AWS and on-prem files run the same commands wherever they apply.

Ray's `prepare_config` only merges the provider's defaults.yaml from the installed Ray (no boto3, no AWS
call: the AWS bootstrap that talks to EC2 runs later, in `ray up`; for the local provider, it folds the
machines into Ray's one on-prem node type), then `validate_config` checks the merged config against
ray/autoscaler/ray-schema.json. tests/test_cluster_onprem.py brings cluster.onprem.yaml up for real.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
ONPREM_YAML = ROOT / "cluster.onprem.yaml"
CLUSTER_FILES = [CLUSTER_YAML, ONPREM_YAML]
RAYJOB_YAML = ROOT / "deploy" / "kuberay-rayjob.yaml"


def _cluster() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def _onprem() -> dict:
    return yaml.safe_load(ONPREM_YAML.read_text())


def _pins() -> dict[str, str]:
    """name -> version for every `name==version` dependency in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    return dict(re.findall(r'^\s*"([\w.-]+)(?:\[[^\]]*\])?==([\w.]+)"', text, flags=re.M))


def _all_commands(config: dict) -> list[str]:
    keys = (
        "initialization_commands",
        "setup_commands",
        "head_setup_commands",
        "worker_setup_commands",
        "head_start_ray_commands",
        "worker_start_ray_commands",
    )
    return [c for k in keys for c in config.get(k, [])]


def test_cluster_yaml_passes_rays_own_schema(monkeypatch):
    import socket

    from ray.autoscaler._private.util import prepare_config, validate_config

    def no_network(*args):
        raise AssertionError(f"prepare_config/validate_config tried to reach {args[1:]}")

    monkeypatch.setattr(socket.socket, "connect", no_network)  # the check must stay offline
    prepared = prepare_config(_cluster())
    validate_config(prepared)  # raises jsonschema.ValidationError naming the bad field
    assert prepared["provider"]["type"] == "aws"
    assert prepared["head_node_type"] == "head"


def test_onprem_yaml_passes_rays_own_schema(monkeypatch):
    import socket

    from ray.autoscaler._private.util import prepare_config, validate_config

    def no_network(*args):
        raise AssertionError(f"prepare_config/validate_config tried to reach {args[1:]}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    prepared = prepare_config(_onprem())
    validate_config(prepared)
    # SSH and a virtualenv, no Docker
    assert prepared["provider"]["type"] == "local" and "docker" not in _onprem()
    assert prepared["head_node_type"] == "local.cluster.node"
    # The file has a worker entry to fill in (a GPU box), and Ray keeps every listed worker running.
    (worker,) = prepared["provider"]["worker_ips"]
    assert prepared["available_node_types"]["local.cluster.node"]["min_workers"] == 1, worker


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: p.name)
def test_every_key_in_the_cluster_files_is_commented(path):
    lines = path.read_text().splitlines()
    key = re.compile(r'^\s*(- )?("[^"]+"|[A-Za-z_][\w.-]*)\s*:(\s|$)')
    bare = []
    for i, line in enumerate(lines):
        if line.lstrip().startswith("#") or not key.match(line):
            continue
        above = lines[i - 1].strip() if i else ""
        if "#" not in line and not above.startswith("#"):
            bare.append(f"{path.name}:{i + 1}: {line.strip()}")
    assert not bare, "keys without a comment on or above their line:\n" + "\n".join(bare)


def test_images_and_setup_pin_the_pyproject_versions():
    pins, config = _pins(), _cluster()
    ray_tag = f"rayproject/ray:{pins['ray']}-py311"
    images = [config["docker"]["head_image"], config["docker"]["worker_image"]]
    images += [t["docker"]["worker_image"] for t in config["available_node_types"].values() if "docker" in t]
    assert images and all(img.startswith(ray_tag) for img in images), images
    setup = " ".join(config["setup_commands"])
    assert "pip install -q -e /home/ray/landmix" in setup  # the project, from file_mounts, on every node
    assert f"'{pins['ray']}'" in setup and f"'{pins['torch']}'" in setup and "(3, 11)" in setup
    assert config["file_mounts"]["/home/ray/landmix"] == "."


def test_node_types_head_gpu_and_cpu_workers():
    config = _cluster()
    types = config["available_node_types"]
    assert types["head"]["resources"] == {"CPU": 0}  # the head serves: drivers, autoscaler, MLflow
    instance = {name: t["node_config"]["InstanceType"] for name, t in types.items()}
    assert instance["gpu_1x"] == "g5.xlarge" and instance["gpu_4x"] == "g5.12xlarge"
    assert instance["cpu"].startswith(("c5", "c6", "m5", "m6"))
    for name in ("gpu_1x", "gpu_4x", "cpu"):
        assert types[name]["min_workers"] == 0 and 0 < types[name]["max_workers"] <= config["max_workers"]
        # Workers write checkpoints and shards to S3 themselves, so they need an instance profile too.
        assert "IamInstanceProfile" in types[name]["node_config"]


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: p.name)
def test_every_command_is_valid_bash(path):
    for cmd in _all_commands(yaml.safe_load(path.read_text())):
        done = subprocess.run(["bash", "-n", "-c", cmd], capture_output=True, text=True)
        assert done.returncode == 0, f"bash -n rejects {cmd!r}: {done.stderr}"


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: p.name)
def test_start_commands_turn_token_auth_on_and_keep_dashboard_on_loopback(path):
    config = yaml.safe_load(path.read_text())
    head = " ".join(config["head_start_ray_commands"])
    worker = " ".join(config["worker_start_ray_commands"])
    for cmds in (head, worker):
        assert "export RAY_AUTH_MODE=token" in cmds and "source ~/landmix.env" in cmds
    assert "export RAY_AUTH_MODE=token" in config["setup_commands"][0]  # Ray's commands on a node, too
    assert "--dashboard-host=127.0.0.1" in head and "--head" in head
    assert "--address=$RAY_HEAD_IP:6379" in worker
    # The token `ray get-auth-token --generate` wrote on the operator's machine reaches every node.
    token = [remote for remote, local in config["file_mounts"].items() if local == "~/.ray/auth_token"]
    assert token and token[0].endswith("/.ray/auth_token"), config["file_mounts"]
    # Nothing binds to every interface.
    assert not [c for c in _all_commands(config) if "0.0.0.0" in c], (
        f"a service in {path.name} binds to 0.0.0.0"
    )


def test_platform_settings_reach_every_node():
    config = _cluster()
    setup = " ".join(config["setup_commands"])
    assert re.search(r"LANDMIX_STORAGE_PATH=s3://[\w.-]+/", setup)
    assert re.search(r"LANDMIX_MLFLOW_ARTIFACTS=s3://[\w.-]+/", setup)
    assert "MLFLOW_TRACKING_URI=http://$LANDMIX_HEAD_IP:5000" in " ".join(config["head_setup_commands"])
    assert "MLFLOW_TRACKING_URI=http://$RAY_HEAD_IP:5000" in " ".join(config["worker_setup_commands"])


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: p.name)
def test_head_starts_the_platforms_mlflow_server_off_loopback_with_a_login_and_allowed_hosts(path):
    from landmix import mlflow_server

    (cmd,) = [
        c for c in yaml.safe_load(path.read_text())["head_setup_commands"] if "landmix mlflow-server" in c
    ]
    args = shlex.split(cmd.split("landmix mlflow-server", 1)[1].split(">", 1)[0])
    args = [
        a.replace("$LANDMIX_HEAD_IP", "10.0.0.5")
        .replace("$LANDMIX_MLFLOW_ARTIFACTS", "s3://b/m")
        .replace("$HOME", "/home/ray")
        for a in args
    ]
    parser = argparse.ArgumentParser()
    mlflow_server.add_arguments(parser)
    ns = parser.parse_args(args)  # the flags exist in `landmix mlflow-server`
    assert ns.auth and not ns.insecure_no_auth  # MLflow's basic-auth app: a login for every request
    spec = mlflow_server.ServerSpec(
        store=ns.store,
        host=ns.host,
        port=ns.port,
        backend_store_uri=ns.backend_store_uri,
        artifacts_destination=ns.artifacts_destination,
        auth=ns.auth,
    )
    server = spec.command()
    assert ns.host == "10.0.0.5" and ns.backend_store_uri.startswith("sqlite:////")
    assert server[server.index("--artifacts-destination") + 1] == "s3://b/m"
    assert "10.0.0.5" in server[server.index("--allowed-hosts") + 1]
    assert server[server.index("--app-name") + 1] == "basic-auth"
    assert "nohup" in cmd and "server.pid" in cmd  # a background service, restartable
    # `ray up` waits for the server's start line (printed once the admin logged in) and fails without it.
    (wait,) = [c for c in yaml.safe_load(path.read_text())["head_setup_commands"] if "^MLflow server:" in c]
    assert "server.pid" in wait and "exit 1" in wait


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: p.name)
def test_the_mlflow_login_reaches_every_node_as_a_private_file_never_as_a_setting(path):
    config = yaml.safe_load(path.read_text())
    # The operator's MLflow client file (username and password), shipped as Ray's token is, owner-only.
    logins = [remote for remote, local in config["file_mounts"].items() if local == "~/.mlflow/credentials"]
    assert logins and logins[0].endswith("/.mlflow/credentials"), config["file_mounts"]
    assert "chmod 600 ~/.mlflow/credentials" in " ".join(config["setup_commands"])
    # Never a password in a command, the node settings (~/landmix.env) or the job's runtime_env.
    secret = re.compile(r"MLFLOW_(TRACKING_PASSWORD|TRACKING_USERNAME|AUTH_ADMIN_PASSWORD)|password", re.I)
    assert not [c for c in _all_commands(config) if secret.search(c)]
    assert not [c for c in _all_commands(config) if "--insecure-no-auth" in c]


def test_job_runtime_env_never_carries_an_mlflow_login(monkeypatch):
    """What settings.ray_runtime_env_vars forwards is job metadata (the dashboard shows it): no login."""
    from landmix import settings

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "never-in-job-metadata")
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "never-in-job-metadata")
    assert "never-in-job-metadata" not in json.dumps(settings.ray_runtime_env_vars())
    for _, env in _runtime_env_jsons():
        assert not secret_names(env), env
    (rayjob,) = [d for d in yaml.safe_load_all(RAYJOB_YAML.read_text()) if d["kind"] == "RayJob"]
    assert not secret_names(yaml.safe_load(rayjob["spec"]["runtimeEnvYAML"]))
    # KubeRay: every pod reads the login from a Secret mounted as ~/.mlflow/credentials instead.
    cluster = rayjob["spec"]["rayClusterSpec"]
    for pod in [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]:
        (volume,) = [v for v in pod["spec"]["volumes"] if "secret" in v]
        mounts = {m["name"]: m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
        assert mounts[volume["name"]] == "/home/ray/.mlflow", pod


def secret_names(env: dict) -> list[str]:
    return [k for k in env.get("env_vars", {}) if "PASSWORD" in k or "USERNAME" in k]


def _runtime_env_jsons() -> list[tuple[str, dict]]:
    found = []
    for path in (ROOT / "docs" / "cluster.md", ROOT / "README.md", CLUSTER_YAML, ONPREM_YAML):
        if path.exists():
            for text in re.findall(r"--runtime-env-json '([^']*)'", path.read_text()):
                found.append((path.name, json.loads(text)))
    return found


def test_documented_job_upload_excludes_data_venv_and_results(tmp_path):
    """Zip a fake checkout with Ray's own working_dir packager and the documented excludes."""
    from ray._private.runtime_env.packaging import create_package

    docs = _runtime_env_jsons()
    assert any(name in ("cluster.md", "README.md") for name, _ in docs), "no --runtime-env-json in the docs"
    repo = tmp_path / "repo"
    for rel in (
        "jobs/tune_mix.py",
        "platform/landmix/data/keep.py",
        ".venv/lib/x.py",
        "data/300w/a.png",
        "runs/mlflow.db",
        "out/shards/p.parquet",
        ".git/HEAD",
        "platform/landmix/cli.py",
    ):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("x")
    for name, env in docs:
        target = tmp_path / f"{name}.zip"
        create_package(str(repo), target, include_gitignore=False, excludes=env["excludes"])
        shipped = set(zipfile.ZipFile(target).namelist())
        assert {"jobs/tune_mix.py", "platform/landmix/cli.py", "platform/landmix/data/keep.py"} <= shipped, (
            name
        )
        leaked = [f for f in shipped if f.split("/")[0] in (".venv", "data", "runs", "out", ".git")]
        assert not leaked, f"{name}: the upload would ship {leaked}"


def test_kuberay_rayjob_manifest():
    docs = list(yaml.safe_load_all(RAYJOB_YAML.read_text()))
    (job,) = [d for d in docs if d["kind"] == "RayJob"]
    assert job["apiVersion"] == "ray.io/v1"
    spec = job["spec"]
    assert "jobs/tune_mix.py" in spec["entrypoint"] and spec["shutdownAfterJobFinishes"] is True
    env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert env["working_dir"] and env["pip"] and env["env_vars"]["RAY_AUTH_MODE"]
    assert env["env_vars"]["LANDMIX_STORAGE_PATH"].startswith("s3://")
    cluster = spec["rayClusterSpec"]
    ray_pin = _pins()["ray"]
    assert cluster["rayVersion"] == ray_pin
    head = cluster["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP"  # nothing exposed outside Kubernetes
    assert head["rayStartParams"]["num-cpus"] == "0"
    pods = [head["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    images = [c["image"] for p in pods for c in p["spec"]["containers"]]
    assert all(img.startswith(f"rayproject/ray:{ray_pin}-py311") for img in images), images
    groups = {g["groupName"]: g for g in cluster["workerGroupSpecs"]}
    assert groups["gpu-1x"]["minReplicas"] == 0
    gpu = groups["gpu-1x"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu["nvidia.com/gpu"] == 1


# The commands only one route runs: AWS mounts EFS, keeps MLflow's database on the host, runs in the Ray image
# (its pip, no virtualenv), needs boto3 and learns the head's address from EC2; on-prem checks the NFS mount
# and makes a virtualenv. Every other command must be the same in both files.
ROUTE_ONLY = {
    "cluster.yaml": (
        "mount -t nfs4",
        "mkdir -p /home/ubuntu/landmix-mlflow",
        "pip install -q 'boto3",
        "get_node_ip_address",
    ),
    "cluster.onprem.yaml": ("mountpoint -q /mnt/landmix", "python3.11 -m venv"),
}
COMMAND_LISTS = (
    "initialization_commands",
    "setup_commands",
    "head_setup_commands",
    "worker_setup_commands",
    "head_start_ray_commands",
    "worker_start_ray_commands",
)


def _is_settings(cmd: str) -> bool:
    return "> ~/landmix.env &&" in cmd  # the command that (re)writes a node's settings file


def _shared_commands(config: dict, name: str) -> dict[str, list[str]]:
    """Each command list without the route's own commands and its settings, in the on-prem spelling of paths
    (the AWS container's home is /home/ray)."""
    return {
        k: [
            c.replace("/home/ray/", "~/")
            for c in config.get(k, [])
            if not _is_settings(c) and not any(m in c for m in ROUTE_ONLY[name])
        ]
        for k in COMMAND_LISTS
    }


def _settings(config: dict) -> set[str]:
    (cmd,) = [c for c in config["setup_commands"] if _is_settings(c)]
    assert cmd.rstrip().endswith(
        "(grep -q landmix.env ~/.bashrc || echo 'source ~/landmix.env' >> ~/.bashrc)"
    )
    return set(re.findall(r"export (\w+)=", cmd))


def _drift(aws: dict, onprem: dict) -> list[str]:
    """Where the two cluster files disagree outside what each route needs for itself."""
    a, o = _shared_commands(aws, "cluster.yaml"), _shared_commands(onprem, "cluster.onprem.yaml")
    problems = [
        f"{k}: cluster.yaml runs {a[k]}, cluster.onprem.yaml runs {o[k]}"
        for k in COMMAND_LISTS
        if a[k] != o[k]
    ]
    # On-prem names the head's address in its settings (AWS asks EC2) and puts the virtualenv on PATH.
    if _settings(onprem) - _settings(aws) != {"LANDMIX_HEAD_IP", "PATH"} or not _settings(aws) <= _settings(
        onprem
    ):
        problems.append(
            f"settings differ: cluster.yaml {sorted(_settings(aws))}, on-prem {sorted(_settings(onprem))}"
        )
    mounts = {k.replace("/home/ray/", "~/"): v for k, v in aws["file_mounts"].items()}
    if mounts != onprem["file_mounts"]:
        problems.append(f"file_mounts differ: {mounts} vs {onprem['file_mounts']}")
    for key in ("rsync_exclude", "rsync_filter", "cluster_synced_files", "file_mounts_sync_continuously"):
        if aws[key] != onprem[key]:
            problems.append(f"{key} differs: {aws[key]} vs {onprem[key]}")
    return problems


def test_aws_and_onprem_files_run_the_same_commands_where_they_apply():
    assert _drift(_cluster(), _onprem()) == []


def test_the_drift_check_catches_a_command_changed_in_one_file():
    aws, onprem = _cluster(), _onprem()
    onprem["head_start_ray_commands"][-1] += " --include-dashboard=false"
    assert _drift(aws, onprem)
    aws, onprem = _cluster(), _onprem()
    aws["setup_commands"][0] = aws["setup_commands"][0].replace("LANDMIX_WORK", "LANDMIX_WORKDIR")
    assert _drift(aws, onprem)


def test_onprem_settings_name_the_head_and_the_nfs_export():
    config = _onprem()
    settings = dict(re.findall(r"export (\w+)=(\S+)'", config["setup_commands"][0]))
    assert settings["LANDMIX_HEAD_IP"] == config["provider"]["head_ip"]  # MLflow listens where workers look
    # Ray's storage_path, the work folder and MLflow's artifacts on the NFS export that every machine mounts,
    # and `ray up` stops if it is not mounted.
    for key in ("LANDMIX_STORAGE_PATH", "LANDMIX_WORK", "LANDMIX_MLFLOW_ARTIFACTS"):
        assert settings[key].startswith("/mnt/landmix/"), (key, settings[key])
    assert any("mountpoint -q /mnt/landmix" in c and "exit 1" in c for c in config["initialization_commands"])
    assert settings["PATH"].startswith("$HOME/landmix-venv/bin")
    setup = " ".join(config["setup_commands"])
    assert "python3.11 -m venv ~/landmix-venv" in setup and "pip install -q -e ~/landmix" in setup
    assert config["file_mounts"]["~/landmix"] == "."
    assert config["auth"]["ssh_user"] and config["auth"]["ssh_private_key"]
