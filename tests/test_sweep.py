"""The sweep's plan without Ray: grid cells, stable names, trial specs, resume bookkeeping, compute accounting.

The sweep itself runs end to end, submitted to a real Ray head, in tests/test_tune_mix_job.py.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from landmix import pretraining, sweep
from landmix.config import ALL_REAL
from landmix.sweep import Cell, asha, pretrain, results, search


def _sweep(tmp_path, **kw) -> sweep.SweepConfig:
    return (
        sweep.smoke(real_shards="/r", synthetic_shards="/s", storage_path=str(tmp_path))
        if not kw
        else sweep.SweepConfig(**{"base": sweep.smoke("/r", "/s").base, "storage_path": str(tmp_path), **kw})
    )


def test_grid_has_every_sensible_cell_once(tmp_path):
    sw = _sweep(tmp_path, n_real=(10, 50, ALL_REAL), alphas=(0.25, 0.75), seeds=(0, 1))
    cells = sweep.grid_cells(sw)
    names = [c.name for c in cells]
    assert len(names) == len(set(names))
    # real_only x n, synthetic_only once, mixed x n x alpha, pretrain_finetune x n, label_adaptation x n
    per_seed = 3 + 1 + 3 * 2 + 3 + 3
    assert len(cells) == 2 * per_seed
    assert {c.strategy for c in cells} == set(sweep.STRATEGIES)  # the seed study's five strategies
    assert {c.n_real for c in cells if c.strategy == "synthetic_only"} == {0}
    assert {c.n_real for c in cells if c.strategy == "label_adaptation"} == {10, 50, ALL_REAL}
    assert {c.alpha for c in cells if c.strategy == "mixed"} == {0.25, 0.75}
    assert Cell.from_dict({**cells[0].__dict__, "unrelated": 1}) == cells[0]  # a Tune config round-trips
    assert "mixed-nall-a0.75-s1" in names and "real_only-n10-s0" in names


def test_bad_sweep_values_name_the_field_and_the_choices():
    with pytest.raises(ValueError, match=r"sweep.n_real has 7.*-1 = all"):
        sweep.SweepConfig(n_real=(7,))
    with pytest.raises(ValueError, match="sweep.strategies"):
        sweep.SweepConfig(strategies=("half",))
    with pytest.raises(ValueError, match="sweep.mode"):
        sweep.SweepConfig(mode="random")


def test_trial_spec_fine_tunes_from_the_seeds_pretraining(tmp_path):
    sw = _sweep(tmp_path)
    cell = Cell("pretrain_finetune", n_real=ALL_REAL, seed=1)
    spec = search.trial_spec(sw, cell, {0: "/ck0", 1: "/ck1"}, "parent", "http://x", "name")
    # one meaning of "all" everywhere
    assert spec.data.strategy == "real_only" and spec.data.n_real == ALL_REAL
    assert spec.train.init_checkpoint == "/ck1" and spec.train.seed == 1
    assert spec.tracking.parent_run_id == "parent" and spec.tracking.strategy_label == "pretrain_finetune"
    assert spec.data.synthetic_shards == "" and spec.data.real_shards == "/r"  # draws no synthetic sample
    mixed = search.trial_spec(sw, Cell("mixed", n_real=10, alpha=0.5), {0: "/ck0"}, "", "", "n")
    assert mixed.train.init_checkpoint == "" and mixed.data.alpha == 0.5 and mixed.data.n_real == 10


def test_pretraining_key_changes_with_its_config(tmp_path):
    sw = _sweep(tmp_path)
    a = pretrain.pretrain_spec(sw, 0, "", "").train.name
    assert a == pretrain.pretrain_spec(sw, 0, "", "").train.name  # stable: a re-run finds it
    assert a != pretrain.pretrain_spec(sw, 1, "", "").train.name
    longer = sweep.SweepConfig(**{**sw.__dict__, "pretrain_epochs": sw.pretrain_epochs + 1})
    assert a != pretrain.pretrain_spec(longer, 0, "", "").train.name
    # tracking is not training
    assert a == pretrain.pretrain_spec(sw, 0, "http://mlflow", "parent").train.name


def test_pretraining_key_follows_the_content_of_the_synthetic_shards(tmp_path):
    """Shards re-prepared under the same path (e.g. with a new translator) must not reuse an old pretraining."""
    shards = tmp_path / "prepared" / "shards"
    shards.mkdir(parents=True)
    (shards / "part-00000.parquet").write_bytes(b"PAR1")
    summary = tmp_path / "prepared" / "prepare.json"
    summary.write_text('{"translator_version": "ridge-aaaa"}')
    sw = sweep.SweepConfig(
        base=sweep.smoke("/r", str(tmp_path / "prepared")).base, storage_path=str(tmp_path)
    )
    first = pretrain.pretrain_spec(sw, 0, "", "").train.name
    assert first == pretrain.pretrain_spec(sw, 0, "", "").train.name
    summary.write_text('{"translator_version": "chain-bbbb"}')
    assert pretrain.pretrain_spec(sw, 0, "", "").train.name != first


def test_pretraining_key_follows_the_shards_themselves_without_a_prepare_json(tmp_path):
    """Shards written without `landmix prepare` (no prepare.json): re-written shards must not reuse an old
    pretraining either; the key follows the Parquet files' bytes."""
    shards = tmp_path / "prepared" / "shards"
    shards.mkdir(parents=True)
    (shards / "part-00000.parquet").write_bytes(b"PAR1 first faces")
    sw = sweep.SweepConfig(
        base=sweep.smoke("/r", str(tmp_path / "prepared")).base, storage_path=str(tmp_path)
    )
    first = pretrain.pretrain_spec(sw, 0, "", "").train.name
    assert first == pretrain.pretrain_spec(sw, 0, "", "").train.name  # stable: a re-run finds it
    assert pretraining.shards_key(str(tmp_path / "prepared")) != ""
    (shards / "part-00000.parquet").write_bytes(b"PAR1 other faces")  # re-written in place
    second = pretrain.pretrain_spec(sw, 0, "", "").train.name
    assert second != first
    (shards / "part-00001.parquet").write_bytes(b"PAR1 more faces")  # one more file
    assert pretrain.pretrain_spec(sw, 0, "", "").train.name not in (first, second)


def test_finished_cells_are_read_back_and_reported_once(tmp_path):
    sw = _sweep(tmp_path)
    cells = sweep.grid_cells(sw)
    results.write_cell_result(
        sw, cells[0], {"val_nme": 0.12, "test_nme": 0.13, "epoch": 1, "val_fr@10": 0.5}, 30.0
    )
    done = results.finished_cells(sw)
    assert list(done) == [cells[0].name] and done[cells[0].name]["epochs"] == 2
    rows = results.grid_rows(sw, None)
    assert len(rows) == len(cells) and (rows["status"] == "ok").sum() == 1
    assert set(rows.loc[rows["status"] != "ok", "status"]) == {"not run"}  # nothing lost silently


def test_compute_accounting_against_a_naive_grid():
    trials = pd.DataFrame(
        {
            "strategy": [
                "real_only",
                "pretrain_finetune",
                "pretrain_finetune",
                "synthetic_only",
                "label_adaptation",
                "mixed",
                "mixed",
                "mixed",
            ],
            "n_real": [10, 10, 50, 0, 10, 10, 10, 10],
            "seed": [0] * 8,
            "seconds": [10.0, 20.0, math.nan, 30.0, 1.0, 12.0, 8.0, 3.0],
            "status": ["ok"] * 6 + ["ok", "stopped"],
        }
    )
    c = results.compute_accounting(trials, pretrain_seconds=60.0, n_pretrain=2)
    own = 10 + 20 + 1 + 12 + 8 + 3  # the synthetic_only row is the pretraining itself: not counted twice
    assert c["compute_total_seconds"] == own + 60.0
    # a naive grid trains a synthetic model inside each of the 4 cells that use one, and runs the stopped
    # mixing ratio to the mean of its finished peers (10 s): 7 s more
    assert c["compute_naive_grid_seconds"] == own + 4 * 30.0 + 7.0


def test_remote_storage_keeps_bookkeeping_on_the_driver_and_ray_state_at_the_uri(tmp_path):
    """storage_path = s3://... (a cluster): Ray Train/Tune write there; cells/, report/ stay on the head."""
    from landmix import settings

    sw = sweep.smoke("/r", "/s", storage_path="s3://bucket/ray")
    assert sw.root == settings.PROJECT_ROOT / "runs" / sw.name
    assert sw.ray_storage("tune") == f"s3://bucket/ray/{sw.name}/tune"
    spec = search.trial_spec(sw, sweep.grid_cells(sw)[0], {}, "", "", "n")
    assert spec.train.storage_path == f"s3://bucket/ray/{sw.name}/train"
    assert pretrain.pretrain_spec(sw, 0, "", "").train.storage_path == f"s3://bucket/ray/{sw.name}/pretrain"
    local = sweep.smoke("/r", "/s", storage_path=str(tmp_path))
    assert local.root == tmp_path / local.name and local.ray_storage("train") == str(
        tmp_path / local.name / "train"
    )


def test_checkpoint_uri_names_the_remote_filesystem(tmp_path):
    import pyarrow.fs
    import ray.train

    from landmix import checkpoint

    assert checkpoint.checkpoint_uri(ray.train.Checkpoint(str(tmp_path))) == str(tmp_path)
    remote = ray.train.Checkpoint("bucket/ray/ck", filesystem=pyarrow.fs._MockFileSystem())
    assert checkpoint.checkpoint_uri(remote) == "mock://bucket/ray/ck"


def test_all_real_faces_are_reported_as_their_count(tmp_path):
    sw = _sweep(tmp_path, n_real=(ALL_REAL,), strategies=("real_only",), seeds=(0,))
    (cell,) = sweep.grid_cells(sw)
    results.write_cell_result(
        sw, cell, {"val_nme": 0.1, "test_nme": 0.11, "epoch": 1, "n_real_faces": 966}, 1.0
    )
    assert results.grid_rows(sw, None)["n_real"].tolist() == [966]  # plotted and interpolated at 966, not -1
    # the optimising mode's rows too (budget_n_real = -1): a finished Tune trial's config and final metrics
    from types import SimpleNamespace

    done = SimpleNamespace(
        config={"strategy": "mixed", "n_real": -1, "alpha": 0.3, "seed": 0},
        error=None,
        metrics={
            "val_nme": 0.1,
            "test_nme": 0.11,
            "n_real_faces": 966,
            "trial_id": "abc",
            "time_total_s": 9.0,
        },
    )
    assert results.trial_rows([done])[["n_real", "run"]].values.tolist() == [[966, "trial-abc"]]


@pytest.mark.slow
def test_optimize_mode_searches_with_optuna_and_asha_and_nests_its_trials(
    ray_cluster, mlflow_tracking, shared_data, tmp_path
):
    """The optimising mode end to end on tiny shards: Optuna samples the mix, ASHA schedules, each trial runs
    its own TorchTrainer, and the trials are children of the sweep's MLflow parent run."""
    import sys
    from dataclasses import replace
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import _shards
    from landmix import tracking

    real = _shards.real_shards(shared_data, tmp_path / "real", limit=40)
    syn = _shards.synthetic_shards(shared_data, tmp_path / "synthetic", limit=16)
    sw = sweep.smoke(str(real), str(syn), storage_path=str(tmp_path / "runs"))
    sw = replace(
        sw,
        name="optimize-test",
        mode="optimize",
        strategies=("real_only", "mixed"),
        num_samples=2,
        budget_n_real=10,
        base=replace(sw.base, tracking=replace(sw.base.tracking, uri=mlflow_tracking)),
    )
    out = sweep.run_sweep(sw)
    trials = out["trials"]
    # ASHA may stop the worse of the two at its first rung (grace 1): "stopped", never lost or failed
    assert len(trials) == 2 and trials["status"].isin(["ok", "stopped"]).all(), trials
    assert (trials["status"] == "ok").any(), trials
    assert set(trials["strategy"]) <= {"real_only", "mixed"} and (trials["n_real"] == 10).all()
    assert trials["lr"].nunique() == 2  # sampled, not the preset's
    children = tracking.child_runs(mlflow_tracking, out["parent_run_id"])
    assert sorted(r.info.run_name for r in children) == sorted(trials["run"])  # no pretraining: none sampled
    assert all("val_nme" in r.data.metrics for r in children)


@pytest.mark.slow
def test_real_fitted_translator_is_fitted_once_and_relabels_the_synthetic_shards(
    ray_cluster, shared_data, tmp_path
):
    """fit_real_translator end to end on tiny shards: a synthetic pretraining (Ray Train), the fit on real
    training faces, the chain saved with its report; a second call reuses both; prepare labels with it."""
    import json
    import sys
    from dataclasses import replace
    from functools import partial
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import _shards
    from _fixtures import synthetic_rows, write_manifest
    from landmix import prepare, relabel, translate

    real = _shards.real_shards(shared_data, tmp_path / "real", limit=40)
    syn = _shards.synthetic_shards(shared_data, tmp_path / "synthetic", limit=16)
    sw = sweep.smoke(str(real), str(syn), storage_path=str(tmp_path / "runs"))
    sw = replace(
        sw,
        name="translator-test",
        seeds=(0,),
        pretrain_epochs=1,
        base=replace(sw.base, tracking=replace(sw.base.tracking, uri="none")),
    )
    path = sweep.fit_real_translator(sw, 20)
    chain = translate.load(path)
    assert (chain.src.name, chain.dst.name, len(chain.stages)) == ("synth70", "ibug68", 2)
    assert chain.stages[0].version == translate.fixed().version  # these shards were not translated
    report = json.loads(path.with_suffix(".json").read_text())
    import pyarrow.parquet as pq

    from landmix.sources.split import real_split

    held_out = real_split(
        pq.read_table(real)["id"].to_pylist(), sw.base.data
    ).val  # validation faces: never fitted on
    assert report["fit_faces"] == 20 and report["held_out_faces"] == len(held_out) > 0
    assert report["saved_version"] == chain.version
    markers = list((sw.root / "pretrain").glob("*/pretrain.json"))
    assert len(markers) == 1
    stamp = markers[0].stat().st_mtime_ns
    assert sweep.fit_real_translator(sw, 20) == path and markers[0].stat().st_mtime_ns == stamp  # cached
    modes = sweep.fit_real_translator(sw, 20, modes=3)  # the same pretraining, another map: a file of its own
    assert modes != path and markers[0].stat().st_mtime_ns == stamp and "-modes3-" in modes.name
    assert np.linalg.matrix_rank(translate.load(modes).stages[1].weight, tol=1e-9) <= 3
    assert json.loads(modes.with_suffix(".json").read_text())["modes"] == 3

    manifest = write_manifest(synthetic_rows(shared_data, 8), tmp_path / "syn.parquet")
    out = tmp_path / "relabelled"
    summary = prepare.prepare(
        prepare.PrepareConfig((str(manifest),), str(out), crop_size=64, translator=str(path))
    )
    assert summary["translator_version"] == chain.version and list(summary["config"]["translator"]) == [
        str(path)
    ]
    assert relabel.trained_with({"config": {"data": {"synthetic_shards": str(out)}}}) == [str(path)]

    # A second round as jobs/tune_mix.py --translator-rounds 2 runs it (relabel.rounds): a model pretrained anew on
    # the shards re-labelled by the first round's chain, its map chained after that chain
    again = replace(
        sw, translator=str(path), base=replace(sw.base, data=replace(sw.base.data, synthetic_shards=str(out)))
    )

    def pretrained_on(
        translator: str,
    ) -> str:  # the job: re-prepare the synthetic faces with it, pretrain on them
        assert translator == str(path)
        return sweep.synthetic_model(again)

    rounds = relabel.rounds(
        str(path), 1, pretrained_on, partial(sweep.translator_path, sw, 20, True, 0), n_faces=20
    )
    # one file, both ways
    assert rounds[0] == str(path) and rounds[1] == str(sweep.fit_real_translator(again, 20))
    second = translate.load(rounds[1])
    assert [s.version for s in second.stages[:2]] == [s.version for s in chain.stages] and len(
        second.stages
    ) == 3
    assert len(list((sw.root / "pretrain").glob("*/pretrain.json"))) == 2  # not the first round's model


def test_a_cells_end_says_whether_it_converged():
    def done(epoch, planned, status="ok"):
        return {"status": status, "metrics": {"epoch": epoch, "planned_epochs": planned}}

    assert results.ended_by(done(5, 20)) == "patience"  # validation NME stopped improving before the budget
    assert results.ended_by(done(19, 20)) == "budget"
    assert results.ended_by(done(3, 20, "stopped")) == "asha"
    assert results.ended_by({"status": "ok", "metrics": {"val_nme": 0.1}}) == ""  # a fit, no training run


def _trial(trial_id: str, strategy: str, n_real: int, seed: int = 0, alpha: float = 0.5):
    cell = sweep.Cell(strategy, n_real=n_real, alpha=alpha if strategy == "mixed" else 0.0, seed=seed)
    return SimpleNamespace(trial_id=trial_id, config={"cell": cell.__dict__})


def test_mixing_ratios_race_only_against_their_own_n_real_and_seed(tmp_path):
    from ray.tune.schedulers import TrialScheduler

    sw = sweep.SweepConfig(
        base=sweep.smoke("/r", "/s").base,
        alphas=(0.25, 0.5, 0.75),
        grace_period=2,
        storage_path=str(tmp_path),
    )
    scheduler = asha.mixing_asha(sw)
    trials = {
        "a": _trial("a", "mixed", 10, alpha=0.25),
        "b": _trial("b", "mixed", 10, alpha=0.75),
        "c": _trial("c", "mixed", 50, alpha=0.75),
        "r": _trial("r", "real_only", 10),
    }
    for t in trials.values():
        scheduler.on_trial_add(None, t)

    def report(tid: str, val: float, it: int = 2):
        return scheduler.on_trial_result(None, trials[tid], {"training_iteration": it, sweep.METRIC: val})

    assert report("a", 0.10, it=1) == TrialScheduler.CONTINUE  # before the rung: nothing to compare
    assert report("a", 0.10) == TrialScheduler.CONTINUE  # first at the rung of (10, seed 0)
    assert report("b", 0.30) == TrialScheduler.STOP  # worse than its own group's ratio: stopped
    assert report("c", 0.90) == TrialScheduler.CONTINUE  # another n_real: its own race, not a's
    assert report("r", 0.99) == TrialScheduler.CONTINUE  # cells of other strategies are never stopped
    # A ratio whose worse result is its own last epoch (it reports its test score with it) ends by itself:
    # stopping it there would lose the cell file the trial writes after that report.
    trials["d"] = _trial("d", "mixed", 10, alpha=0.5)
    scheduler.on_trial_add(None, trials["d"])
    last = {"training_iteration": 2, sweep.METRIC: 0.50, "stop_reason": "budget"}
    assert scheduler.on_trial_result(None, trials["d"], last) == TrialScheduler.CONTINUE
    assert set(scheduler.groups) == {(10, 0), (50, 0)}
    assert [p.name for p in (sw.root / "asha_stopped").iterdir()] == [sweep.Cell("mixed", 10, 0.75).name]

    # Only what ASHA stopped is recorded "stopped"; a trial cut off by a stopped job (same look: validation
    # NME, no test score) is left for the next run to resume.
    def result(cell):
        return SimpleNamespace(config={"cell": cell.__dict__}, metrics={sweep.METRIC: 0.3}, error=None)

    cut_off = sweep.Cell("real_only", 10)
    asha.record_stopped(sw, [result(sweep.Cell("mixed", 10, 0.75)), result(cut_off)], None)
    assert results.finished_cells(sw)[sweep.Cell("mixed", 10, 0.75).name]["status"] == "stopped"
    assert not results.is_finished(sw, cut_off)

    # A ratio stopped by ASHA while its workers were finishing their last epoch ended all the same: its final
    # checkpoint (the one with the faces file) makes it a finished cell, with its test score, not "stopped".
    late = sweep.Cell("mixed", 50, 0.25)
    report_ = {"epoch": 1, sweep.METRIC: 0.2, sweep.REPORTED: 0.21}
    for k, extra in enumerate(
        ({}, {"faces.json": {"train": ["a"], "val": [], "test": [], "test_errors": []}})
    ):
        folder = sw.root.parent / sw.name / "train" / late.name / f"checkpoint_2026-12-01_00-00-0{k}"
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps({"metrics": report_, "mlflow_run_id": "r1"}))
        for name, body in extra.items():
            (folder / name).write_text(json.dumps(body))
    asha_marker = asha.asha_marker(sw, late)
    asha_marker.touch()
    asha.record_stopped(sw, [result(late)], None)
    done = results.finished_cells(sw)[late.name]
    assert done["status"] == "ok" and done["nme"] == 0.21 and done["mlflow_run_id"] == "r1"


@pytest.mark.parametrize("as_uri", [False, True], ids=["folder", "uri"])
def test_a_ratio_asha_stopped_after_it_finished_is_read_through_the_storage_filesystem(
    tmp_path, monkeypatch, as_uri
):
    """The cluster's storage is a URI (s3://...): the final checkpoint of a ratio that ASHA stopped after its
    last epoch is read through the filesystem Ray writes it with (pyarrow's, from the URI), as on a folder."""
    import pyarrow.fs

    from landmix import settings

    monkeypatch.setattr(settings, "PROJECT_ROOT", tmp_path / "project")  # a URI sweep's bookkeeping goes here
    store = tmp_path / "store"
    sw = sweep.SweepConfig(
        base=sweep.smoke("/r", "/s").base, storage_path=store.as_uri() if as_uri else str(store)
    )
    late = sweep.Cell("mixed", 50, 0.25)
    fs, run = pyarrow.fs.FileSystem.from_uri(f"{store.as_uri()}/{sw.name}/train/{late.name}")
    report_ = {"epoch": 1, sweep.METRIC: 0.2, sweep.REPORTED: 0.21}
    faces = {"train": ["a"], "val": ["v"], "test": ["t"], "test_errors": [0.21]}
    for k, files in enumerate(({"meta.json": report_}, {"meta.json": report_, "faces.json": faces})):
        folder = f"{run}/checkpoint_2026-12-01_00-00-0{k}"
        fs.create_dir(folder)
        for name, body in files.items():
            meta = {"metrics": body, "mlflow_run_id": "r1"} if name == "meta.json" else body
            with fs.open_output_stream(f"{folder}/{name}") as f:
                f.write(json.dumps(meta).encode())
    assert results.finished_train_run(sw, late)["faces"] == faces
    asha.asha_marker(sw, late).parent.mkdir(parents=True)
    asha.asha_marker(sw, late).touch()
    stopped = SimpleNamespace(config={"cell": late.__dict__}, metrics={sweep.METRIC: 0.3}, error=None)
    asha.record_stopped(sw, [stopped], None)
    done = results.finished_cells(sw)[late.name]
    assert done["status"] == "ok" and done["nme"] == 0.21 and done["mlflow_run_id"] == "r1", done
    assert results.finished_train_run(sw, sweep.Cell("mixed", 50, 0.5)) is None  # a cell that never ran


def test_the_cluster_study_is_the_same_grid_with_budgets_in_epochs():
    """The full-size study runs the CPU study's grid on GPUs, and its budgets are epochs, not seconds, so that a
    busy or a faster machine trains every cell the same number of steps."""
    cpu, gpu = sweep.study("/r", "/s"), sweep.PRESETS["study-cluster"]("/r", "/s")
    assert sweep.grid_cells(gpu) == sweep.grid_cells(cpu)
    t = gpu.base.train
    assert t.use_gpu and t.time_budget_s == 0 and t.patience > 0 and gpu.pretrain_budget_s == 0
    assert gpu.base.model.image_size == 160 and gpu.name != cpu.name


def test_selection_cells_pick_faces_for_two_arms_below_all(tmp_path):
    """A selection method adds cells to real only and pretraining + fine-tuning at every n_real but all
    (picking every face is no choice); random cells keep their names (and so an earlier study's results)."""
    sw = _sweep(
        tmp_path,
        strategies=("real_only", "mixed", "pretrain_finetune"),
        n_real=(10, 50, ALL_REAL),
        alphas=(0.5,),
        seeds=(0, 1),
        selections=("random", "coverage", "hybrid"),
    )
    picked = [c for c in sweep.grid_cells(sw) if c.selection != "random"]
    assert {(c.strategy, c.n_real) for c in picked} == {
        (s, n) for s in ("real_only", "pretrain_finetune") for n in (10, 50)
    }
    assert len(picked) == 2 * 2 * 2 * 2  # arms x n_real x methods x seeds
    assert Cell("real_only", 50, seed=1, selection="hybrid").name == "real_only-n50-hybrid-s1"
    assert Cell("real_only", 50, seed=1).name == "real_only-n50-s1"
    random_only = _sweep(
        tmp_path,
        strategies=("real_only", "mixed", "pretrain_finetune"),
        n_real=(10, 50, ALL_REAL),
        alphas=(0.5,),
        seeds=(0, 1),
    )
    assert [c for c in sweep.grid_cells(sw) if c.selection == "random"] == sweep.grid_cells(random_only)
    with pytest.raises(ValueError, match="must hold 'random'"):
        _sweep(tmp_path, selections=("coverage",))
    with pytest.raises(ValueError, match="sweep.selections has 'best'"):
        _sweep(tmp_path, selections=("random", "best"))
    assert sweep.spec.needs_pretraining(
        _sweep(tmp_path, strategies=("real_only",), selections=("random", "hybrid"))
    )


def test_trial_spec_trains_a_selection_cell_on_its_methods_picks(tmp_path):
    sw = _sweep(tmp_path, selections=("random", "uncertainty"))
    ranking = [f"helen/{i}" for i in range(60)]
    picks = {(1, "uncertainty"): ranking}
    spec = search.trial_spec(
        sw, Cell("real_only", 50, seed=1, selection="uncertainty"), {}, "", "", "n", picks
    )
    assert spec.data.selection == "uncertainty" and spec.data.real_faces == tuple(ranking[:50])
    random = search.trial_spec(sw, Cell("real_only", 50, seed=1), {}, "", "", "n", picks)
    assert random.data.selection == "random" and random.data.real_faces == ()
    with pytest.raises(ValueError, match="no ranking of 50 faces by uncertainty for seed 0"):
        search.trial_spec(sw, Cell("real_only", 50, seed=0, selection="uncertainty"), {}, "", "", "n", picks)
    from landmix.config import flat_params

    params = flat_params(spec)
    assert params["data.real_faces"].startswith("50 ids, sha1 ")  # not 50 names in one MLflow parameter


def test_the_selection_study_compares_methods_on_equal_steps():
    sel = sweep.PRESETS["study-selection"]("/r", "/s")
    assert set(sel.selections) == {"random", "coverage", "uncertainty", "hybrid"} and len(sel.seeds) >= 3
    assert {10, 50, 250} <= set(sel.n_real)
    t = sel.base.train
    assert t.time_budget_s == 0 and sel.pretrain_budget_s == 0 and t.epochs > 0  # epochs: a busy host cannot
    picked = {(c.strategy, c.n_real) for c in sweep.grid_cells(sel) if c.selection != "random"}
    assert picked == {(s, n) for s in ("real_only", "pretrain_finetune") for n in (10, 50, 250)}


@pytest.mark.slow
def test_selection_cells_train_on_picks_made_without_labels(
    ray_cluster, mlflow_tracking, shared_data, tmp_path
):
    """The selection dimension end to end on tiny shards: each seed's synthetic-only model ranks the training
    pool from the photos (detector boxes), a hybrid cell trains on the first n_real picks, never a held-out face,
    the picks are artifacts of the parent run, the report has the selection table; and scrambling the pool's
    labels changes no pick."""
    import json
    import sys
    from dataclasses import replace
    from pathlib import Path

    import numpy as np

    sys.path.insert(0, str(Path(__file__).parent))
    import _shards
    from landmix import pool, tracking
    from landmix.sources.split import real_split
    from landmix.sweep import selection

    real = _shards.real_shards(shared_data, tmp_path / "real", limit=40)
    syn = _shards.synthetic_shards(shared_data, tmp_path / "synthetic", limit=16)
    sw = sweep.smoke(str(real), str(syn), storage_path=str(tmp_path / "runs"))
    sw = replace(
        sw,
        name="selection-test",
        strategies=("pretrain_finetune",),
        n_real=(10,),
        selections=("random", "hybrid"),
        base=replace(sw.base, tracking=replace(sw.base.tracking, uri=mlflow_tracking)),
    )
    out = sweep.run_sweep(sw)
    trials = out["trials"].set_index("run")
    assert (trials["status"] == "ok").all() and set(trials["selection"]) == {"random", "hybrid"}, trials
    picks = json.loads((sw.root / "selection" / "picks-s0.json").read_text())
    cell = json.loads((sw.root / "cells" / "pretrain_finetune-n10-hybrid-s0.json").read_text())
    assert cell["faces"]["train"] == picks["methods"]["hybrid"][:10]
    held_out = set(cell["faces"]["val"]) | set(cell["faces"]["test"])
    assert not held_out & set(picks["methods"]["hybrid"])
    # ranked as far as the largest n_real needs
    assert len(picks["methods"]["hybrid"]) == 10 < picks["n_pool"]
    assert set(pd.read_csv(out["files"]["selection_csv"])["method"]) == {"random", "hybrid"}
    artifacts = set(tracking.list_artifacts(mlflow_tracking, out["parent_run_id"], "selection"))
    assert "selection/picks-s0.json" in artifacts

    decoded = pool.read_shards(str(real), sw.base.model)
    scrambled = pool.Pool(
        decoded.ids, decoded.images, np.random.default_rng(0).permuted(decoded.pts, axis=0), decoded.paths
    )
    pretrained = {0: json.loads(next((sw.root / "pretrain").glob("*/pretrain.json")).read_text())}
    again = selection.run_selection(replace(sw, name="selection-again"), pretrained, scrambled)
    assert again[(0, "hybrid")] == picks["methods"]["hybrid"]
    split = real_split(decoded.ids, sw.base.data)
    assert set(again[(0, "hybrid")]) <= set(split.train)


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--translator-modes", "6"], "give N too"),
        (["--translator-rounds", "2"], "give N too"),
        (["--translator-real-faces", "50", "--translator-rounds", "0"], "1 or more"),
    ],
)
def test_the_job_refuses_a_translator_shape_without_its_real_faces(argv, says):
    import subprocess
    import sys
    from pathlib import Path

    job = Path(__file__).parents[1] / "jobs" / "tune_mix.py"
    proc = subprocess.run([sys.executable, str(job), *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr[-2000:]


def test_the_results_page_names_the_translators_rounds(tmp_path):
    import importlib.util
    from pathlib import Path

    from landmix import translate
    from landmix.schemes import IBUG68, SYNTH70

    spec = importlib.util.spec_from_file_location(
        "tune_mix", Path(__file__).parents[1] / "jobs" / "tune_mix.py"
    )
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    assert job.translator_words(_sweep(tmp_path)) == "the fixed table"
    stages = [
        translate.fixed(SYNTH70, IBUG68),
        translate.fixed(IBUG68, IBUG68),
        translate.fixed(IBUG68, IBUG68),
    ]
    path = translate.chain(*stages).save(tmp_path / "two-rounds.npz")
    words = job.translator_words(_sweep(tmp_path, translator=str(path), translator_real_faces=ALL_REAL))
    assert words.startswith("two-rounds.npz (chain-") and "then 2 ibug68 -> ibug68 maps" in words
    assert words.endswith("predictions for all real training faces)")
    assert "maps" not in job.translator_words(
        _sweep(tmp_path, translator=str(stages[0].save(tmp_path / "g.npz")))
    )
