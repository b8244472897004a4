"""The headline job as a user runs it: `ray job submit ... -- python jobs/tune_mix.py --smoke-test`.

One module-scoped run does what a user does, against real servers on loopback:
- starts a Ray head (`ray start --head --block`, job API on 127.0.0.1, RAY_AUTH_MODE explicit) whose
  environment names the session's MLflow server, as cluster.yaml's head does;
- submits the smoke sweep with the documented command (working dir + the excludes of docs/cluster.md),
  stops the job once the first grid cell has finished (the driver killed mid-sweep), and submits the
  same command again, which must resume without redoing the finished cells (the translator's real-face
  round, `--translator-real-faces`, is tested in test_sweep.py: here it would double the job's time);
- and stops the head, leaving no process of it running.
The tests then read the results back from the MLflow server and from the page of the MLflow UI.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _browser import browser_missing, check_runs_page  # noqa: E402
from _ray_head import RayHead  # noqa: E402
from landmix import registry, sweep, tracking  # noqa: E402

pytestmark = pytest.mark.cluster  # a Ray head of its own (`ray start`) and `ray job submit`
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ARTIFACTS = ROOT / "out" / "test-artifacts"
SMOKE = sweep.smoke()
SMOKE_CELLS = [c.name for c in sweep.grid_cells(SMOKE)]
TUNED = [c.name for c in sweep.grid_cells(SMOKE) if c.strategy in sweep.spec.TUNED]  # Tune trials
# Every cell but the data-adaptation one is an MLflow run of its own; that one is the seed's pretraining run.
CELL_RUNS = [c.name for c in sweep.grid_cells(SMOKE) if c.strategy != "synthetic_only"]
COMPARISON = {
    "nme_vs_n_real.png",
    "summary.md",
    "summary.csv",
    "real_equivalence.csv",
    "trials.csv",
    "verdict.md",
    "mixing_trials.csv",
}


def _documented_runtime_env() -> str:
    """The --runtime-env-json of the documented `ray job submit` (docs/cluster.md)."""
    (text,) = set(re.findall(r"--runtime-env-json '([^']*)'", (ROOT / "docs" / "cluster.md").read_text()))
    return text


def _submit(head: RayHead, env: dict, sid: str, args: list[str]) -> None:
    cmd = [
        str(BIN / "ray"),
        "job",
        "submit",
        "--address",
        head.dashboard,
        "--working-dir",
        ".",
        "--runtime-env-json",
        _documented_runtime_env(),
        "--submission-id",
        sid,
        "--no-wait",
        "--",
        "python",
        "jobs/tune_mix.py",
        "--smoke-test",
        *args,
    ]
    deadline = time.monotonic() + 300
    while True:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        # A head that just came up may not have registered its job agent yet: Ray says to try again later.
        if done.returncode == 0 or "No available agent" not in done.stderr or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert done.returncode == 0, f"ray job submit failed:\n{done.stdout}\n{done.stderr}"


def _wait(client, sid: str, until, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = str(client.get_job_status(sid))
        if until(status):
            return status
        time.sleep(3)
    raise TimeoutError(
        f"job {sid} still {status} after {timeout_s:.0f} s; logs:\n{client.get_job_logs(sid)[-4000:]}"
    )


@pytest.fixture(scope="module")
def submitted_sweep(mlflow_tracking, shared_data, tmp_path_factory):
    """Run the smoke sweep as a submitted job, killed once mid-sweep and resubmitted; yields what happened."""
    from ray.job_submission import JobSubmissionClient

    base = tmp_path_factory.mktemp("tune_mix_job")
    name = f"smoke-job-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env |= {
        "RAY_AUTH_MODE": "disabled",
        "MLFLOW_TRACKING_URI": mlflow_tracking,
        "LANDMIX_DATA_ROOT": str(shared_data),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "RAY_USAGE_STATS_ENABLED": "0",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    args = [
        "--name",
        name,
        "--work",
        str(base / "work"),
        "--storage",
        str(base / "storage"),
        "--results-page",
        str(base / "page" / "study.md"),
    ]
    cells = base / "storage" / name / "cells"
    head = RayHead(env)
    try:
        client = JobSubmissionClient(head.dashboard)
        _submit(head, env, "first", args)
        deadline = time.monotonic() + 900
        while not list(cells.glob("*.json")):  # the first cell finished: stop the driver mid-sweep
            status = str(client.get_job_status("first"))
            assert status in ("PENDING", "RUNNING") and time.monotonic() < deadline, (
                f"first job {status} before any cell finished:\n{client.get_job_logs('first')[-4000:]}"
            )
            time.sleep(2)
        client.stop_job("first")
        first_status = _wait(client, "first", lambda s: s.endswith(("STOPPED", "FAILED", "SUCCEEDED")), 120)
        finished_before = {p.name: p.stat().st_mtime_ns for p in cells.glob("*.json")}
        _submit(head, env, "second", args)
        second_status = _wait(
            client, "second", lambda s: s.endswith(("STOPPED", "FAILED", "SUCCEEDED")), 1200
        )
        logs = client.get_job_logs("second")
    finally:
        leftovers = head.stop()
    yield {
        "name": name,
        "uri": mlflow_tracking,
        "first": first_status,
        "second": second_status,
        "logs": logs,
        "finished_before": finished_before,
        "cells": cells,
        "root": base / "storage" / name,
        "page": base / "page" / "study.md",
        "leftovers": leftovers,
    }


@pytest.mark.slow
@pytest.mark.timeout(2700)  # the module's whole job run happens in this test's setup (~7 min on 2 idle cores)
def test_submitted_job_succeeds_after_a_stop_and_resumes_without_redoing_cells(submitted_sweep):
    s = submitted_sweep
    assert s["first"].endswith("STOPPED"), f"the first job was not cut off mid-sweep: {s['first']}"
    assert s["second"].endswith("SUCCEEDED"), f"resubmitted job {s['second']}; logs:\n{s['logs'][-4000:]}"
    done_before = len(s["finished_before"])
    assert 1 <= done_before < len(SMOKE_CELLS)
    # The resumed job finds the synthetic-only model done and fits what label adaptation still lacks before
    # it counts; then only the Tune trials not finished before the stop are left.
    done = set(s["finished_before"]) | {f"{c}.json" for c in SMOKE_CELLS if c not in TUNED}
    to_run = [c for c in TUNED if f"{c}.json" not in s["finished_before"]]
    assert f"{len(done)} cell(s) already done, {len(to_run)} trial(s) to run" in s["logs"]
    assert "reusing" in s["logs"]  # the once-per-seed pretraining is not redone either
    after = {p.name: p.stat().st_mtime_ns for p in s["cells"].glob("*.json")}
    assert sorted(after) == sorted(f"{c}.json" for c in SMOKE_CELLS)
    assert all(after[k] == t for k, t in s["finished_before"].items()), "a finished cell was trained again"
    assert not s["leftovers"], f"processes of the Ray head outlived `ray start --block`: {s['leftovers']}"
    page = s["page"].read_text()  # the results page counts both runs of the command, the cut-off one too
    assert "run 1: started" in page and "(cut off" in page and "run 2: started" in page, page[:2000]
    assert (s["root"] / "report" / "verdict.md").read_text().strip() in page


@pytest.mark.slow
def test_sweep_runs_are_nested_in_mlflow_with_the_comparison(submitted_sweep):
    from mlflow.tracking import MlflowClient

    s = submitted_sweep
    client = MlflowClient(s["uri"])
    exp = client.get_experiment_by_name(s["name"])
    (parent,) = client.search_runs([exp.experiment_id], filter_string="tags.`landmix.role` = 'sweep'")
    # one parent across resumes
    assert parent.info.run_id == (s["root"] / "parent_run_id").read_text().strip()
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_failed_trials"] == 0
    assert parent.data.metrics["compute_naive_grid_seconds"] > parent.data.metrics["compute_total_seconds"]
    children = tracking.child_runs(s["uri"], parent.info.run_id)
    names = sorted(r.info.run_name for r in children)
    pretrain = [n for n in names if n.startswith("pretrain-s0-")]
    assert len(pretrain) == 1 and sorted(set(names) - set(pretrain)) == sorted(CELL_RUNS)
    assert len(names) == len(CELL_RUNS) + 1, f"a resumed cell opened a second MLflow run: {names}"
    status = {p.stem: json.loads(p.read_text())["status"] for p in s["cells"].glob("*.json")}
    for run in children:
        name = run.info.run_name
        # NME is a fraction of the inter-ocular distance (~0.05 trained, ~0.9 for a barely trained smoke model),
        # never a percentage; a cell's run shows the validation NME its cell file recorded
        assert 0 < run.data.metrics["val_nme"] < 2, (name, run.data.metrics["val_nme"])
        if status.get(name) == "ok":
            recorded = json.loads((s["cells"] / f"{name}.json").read_text())["val_nme"]
            assert run.data.metrics["val_nme"] == pytest.approx(recorded), name
        assert run.data.tags["landmix.strategy"] in sweep.STRATEGIES + ("pretrain",)
        if status.get(name) == "stopped":  # a mixing ratio ASHA stopped: ended KILLED, saying why
            assert run.info.status == "KILLED" and run.data.tags["landmix.stop_reason"] == "asha", name
            continue
        assert run.info.status == "FINISHED", name
        # no training run: a fit on the seed's synthetic model's outputs
        if name.startswith("label_adaptation"):
            assert {"n_real", "translator.kind"} <= set(run.data.params) and "test_nme" in run.data.metrics
            assert {"translator.npz", "model.pt"} <= {
                Path(a.path).name
                for a in client.list_artifacts(run.info.run_id, tracking.CHECKPOINT_ARTIFACT_PATH)
            }
            continue
        assert {"data.strategy", "data.n_real", "data.alpha", "train.seed", "train.lr"} <= set(
            run.data.params
        )
        epochs = SMOKE.pretrain_epochs if name in pretrain else SMOKE.base.train.epochs
        # every epoch logged (a cell resumed mid-epoch logs that epoch again: same step, so count steps)
        assert {m.step for m in client.get_metric_history(run.info.run_id, "val_nme")} == set(range(epochs))
    description = parent.data.tags["mlflow.note.content"]  # what the parent run's page shows first
    assert (
        description.startswith((s["root"] / "report" / "verdict.md").read_text().strip())
        and "| arm |" in description
    )
    cells = {p.stem: json.loads(p.read_text()) for p in s["cells"].glob("*.json")}
    best = min((n for n, c in cells.items() if c["status"] == "ok"), key=lambda n: cells[n]["val_nme"])
    assert parent.data.tags["landmix.best_trial"] == best  # chosen on validation NME
    assert parent.data.metrics["val_nme"] == pytest.approx(cells[best]["val_nme"])
    assert parent.data.metrics["test_nme"] == pytest.approx(cells[best]["nme"])
    shown = {a.path.split("/")[-1] for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert COMPARISON <= shown, shown
    local = Path(client.download_artifacts(parent.info.run_id, "comparison/summary.md")).read_text()
    # the verdict comes first
    assert local.startswith((s["root"] / "report" / "verdict.md").read_text().strip())
    for arm in ("real only", "data adaptation", "label adaptation", "mixing", "pretraining + fine-tuning"):
        assert arm in local, arm
    report = client.download_artifacts(parent.info.run_id, "comparison/trials.csv")
    assert len(Path(report).read_text().strip().splitlines()) == len(SMOKE_CELLS) + 1  # header + one per cell


@pytest.mark.slow
def test_no_test_face_is_trained_on_validated_on_or_used_to_select(submitted_sweep):
    """Every cell of every strategy records the real faces it trained on (or fitted a translator on), was
    validated on and was tested on: the test faces are the same fixed set everywhere and never in the other two;
    the mixing ratio, the best trial and the registered models are chosen by validation NME alone."""
    import pandas as pd
    from mlflow.tracking import MlflowClient

    s = submitted_sweep
    cells = {p.stem: json.loads(p.read_text()) for p in s["cells"].glob("*.json")}
    finished = {n: c for n, c in cells.items() if c["status"] == "ok"}
    assert {c["strategy"] for c in finished.values()} == set(sweep.STRATEGIES)
    tests = {tuple(c["faces"]["test"]) for c in finished.values()}
    assert len(tests) == 1 and len(next(iter(tests))) > 0  # one fixed test set for every arm
    test = set(next(iter(tests)))
    for name, c in finished.items():
        train, val = set(c["faces"]["train"]), set(c["faces"]["val"])
        assert not test & train and not test & val and not train & val, name
        assert len(c["faces"]["test_errors"]) == len(test) and len(train) == (
            c["n_real"] if c["n_real"] > 0 else 0
        )
    mixing = pd.read_csv(s["root"] / "report" / "mixing_trials.csv")
    for _, group in mixing[mixing["status"] == "ok"].groupby(["n_real", "seed"]):
        assert group.loc[group["val_nme"].idxmin(), "chosen"], group  # chosen on validation
    client = MlflowClient(s["uri"])
    for strategy in sweep.STRATEGIES:
        ok = {n: c for n, c in finished.items() if c["strategy"] == strategy}
        version = client.get_model_version_by_alias(
            registry.registered_model_name(s["name"], strategy), "best"
        )
        assert version.tags["cell"] == min(ok, key=lambda n: ok[n]["val_nme"]), strategy


@pytest.mark.slow
def test_synthetic_labels_went_through_the_generator_fitted_translator(submitted_sweep):
    """The translator fitted on the generated faces' paired conventions is the parent's artifact, and the
    synthetic faces the pretraining saw were labelled by it."""
    from mlflow.tracking import MlflowClient

    from landmix import translate

    s = submitted_sweep
    client = MlflowClient(s["uri"])
    parent_id = (s["root"] / "parent_run_id").read_text().strip()
    parent = client.get_run(parent_id)
    assert parent.data.params["sweep.translator_real_faces"] == "0"  # no real-face stage asked for
    files = {Path(a.path).suffix: a.path for a in client.list_artifacts(parent_id, "translator")}
    translator = translate.load(client.download_artifacts(parent_id, files[".npz"]))
    assert translator.kind == "ridge" and (translator.src.name, translator.dst.name) == ("synth70", "ibug68")
    (pretrain,) = [
        r for r in tracking.child_runs(s["uri"], parent_id) if r.info.run_name.startswith("pretrain-")
    ]
    assert pretrain.data.tags["data.synthetic.translator"] == translator.version


@pytest.mark.slow
def test_mlflow_ui_lists_the_sweep_parent_and_children_with_nme(submitted_sweep, tmp_path):
    if why := browser_missing():
        pytest.skip(why)
    from mlflow.tracking import MlflowClient

    s = submitted_sweep
    client = MlflowClient(s["uri"])
    exp = client.get_experiment_by_name(s["name"])
    runs = client.search_runs([exp.experiment_id])
    logged = {r.info.run_name: r.data.metrics["val_nme"] for r in runs if "val_nme" in r.data.metrics}
    parent = next(r.info.run_name for r in runs if r.data.tags.get("landmix.role") == "sweep")
    shot = tmp_path / "mlflow_ui.png"
    shown = check_runs_page(s["uri"], exp.experiment_id, parent, CELL_RUNS, shot, metric="val_nme")
    # the UI rounds for display
    assert {n: shown[n] for n in [parent, *CELL_RUNS]} == pytest.approx(
        {n: logged[n] for n in [parent, *CELL_RUNS]}, rel=1e-2
    )
    assert shot.stat().st_size > 10_000
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "mlflow_ui.png").write_bytes(shot.read_bytes())
    (ARTIFACTS / "mlflow_ui.json").write_text(json.dumps(shown, indent=1))
