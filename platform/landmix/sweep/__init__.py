"""Ray Tune over the real/synthetic mix, in these parts:

- `landmix.sweep.spec`: what a sweep is (`SweepConfig`, its cells `Cell`); `landmix.sweep.presets`: `smoke`, `study`, ...;
- `landmix.sweep.search`: the search space, the trial function (each trial its own Ray Train run), the
  Tuner and `run_sweep`;
- `landmix.sweep.asha`: early stopping among the grid's mixing ratios, and the stopped trials' records;
- `landmix.sweep.pretrain`: the once-per-seed synthetic-only training and the translator's real-face round
  (`landmix.relabel` fits it);
- `landmix.sweep.adapt`: the label-adaptation arm (that model's outputs translated by a real-fitted map);
- `landmix.sweep.results`: the bookkeeping of finished cells and the report's rows.

    from landmix import settings, sweep
    settings.init_ray()
    sweep.run_sweep(sweep.study(real_shards=..., synthetic_shards=...))
"""

from landmix.sweep.presets import PRESETS, STUDY_GENERATED, smoke, study
from landmix.sweep.pretrain import fit_real_translator, synthetic_model, translator_path
from landmix.sweep.search import run_sweep
from landmix.sweep.spec import METRIC, REPORTED, STRATEGIES, Cell, SweepConfig, grid_cells

__all__ = [
    "METRIC",
    "PRESETS",
    "REPORTED",
    "STRATEGIES",
    "STUDY_GENERATED",
    "Cell",
    "SweepConfig",
    "fit_real_translator",
    "grid_cells",
    "run_sweep",
    "smoke",
    "study",
    "synthetic_model",
    "translator_path",
]
