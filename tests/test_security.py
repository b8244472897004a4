"""Security checks: what cluster.yaml opens, how the MLflow server binds, and no unpickling in the platform.

The Ray dashboard, job API, client port and GCS carry no authentication unless token auth is on, and the
MLflow server none unless started with --auth: so the cluster opens SSH alone (everything else through port
forwards), MLflow binds to loopback unless told otherwise and then asks for a login (tests/test_mlflow_server.py
checks the lock on a real server) and checks Host headers, and the platform never unpickles a
file (checkpoints load with torch.load(weights_only=True)). The source scan walks platform/landmix/**/*.py
with the AST, so it also covers modules written later.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import yaml

from landmix import mlflow_server

ROOT = Path(__file__).resolve().parents[1]
# dashboard/jobs, client, GCS, MLflow, ...
UNAUTHENTICATED_PORTS = {8265, 10001, 6379, 5000, 8076, 52365, 8080}
WORLD = {"0.0.0.0/0", "::/0"}


def _cluster() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def _inbound_problems(rules: list[dict]) -> list[str]:
    """Reasons a list of EC2 IpPermissions opens more than SSH (22/tcp)."""
    problems = []
    for rule in rules:
        proto, lo, hi = str(rule.get("IpProtocol")), rule.get("FromPort"), rule.get("ToPort")
        if proto == "-1" or lo is None or hi is None:
            problems.append(f"rule opens every port: {rule}")
            continue
        exposed = sorted(p for p in UNAUTHENTICATED_PORTS if lo <= p <= hi)
        if exposed:
            problems.append(f"rule opens unauthenticated port(s) {exposed}: {rule}")
        if (proto, lo, hi) != ("tcp", 22, 22):
            problems.append(f"rule opens {proto} {lo}-{hi}, only 22/tcp (SSH) is allowed: {rule}")
        sources = [r.get("CidrIp") for r in rule.get("IpRanges", [])]
        sources += [r.get("CidrIpv6") for r in rule.get("Ipv6Ranges", [])]
        if WORLD & set(sources) and (lo, hi) != (22, 22):
            problems.append(f"rule opens {lo}-{hi} to the whole internet: {rule}")
    return problems


def test_security_group_opens_ssh_only():
    provider = _cluster()["provider"]
    rules = provider["security_group"]["IpPermissions"]
    assert rules, "cluster.yaml: provider.security_group.IpPermissions must list the SSH rule"
    assert _inbound_problems(rules) == []
    sources = {r["CidrIp"] for rule in rules for r in rule.get("IpRanges", [])}
    assert not sources & WORLD, "SSH should come from the operators' CIDR, not the whole internet"


def test_security_group_checker_rejects_open_ports():
    bad = [
        {"IpProtocol": "tcp", "FromPort": 8265, "ToPort": 8265, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 65535, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
    ]
    assert all(_inbound_problems([rule]) for rule in bad)


def test_cluster_services_bind_privately():
    config = _cluster()
    commands = [c for k, v in config.items() if k.endswith("_commands") for c in v]
    assert not [c for c in commands if "0.0.0.0" in c], "a service in cluster.yaml binds to 0.0.0.0"
    assert any("--dashboard-host=127.0.0.1" in c for c in config["head_start_ray_commands"])
    for node_type in config["available_node_types"].values():
        assert "NetworkInterfaces" not in node_type["node_config"]  # would bypass the security group


def test_token_auth_is_documented():
    docs = [ROOT / "cluster.yaml", ROOT / "docs" / "cluster.md", ROOT / "README.md"]
    text = "".join(p.read_text() for p in docs if p.exists())
    assert "RAY_AUTH_MODE=token" in text and "ray get-auth-token --generate" in text


def test_mlflow_login_is_documented():
    docs = [ROOT / "docs" / "cluster.md", ROOT / "README.md"]
    text = "".join(p.read_text() for p in docs)
    assert "landmix mlflow-server --auth" in text and "~/.mlflow/credentials" in text
    assert "no authentication" not in text


def test_kuberay_head_is_not_exposed_outside_kubernetes():
    (job,) = yaml.safe_load_all((ROOT / "deploy" / "kuberay-rayjob.yaml").read_text())
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP"


def test_mlflow_server_binds_loopback_by_default(tmp_path):
    parser = argparse.ArgumentParser()
    mlflow_server.add_arguments(parser)
    assert parser.parse_args([]).host == "127.0.0.1"
    cmd = mlflow_server.ServerSpec(store=tmp_path).command()
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"


def test_mlflow_server_off_loopback_checks_host_headers(tmp_path):
    """The allowed hosts, judged by MLflow's own Host-header check (the server runs the same function)."""
    from mlflow.server.security_utils import is_allowed_host_header

    for host in ("10.0.0.5", "0.0.0.0"):
        cmd = mlflow_server.ServerSpec(store=tmp_path, host=host, port=5000, auth=True).command()
        allowed = cmd[cmd.index("--allowed-hosts") + 1].split(",")
        assert "*" not in allowed
        assert is_allowed_host_header(allowed, f"{host}:5000")
        assert is_allowed_host_header(allowed, "localhost:5000")  # an SSH port forward from a laptop
        assert is_allowed_host_header(allowed, "127.0.0.1:5000")
        assert not is_allowed_host_header(allowed, "evil.example.com")  # DNS rebinding
        assert not is_allowed_host_header(allowed, "evil.example.com:5000")


# --- unpickling ------------------------------------------------------------------------------------------

PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve"}


def _kwarg(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<expr>"
    return None


def unsafe_loads(source: str, filename: str = "<string>") -> list[str]:
    """Every place in `source` that unpickles, or loads with pickle allowed: 'file:line: reason'."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module in PICKLERS:
            if any(a.name in ("load", "loads", "Unpickler") for a in node.names):
                found.append(f"{where}: imports a loader from {node.module}")
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
        attr = node.func.attr
        if owner in PICKLERS and attr in ("load", "loads", "Unpickler", "open"):
            found.append(f"{where}: {owner}.{attr} unpickles")
        elif attr == "read_pickle":
            found.append(f"{where}: {owner}.read_pickle unpickles")
        elif owner == "torch" and attr == "load" and _kwarg(node, "weights_only") is not True:
            found.append(f"{where}: torch.load without weights_only=True")
        elif (
            owner in ("np", "numpy") and attr == "load" and _kwarg(node, "allow_pickle") not in (None, False)
        ):
            found.append(f"{where}: np.load with allow_pickle")
        elif owner == "yaml" and (attr == "unsafe_load" or (attr == "load" and not _safe_loader(node))):
            found.append(f"{where}: yaml.{attr} can build arbitrary objects (use yaml.safe_load)")
    return found


def _safe_loader(call: ast.Call) -> bool:
    loader = next((kw.value for kw in call.keywords if kw.arg == "Loader"), None)
    if loader is None and len(call.args) > 1:
        loader = call.args[1]
    return isinstance(loader, ast.Attribute | ast.Name) and "Safe" in ast.unparse(loader)


def test_platform_never_unpickles():
    files = sorted((ROOT / "platform" / "landmix").rglob("*.py"))
    assert files
    found = [hit for f in files for hit in unsafe_loads(f.read_text(), str(f.relative_to(ROOT)))]
    assert not found, (
        "unsafe deserialisation (load checkpoints with torch.load(..., weights_only=True)):\n"
        + ("\n".join(found))
    )


def test_unpickling_scan_catches_each_pattern():
    bad = """
import pickle, torch, numpy as np, yaml, pandas as pd
from pickle import loads
pickle.load(open("f", "rb"))
torch.load("ckpt.pt")
torch.load("ckpt.pt", weights_only=False)
np.load("a.npy", allow_pickle=True)
yaml.load(text)
pd.read_pickle("x.pkl")
"""
    assert len(unsafe_loads(bad)) == 7
    good = """
import torch, numpy as np, yaml
torch.load("ckpt.pt", map_location="cpu", weights_only=True)
np.load("a.npy")
np.load("a.npy", allow_pickle=False)
yaml.load(text, Loader=yaml.SafeLoader)
yaml.safe_load(text)
"""
    assert unsafe_loads(good) == []
