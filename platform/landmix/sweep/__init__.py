"""Ray Tune over the real/synthetic mix, in four parts:

- `landmix.sweep.spec`: what a sweep is (`SweepConfig`, its cells `Cell`, the `smoke` and `study` presets);
- `landmix.sweep.search`: the search space, the trial function (each trial its own Ray Train run), the
  Tuner and `run_sweep`;
- `landmix.sweep.pretrain`: the once-per-seed synthetic pretraining and the translator's real-face round;
- `landmix.sweep.results`: the bookkeeping of finished cells and the report's rows.

    from landmix import settings, sweep
    settings.init_ray()
    sweep.run_sweep(sweep.study(real_shards=..., synthetic_shards=...))
"""

from landmix.sweep.pretrain import fit_real_translator
from landmix.sweep.search import run_sweep
from landmix.sweep.spec import METRIC, PRESETS, REPORTED, Cell, SweepConfig, grid_cells, smoke, study

__all__ = ["METRIC", "PRESETS", "REPORTED", "Cell", "SweepConfig", "fit_real_translator", "grid_cells",
           "run_sweep", "smoke", "study"]  # fmt: skip
