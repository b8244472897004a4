"""cluster.yaml and deploy/kuberay-rayjob.yaml, checked offline: Ray's own schema, pins, commands, uploads.

Ray's `prepare_config` only merges the provider's defaults.yaml from the installed Ray (no boto3, no AWS
call: the AWS bootstrap that talks to EC2 runs later, in `ray up`), then `validate_config` checks the
merged config against ray/autoscaler/ray-schema.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
RAYJOB_YAML = ROOT / "deploy" / "kuberay-rayjob.yaml"


def _cluster() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def _pins() -> dict[str, str]:
    """name -> version for every `name==version` dependency in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    return dict(re.findall(r'^\s*"([\w.-]+)(?:\[[^\]]*\])?==([\w.]+)"', text, flags=re.M))


def _all_commands(config: dict) -> list[str]:
    keys = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
            "head_start_ray_commands", "worker_start_ray_commands")  # fmt: skip
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


def test_every_key_in_cluster_yaml_is_commented():
    lines = CLUSTER_YAML.read_text().splitlines()
    key = re.compile(r'^\s*(- )?("[^"]+"|[A-Za-z_][\w.-]*)\s*:(\s|$)')
    bare = []
    for i, line in enumerate(lines):
        if line.lstrip().startswith("#") or not key.match(line):
            continue
        above = lines[i - 1].strip() if i else ""
        if "#" not in line and not above.startswith("#"):
            bare.append(f"cluster.yaml:{i + 1}: {line.strip()}")
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


def test_every_command_is_valid_bash():
    for cmd in _all_commands(_cluster()):
        done = subprocess.run(["bash", "-n", "-c", cmd], capture_output=True, text=True)
        assert done.returncode == 0, f"bash -n rejects {cmd!r}: {done.stderr}"


def test_start_commands_set_auth_mode_and_keep_dashboard_on_loopback():
    config = _cluster()
    head = " ".join(config["head_start_ray_commands"])
    worker = " ".join(config["worker_start_ray_commands"])
    for cmds in (head, worker):
        assert "export RAY_AUTH_MODE=" in cmds and "source ~/landmix.env" in cmds
    assert "--dashboard-host=127.0.0.1" in head and "--head" in head
    assert "--address=$RAY_HEAD_IP:6379" in worker


def test_platform_settings_reach_every_node():
    config = _cluster()
    setup = " ".join(config["setup_commands"])
    assert re.search(r"LANDMIX_STORAGE_PATH=s3://[\w.-]+/", setup)
    assert re.search(r"LANDMIX_MLFLOW_ARTIFACTS=s3://[\w.-]+/", setup)
    assert "MLFLOW_TRACKING_URI=http://$HEAD_IP:5000" in " ".join(config["head_setup_commands"])
    assert "MLFLOW_TRACKING_URI=http://$RAY_HEAD_IP:5000" in " ".join(config["worker_setup_commands"])


def test_head_starts_the_platforms_mlflow_server_off_loopback_with_allowed_hosts():
    from landmix import mlflow_server

    (cmd,) = [c for c in _cluster()["head_setup_commands"] if "landmix mlflow-server" in c]
    args = shlex.split(cmd.split("landmix mlflow-server", 1)[1].split(">", 1)[0])
    args = [a.replace("$LANDMIX_HEAD_IP", "10.0.0.5").replace("$LANDMIX_MLFLOW_ARTIFACTS", "s3://b/m")
            for a in args]  # fmt: skip
    parser = argparse.ArgumentParser()
    mlflow_server.add_arguments(parser)
    ns = parser.parse_args(args)  # the flags exist in `landmix mlflow-server`
    spec = mlflow_server.ServerSpec(store=ns.store, host=ns.host, port=ns.port,
                                    backend_store_uri=ns.backend_store_uri,
                                    artifacts_destination=ns.artifacts_destination)  # fmt: skip
    server = spec.command()
    assert ns.host == "10.0.0.5" and ns.backend_store_uri.startswith("sqlite:////")
    assert server[server.index("--artifacts-destination") + 1] == "s3://b/m"
    assert "10.0.0.5" in server[server.index("--allowed-hosts") + 1]
    assert "nohup" in cmd and "server.pid" in cmd  # a background service, restartable


def _runtime_env_jsons() -> list[tuple[str, dict]]:
    found = []
    for path in (ROOT / "docs" / "cluster.md", ROOT / "README.md", CLUSTER_YAML):
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
