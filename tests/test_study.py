"""The study's parts that decide what a face is used for, without Ray: label adaptation's fit, the mixing
ratios' ASHA groups, and the generated faces' cache key. The whole sweep (every strategy, a stop and a resume,
the faces each cell used) runs in tests/test_tune_mix_job.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from landmix import checkpoint, config, metrics, mixing, sweep
from landmix.generate import generator_version
from landmix.sweep import search


def _faces(n: int = 120, seed: int = 0):
    """Real-looking ids (photo_n), human labels, and a model's predictions with a fixed bias + noise."""
    rng = np.random.default_rng(seed)
    ids = [f"helen/trainset/{i // 2}_{i % 2}" for i in range(n)]
    base = rng.uniform(20, 70, size=(1, 68, 2))
    gt = base + rng.normal(0, 3, size=(n, 68, 2))
    pred = gt + np.array([1.5, -1.0]) + rng.normal(0, 0.5, size=(n, 68, 2))  # a convention offset to learn
    return ids, gt.astype(np.float32), pred.astype(np.float32)


def test_label_adaptation_fits_on_the_first_n_training_faces_and_only_scores_the_test_faces():
    ids, gt, pred = _faces()
    data = config.DataConfig(real_shards="/r")
    split = mixing.real_split(ids, data.split_seed, data.test_fraction, data.val_fraction)
    fit = checkpoint.adapt_outputs(pred, gt, ids, 20, data)
    assert fit["faces"]["train"] == mixing.real_subset(split.train, 20, data.split_seed)  # an n_real = 20 run's faces
    assert fit["faces"]["val"] == split.val and fit["faces"]["test"] == split.test
    assert not set(fit["faces"]["test"]) & (set(fit["faces"]["train"]) | set(fit["faces"]["val"]))
    pos = {i: k for k, i in enumerate(ids)}
    test_idx = [pos[i] for i in split.test]
    assert fit["test_errors"].mean() < metrics.nme(pred[test_idx], gt[test_idx]).mean()  # the offset is learnt
    # Changing the test faces' labels changes their scores and nothing else: not the map, not its choice.
    moved = gt.copy()
    moved[test_idx] += 25.0
    other = checkpoint.adapt_outputs(pred, moved, ids, 20, data)
    assert other["kind"] == fit["kind"] and other["translator"].version == fit["translator"].version
    np.testing.assert_array_equal(other["val_errors"], fit["val_errors"])
    assert other["test_errors"].mean() > fit["test_errors"].mean()


def test_label_adaptation_refuses_too_few_faces_with_the_reason():
    ids, gt, pred = _faces()
    with pytest.raises(ValueError, match="at least 5 real training faces"):
        checkpoint.adapt_outputs(pred, gt, ids, 3, config.DataConfig(real_shards="/r"))


def _trial(trial_id: str, strategy: str, n_real: int, seed: int = 0, alpha: float = 0.5):
    cell = sweep.Cell(strategy, n_real=n_real, alpha=alpha if strategy == "mixed" else 0.0, seed=seed)
    return SimpleNamespace(trial_id=trial_id, config={"cell": cell.__dict__})


def test_mixing_ratios_race_only_against_their_own_n_real_and_seed():
    from ray.tune.schedulers import TrialScheduler

    sw = sweep.SweepConfig(base=sweep.smoke("/r", "/s").base, alphas=(0.25, 0.5, 0.75), grace_period=2)
    asha = search.mixing_asha(sw)
    trials = {"a": _trial("a", "mixed", 10, alpha=0.25), "b": _trial("b", "mixed", 10, alpha=0.75),
              "c": _trial("c", "mixed", 50, alpha=0.75), "r": _trial("r", "real_only", 10)}  # fmt: skip
    for t in trials.values():
        asha.on_trial_add(None, t)

    def report(tid: str, val: float, it: int = 2):
        return asha.on_trial_result(None, trials[tid], {"training_iteration": it, sweep.METRIC: val})

    assert report("a", 0.10, it=1) == TrialScheduler.CONTINUE  # before the rung: nothing to compare
    assert report("a", 0.10) == TrialScheduler.CONTINUE  # first at the rung of (10, seed 0)
    assert report("b", 0.30) == TrialScheduler.STOP  # worse than its own group's ratio: stopped
    assert report("c", 0.90) == TrialScheduler.CONTINUE  # another n_real: its own race, not a's
    assert report("r", 0.99) == TrialScheduler.CONTINUE  # cells of other strategies are never stopped
    assert set(asha.groups) == {(10, 0), (50, 0)}


def test_generated_faces_are_cached_by_the_generators_version():
    v = generator_version()
    assert v.startswith("g") and len(v) == 11 and v == generator_version()


def test_results_page_is_regenerated_from_the_report_and_keeps_the_notes(tmp_path):
    import os
    import time

    from landmix import results_page

    root, report_dir = tmp_path / "sweep", tmp_path / "report"
    report_dir.mkdir()
    files = {"summary_md": report_dir / "summary.md", "figure": report_dir / "nme_vs_n_real.png",
             "summary_csv": report_dir / "summary.csv"}  # fmt: skip
    files["summary_md"].write_text("The claim **holds** ...\n\n![NME against n_real](nme_vs_n_real.png)\n")
    files["figure"].write_bytes(b"\x89PNG fake")
    files["summary_csv"].write_text("a,b\n1,2\n")
    # a first run cut off after writing one cell 60 s in, then a second one that finished
    first = results_page.record_job_start(root, ["python", "jobs/tune_mix.py", "--preset", "study"])
    (root / "cells").mkdir()
    cell = root / "cells" / "real_only-n10-s0.json"
    cell.write_text("{}")
    os.utime(cell, (first + 60, first + 60))
    lines = (root / results_page.JOB_RUNS).read_text()
    second = time.time() + 100
    (root / results_page.JOB_RUNS).write_text(lines + f'{{"argv": ["python"], "start": {second}}}\n'
                                              f'{{"start": {second}, "end": {second + 30}}}\n')  # fmt: skip
    runs = results_page.job_runs(root)
    assert [r["finished"] for r in runs] == [False, True]
    assert [round(r["seconds"]) for r in runs] == [60, 30]
    page = tmp_path / "docs" / "study.md"
    results_page.write_results_page(page, "The study", root, files, ["real faces: 1207"], {"compute_total_seconds": 5})
    text = page.read_text()
    assert "python jobs/tune_mix.py --preset study" in text and "1 min 30 s" in text  # the two runs together
    assert "](study/nme_vs_n_real.png)" in text and (page.parent / "study" / "nme_vs_n_real.png").exists()
    assert "The claim **holds**" in text and "real faces: 1207" in text
    page.write_text(text + "\n" + results_page.NOTES_HEADING + "\n\nWhat the figure does not show.\n")
    files["summary_md"].write_text("The claim **does not hold** ...\n")
    results_page.write_results_page(page, "The study", root, files, [], {})
    again = page.read_text()
    assert "does not hold" in again and "holds** ..." not in again
    assert again.endswith(results_page.NOTES_HEADING + "\n\nWhat the figure does not show.\n")
