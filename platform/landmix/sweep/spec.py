"""What a sweep is: its config (`SweepConfig`) and its trials' places in the study (`Cell`); the presets are in
`landmix.sweep.presets`.

A cell is one (strategy, n_real, alpha, seed) of the grid, or the values the optimising mode sampled
(strategy, alpha, lr, augment_strength for a fixed n_real). n_real means what it means everywhere
(`config.ALL_REAL` = every face of the real training pool, 0 = none: the synthetic-only arm).

The study's five strategies (`STRATEGIES`, the seed study's arms): real only; data adaptation (synthetic
only, labels translated before training: "synthetic_only"); label adaptation (the synthetic-only model with
its outputs translated by a map fitted on the same n_real real faces: "label_adaptation"); mixing (a batch
ratio searched per n_real: "mixed"); synthetic pretraining + fine-tuning. The synthetic-only training of each
seed serves three of them: it is the data-adaptation arm, the model label adaptation translates, and the
pretraining every fine-tune starts from (`landmix.sweep.pretrain`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from landmix import config as cfg
from landmix import presets, settings

N_REAL_CHOICES = (0, 10, 25, 50, 100, 250, 500, cfg.ALL_REAL)
# the study's arms: the training strategies + label adaptation
STRATEGIES = cfg.STRATEGIES + ("label_adaptation",)
# the arms whose cells are Tune trials (a training run each)
TUNED = ("real_only", "mixed", "pretrain_finetune")
# need the seed's synthetic model
FROM_PRETRAINING = ("synthetic_only", "label_adaptation", "pretrain_finetune")
SELECTION_ARMS = ("real_only", "pretrain_finetune")  # the arms a selection method picks real faces for
METRIC = "val_nme"  # what Tune selects and stops trials on: NME on the validation faces, never the test faces
REPORTED = (
    "test_nme"  # what the report compares: NME on the held-out test faces, scored once per finished trial
)


@dataclass(frozen=True)
class Cell:
    """One trial's place in the study. lr / augment_strength: None = the sweep's (the grid never varies them)."""

    strategy: str
    n_real: int  # real training faces (cfg.ALL_REAL = all of the pool, 0 = none)
    alpha: float = 0.0  # the synthetic share of each batch (strategy "mixed")
    seed: int = 0
    lr: float | None = None
    augment_strength: float | None = None
    selection: str = "random"  # how its n_real faces were picked (cfg.SELECTIONS; landmix.sweep.selection)

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"cell strategy {self.strategy!r}; allowed: {list(STRATEGIES)}")
        if self.selection not in cfg.SELECTIONS:
            raise ValueError(f"cell selection {self.selection!r}; allowed: {list(cfg.SELECTIONS)}")

    @classmethod
    def from_dict(cls, values: dict) -> Cell:
        """A cell from a Tune config (a grid cell's dict, or the optimising mode's sampled values)."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    @property
    def name(self) -> str:
        """The stable run name of a grid cell: its Train run, its MLflow run and its result file."""
        alpha = f"-a{self.alpha:g}" if self.strategy == "mixed" else ""
        n = "all" if self.n_real == cfg.ALL_REAL else self.n_real
        picked = "" if self.selection == "random" else f"-{self.selection}"
        return f"{self.strategy}-n{n}{alpha}{picked}-s{self.seed}"

    def row(self, metrics: dict | None = None) -> dict:
        """The cell as a report row. With its metrics, n_real = ALL_REAL becomes the number of real faces it
        trained on (`n_real_faces`), which the report plots and interpolates; alpha is NaN unless mixed."""
        out = {
            "strategy": self.strategy,
            "n_real": self.n_real,
            "seed": self.seed,
            "alpha": float(self.alpha) if self.strategy == "mixed" else math.nan,
            "selection": self.selection,
        }
        out |= {k: getattr(self, k) for k in ("lr", "augment_strength") if getattr(self, k) is not None}
        if metrics and self.n_real == cfg.ALL_REAL:
            out["n_real"] = int(metrics.get("n_real_faces", cfg.ALL_REAL))
        return out


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: which cells to train, how, and where results go.

    name: MLflow experiment and storage folder name; a re-run with the same name resumes.
    mode: "grid" (every strategy x n_real x alpha x seed cell) or "optimize" (Optuna + ASHA).
    strategies / n_real / alphas / seeds: the grid's axes (alphas apply to "mixed" only).
    selections: how the n_real faces are picked (cfg.SELECTIONS): "random" (the seeded order) for every arm;
    the other methods rank the unlabelled training pool with the seed's synthetic-only model
    (`landmix.sweep.selection`) and apply to SELECTION_ARMS at every n_real but all.
    base: the run preset every trial starts from (model, epochs, samples per epoch, time budget...).
    pretrain_epochs / pretrain_budget_s: the most epochs and the training seconds (0 = the base's budget) of
    the once-per-seed synthetic training (the data-adaptation arm, label adaptation's model, the fine-tunes'
    start); pretrain_cpus_per_worker: its CPUs per worker (0 = the base's; it runs alone, before the trials).
    num_samples: trials of the optimising mode; grace_period: ASHA's minimum epochs (the optimising mode's
    trials, and in the grid the mixing ratios of one n_real and seed, of which the losers stop early).
    budget_n_real: optimising mode only: the real faces you have (the search picks the mix for it).
    """

    name: str = "landmix-mix"
    mode: str = "grid"
    strategies: tuple[str, ...] = STRATEGIES
    n_real: tuple[int, ...] = (10, 50, 250)
    alphas: tuple[float, ...] = (0.25, 0.5, 0.75)
    seeds: tuple[int, ...] = (0, 1, 2)
    selections: tuple[str, ...] = ("random",)
    lr: float = 2e-3
    augment_strength: float = 0.5
    pretrain_epochs: int = 6
    pretrain_budget_s: float = 0.0
    pretrain_cpus_per_worker: float = 0.0
    num_samples: int = 12
    grace_period: int = 2
    budget_n_real: int = 50
    storage_path: str = field(default_factory=settings.storage_path)
    base: cfg.RunSpec = field(default_factory=presets.cpu)
    max_concurrent_trials: int = 0  # 0 = from the cluster's CPUs/GPUs
    translator: str = (
        ""  # the .npz that translated the synthetic labels (logged on the parent run); "" = fixed
    )
    translator_real_faces: int = (
        0  # real training faces the translator's real-fitted stage saw (0 = no such stage)
    )
    generator_version: str = (
        ""  # the embedded generator's version behind the generated faces (logged; "" = none)
    )

    def __post_init__(self):
        if self.mode not in ("grid", "optimize"):
            raise ValueError(f"sweep.mode={self.mode!r}; choose 'grid' or 'optimize'")
        for s in self.strategies:
            if s not in STRATEGIES:
                raise ValueError(f"sweep.strategies has {s!r}; allowed: {list(STRATEGIES)}")
        for s in self.selections:
            if s not in cfg.SELECTIONS:
                raise ValueError(f"sweep.selections has {s!r}; allowed: {list(cfg.SELECTIONS)}")
        if "random" not in self.selections:
            raise ValueError(
                "sweep.selections must hold 'random': every selection method is measured against it"
            )
        for n in self.n_real:
            if n not in N_REAL_CHOICES:
                raise ValueError(
                    f"sweep.n_real has {n}; allowed: {list(N_REAL_CHOICES)} ({cfg.ALL_REAL} = all)"
                )

    @property
    def root(self) -> Path:
        """The sweep's own bookkeeping, on the driver's disk: sweep.json, parent_run_id, cells/, report/.

        Under storage_path when that is a folder; under the project's runs/ (the head node, where the
        driver runs and a resumed sweep runs again) when storage_path is a URI such as s3://...
        """
        local = settings.PROJECT_ROOT / "runs" if "://" in self.storage_path else Path(self.storage_path)
        return local / self.name

    def ray_storage(self, part: str) -> str:
        """Ray Train/Tune storage of one part of the sweep ("train", "pretrain", "tune"): a folder or a URI."""
        return f"{self.storage_path.rstrip('/')}/{self.name}/{part}"


def needs_pretraining(sweep: SweepConfig) -> bool:
    """Whether the sweep trains a synthetic-only model per seed (an arm that derives from it is in the sweep,
    or a selection method, which ranks the real faces with it)."""
    return any(s in FROM_PRETRAINING for s in sweep.strategies) or len(sweep.selections) > 1


def grid_cells(sweep: SweepConfig) -> list[Cell]:
    """Every cell of the grid: one per (strategy, n_real, alpha, seed) that makes sense.

    real_only, mixed, pretrain_finetune and label_adaptation use real faces (n_real != 0); synthetic_only uses
    none. alpha is the synthetic share of each batch and only varies for "mixed" (the ratios the search tries;
    the report keeps the one with the best validation NME per n_real and seed).
    """
    cells = []
    for seed in sweep.seeds:
        for strategy in sweep.strategies:
            if strategy == "synthetic_only":
                cells.append(Cell(strategy, n_real=0, alpha=1.0, seed=seed))
                continue
            for n in (n for n in sweep.n_real if n != 0):
                alphas = sweep.alphas if strategy == "mixed" else (0.0,)
                cells += [Cell(strategy, n_real=n, alpha=a, seed=seed) for a in alphas]
                if strategy in SELECTION_ARMS and n != cfg.ALL_REAL:  # picking all faces is no choice
                    cells += [
                        Cell(strategy, n_real=n, seed=seed, selection=m)
                        for m in sweep.selections
                        if m != "random"
                    ]
    return cells
