"""Early stopping in the grid: the mixing ratios of one (n_real, seed) race under their own ASHA (`mixing_asha`),
the losers stop at the first rung; every other cell runs on. A trial ASHA stops leaves a marker (`asha_marker`)
and is recorded as "stopped" (`record_stopped`), its validation NME kept and its MLflow run ended KILLED; a trial
cut off otherwise (a stopped job) has no marker and runs again.
"""

from __future__ import annotations

from pathlib import Path

from landmix.sweep import results
from landmix.sweep.spec import METRIC, REPORTED, Cell, SweepConfig


def asha_marker(sweep: SweepConfig, cell: Cell) -> Path:
    """The file MixingASHA leaves when it stops a cell's trial: only such a trial is recorded as "stopped" (a
    trial cut off by a stopped job has no test score either, and must run again)."""
    return sweep.root / "asha_stopped" / cell.name


def mixing_asha(sweep: SweepConfig):
    """ASHA among the mixing ratios of each (n_real, seed) of the grid, one scheduler per group (one ASHA over
    the whole grid would stop a 10-face trial for losing to an all-faces one); every other cell runs on."""
    from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler

    class MixingASHA(FIFOScheduler):
        def __init__(self):
            super().__init__()
            self.groups: dict[tuple, AsyncHyperBandScheduler] = {}

        def _group(self, trial):
            cell = trial.config["cell"]
            if cell["strategy"] != "mixed":
                return None
            key = (cell["n_real"], cell["seed"])
            if key not in self.groups:  # max_t past the last epoch: a trial's own end is never ASHA's stop
                self.groups[key] = AsyncHyperBandScheduler(
                    metric=METRIC,
                    mode="min",
                    max_t=sweep.base.train.epochs + 1,
                    grace_period=sweep.grace_period,
                    reduction_factor=max(2, len(sweep.alphas)),
                )
            return self.groups[key]

        def on_trial_add(self, tune_controller, trial):
            if g := self._group(trial):
                g.on_trial_add(tune_controller, trial)

        def on_trial_result(self, tune_controller, trial, result):
            g = self._group(trial)
            # a trial's own last epoch (it carries the test score):
            if g is None or result.get("stop_reason"):
                # never cut it before it records its cell; it still counts for ASHA
                return TrialScheduler.CONTINUE
            decision = g.on_trial_result(tune_controller, trial, result)
            # what record_stopped records; a trial cut off otherwise reruns
            if decision == TrialScheduler.STOP:
                marker = asha_marker(sweep, Cell.from_dict(trial.config["cell"]))
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
            return decision

        def on_trial_complete(self, tune_controller, trial, result):
            if g := self._group(trial):
                g.on_trial_complete(tune_controller, trial, result)

        def on_trial_remove(self, tune_controller, trial):
            if g := self._group(trial):
                g.on_trial_remove(tune_controller, trial)

    return MixingASHA()


def record_stopped(sweep: SweepConfig, tune_results, tracking_uri: str | None) -> None:
    """Record the grid's trials that ASHA stopped early (validation NME, no test score, MixingASHA's marker) as
    done: "stopped"; their MLflow runs end KILLED (tagged landmix.stop_reason = asha), so none is left RUNNING.
    A trial cut off by a stopped job is not recorded: the next run of the sweep resumes it."""
    import math

    from landmix import tracking

    for r in tune_results or []:
        cell = Cell.from_dict(r.config["cell"])
        m = r.metrics or {}
        stopped = r.error is None and METRIC in m and REPORTED not in m and asha_marker(sweep, cell).exists()
        if stopped and not results.is_finished(sweep, cell):
            seconds = float(m.get("time_total_s", math.nan))
            if final := results.finished_train_run(sweep, cell):  # it ended before the stop reached it
                results.write_cell_result(
                    sweep, cell, final["metrics"], seconds, final["faces"], mlflow_run_id=final["run_id"]
                )
            else:
                results.write_cell_result(sweep, cell, m, seconds, status="stopped")
    if not tracking_uri:
        return
    for name, done in results.finished_cells(sweep).items():  # this run's and any earlier run's
        if done["status"] == "stopped":
            for run in tracking.runs_with_key(tracking_uri, sweep.name, name):
                if run.info.status == "RUNNING":
                    tracking.end_run(tracking_uri, run.info.run_id, "KILLED", {"landmix.stop_reason": "asha"})
