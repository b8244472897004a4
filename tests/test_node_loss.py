"""A worker node lost mid-sweep, as a spot node taken away: a 2-node local Ray cluster (ray.cluster_utils) runs a
small grid sweep whose training can only run on the second node; once a cell has written two epoch
checkpoints (so Ray has registered the first), that node's raylet is SIGKILLed and a replacement node joins (what the autoscaler does).

The sweep must end with every cell finished, each cell's run resumed from its checkpoint rather than started
over, and exactly one MLflow run per cell under one parent (the server is the session's real one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]  # a 2-node Ray cluster of its own, in a subprocess

SCRIPT = textwrap.dedent("""
    import json, os, signal, subprocess, sys, threading, time
    from dataclasses import replace
    from pathlib import Path

    import ray
    from ray.cluster_utils import Cluster

    from landmix import sweep
    from landmix.mlflow_server import free_port

    real, syn, storage, uri = sys.argv[1:5]
    # The head runs the driver and the trials' actors only (no CPU): every training worker and Ray Data task
    # needs the spot node.
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": True, "dashboard_port": free_port()})
    spot = cluster.add_node(num_cpus=2)
    ray.init(address=cluster.address, logging_level="WARNING")
    cluster.wait_for_nodes()

    sw = sweep.smoke(real, syn, storage_path=storage)
    base = replace(sw.base, train=replace(sw.base.train, epochs=6),
                   data=replace(sw.base.data, samples_per_epoch=256),
                   tracking=replace(sw.base.tracking, uri=uri))
    sw = replace(sw, name="node-loss", strategies=("real_only", "mixed"), n_real=(10,), alphas=(0.5,),
                 max_concurrent_trials=2, base=base)
    train_root = Path(storage) / sw.name / "train"
    killed = {}

    def registered():  # cells whose first checkpoint Ray has surely registered: a second one is on disk
        return sorted(d.name for d in train_root.glob("*") if len(list(d.glob("checkpoint_*"))) >= 2)

    def take_the_node_away():
        while not registered():
            time.sleep(0.2)
        killed["cells_with_a_checkpoint"] = registered()
        killed["at"] = time.time()
        os.kill(spot.all_processes["raylet"][0].process.pid, signal.SIGKILL)
        time.sleep(5)
        # the replacement the autoscaler brings: a new machine's `ray start` joining the head
        killed["replacement"] = subprocess.Popen(
            [str(Path(sys.executable).parent / "ray"), "start", "--address", cluster.address, "--num-cpus", "2",
             "--block", "--disable-usage-stats"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    thread = threading.Thread(target=take_the_node_away, daemon=True)
    thread.start()
    out = sweep.run_sweep(sw)
    thread.join(timeout=5)
    trials = out["trials"]
    cells = {p.stem: json.loads(p.read_text()) for p in (sw.root / "cells").glob("*.json")}
    print("RESULT", json.dumps({
        "killed": {k: v for k, v in killed.items() if k != "replacement"},
        "parent": out["parent_run_id"],
        "trials": trials[["run", "status"]].values.tolist(),
        "cells": {k: {"status": v["status"], "epochs": v["epochs"],
                      "resumed": v["metrics"].get("resumed_from_epoch"),
                      "run_id": v.get("mlflow_run_id")} for k, v in cells.items()},
        "dead_nodes": sum(not n["Alive"] for n in ray.nodes()),
    }, default=str))
    ray.shutdown()
    os.killpg(killed["replacement"].pid, signal.SIGTERM)  # `ray start --block` stops its processes on SIGTERM
    killed["replacement"].wait(timeout=60)
    cluster.shutdown()
""")


def test_a_worker_node_killed_mid_sweep_loses_no_cell_and_no_run(shared_data, mlflow_tracking, tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    import _shards
    from landmix import tracking

    real = _shards.real_shards(shared_data, tmp_path / "real", limit=40)
    syn = _shards.synthetic_shards(shared_data, tmp_path / "synthetic", limit=16)
    script = tmp_path / "node_loss.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run(
        [sys.executable, str(script), str(real), str(syn), str(tmp_path / "runs"), mlflow_tracking],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=tmp_path,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, f"no result (exit {proc.returncode}); stderr tail:\n{proc.stderr[-4000:]}"
    out = json.loads(line[len("RESULT ") :])
    assert out["killed"].get("cells_with_a_checkpoint"), "the node was never killed"
    assert out["dead_nodes"] == 1, out
    # every cell finished, none lost or recorded as failed
    assert sorted(s for _, s in out["trials"]) == ["ok", "ok"], out["trials"]
    assert len(out["cells"]) == 2 and all(
        c["status"] == "ok" and c["epochs"] == 6 for c in out["cells"].values()
    )
    # the cells that had a checkpoint when the node went went on from it, not from the start
    for name in out["killed"]["cells_with_a_checkpoint"]:
        assert out["cells"][name]["resumed"] is not None and out["cells"][name]["resumed"] >= 0, out["cells"]
    # exactly one MLflow run per cell, under the one parent, and it is the run the cell file names
    children = tracking.child_runs(mlflow_tracking, out["parent"])
    names = sorted(r.info.run_name for r in children)
    assert names == sorted(out["cells"]), names
    assert {r.info.run_id for r in children} == {c["run_id"] for c in out["cells"].values()}
    assert all(r.info.status == "FINISHED" and "val_nme" in r.data.metrics for r in children)
