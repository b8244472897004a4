"""What a sweep is: its config (`SweepConfig`), its trials' places in the study (`Cell`), and its presets.

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
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from landmix import config as cfg
from landmix import settings

N_REAL_CHOICES = (0, 10, 25, 50, 100, 250, 500, cfg.ALL_REAL)
STRATEGIES = cfg.STRATEGIES + (
    "label_adaptation",
)  # the study's arms: the training strategies + label adaptation
TUNED = (
    "real_only",
    "mixed",
    "pretrain_finetune",
)  # the arms whose cells are Tune trials (a training run each)
FROM_PRETRAINING = (
    "synthetic_only",
    "label_adaptation",
    "pretrain_finetune",
)  # need the seed's synthetic model
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
    base: cfg.RunSpec = field(default_factory=cfg.cpu)
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


# ----------------------------------------------------------------------------------------- presets
def smoke(real_shards: str = "", synthetic_shards: str = "", storage_path: str | None = None) -> SweepConfig:
    """A complete small sweep in a few minutes on 2 cores: every strategy, n_real 10 and 50, two mixing ratios
    (the loser stopped early), one seed."""
    base = cfg.smoke()
    base = replace(
        base,
        data=replace(
            base.data,
            real_shards=real_shards or base.data.real_shards,
            synthetic_shards=synthetic_shards or base.data.synthetic_shards,
        ),
        train=replace(base.train, num_workers=1, epochs=2),
    )
    return SweepConfig(
        name="landmix-smoke",
        n_real=(10, 50),
        alphas=(0.25, 0.75),
        seeds=(0,),
        pretrain_epochs=1,
        grace_period=1,
        base=base,
        storage_path=storage_path or settings.storage_path(),
    )


# The study's generated faces (beside the FaceSynthetics renders found in the shared data): as many as the
# seed study used of each synthetic set.
STUDY_GENERATED = 10_000


def study(real_shards: str = "", synthetic_shards: str = "", storage_path: str | None = None) -> SweepConfig:
    """The seed study on real faces at convergence, sized for 2 cores: five strategies x n_real {10, 50, 250, all}
    x 3 seeds, mixing at 3 ratios per n_real and seed (losers stopped early by ASHA). Each trial trains until
    validation NME stops improving (patience) or its budget is spent: the real-baseline's model and decoding at
    96 px (docs/results/train.md), 150 s of training per trial on one core, 300 s on two for each seed's
    synthetic-only model. docs/results/study.md has its measured time; `--preset study` on a GPU cluster
    with a larger base is the full-size study."""
    base = cfg.real_baseline()
    model = replace(base.model, image_size=96)
    base = replace(
        base,
        model=model,
        data=replace(
            base.data,
            real_shards=real_shards or cfg.real_shards(model),
            synthetic_shards=synthetic_shards or cfg.synthetic_shards(model),
            samples_per_epoch=1024,
        ),
        train=replace(
            base.train,
            num_workers=1,
            cpus_per_worker=1,
            epochs=400,
            time_budget_s=150,
            patience=4,
            name="landmix-study",
        ),
    )
    return SweepConfig(
        name="landmix-study",
        n_real=(10, 50, 250, cfg.ALL_REAL),
        alphas=(0.25, 0.5, 0.75),
        seeds=(0, 1, 2),
        pretrain_epochs=400,
        pretrain_budget_s=300,
        pretrain_cpus_per_worker=2,
        grace_period=4,
        base=base,
        storage_path=storage_path or settings.storage_path(),
    )


def study_cluster(
    real_shards: str = "", synthetic_shards: str = "", storage_path: str | None = None
) -> SweepConfig:
    """The same study at full size on a GPU cluster (`ray job submit ... --preset study-cluster`): the
    real-baseline's model at 160 px, one GPU per trial, and budgets in epochs, not seconds (the same steps on
    any machine): at most 60 epochs of 4096 samples, early stopping after 8 without improvement; each seed's
    synthetic-only model at most 60 epochs."""
    base = cfg.real_baseline()
    base = replace(
        base,
        data=replace(
            base.data,
            real_shards=real_shards or base.data.real_shards,
            synthetic_shards=synthetic_shards or cfg.synthetic_shards(base.model),
            samples_per_epoch=4096,
        ),
        train=replace(
            base.train,
            num_workers=1,
            use_gpu=True,
            cpus_per_worker=4,
            epochs=60,
            time_budget_s=0,
            patience=8,
            name="landmix-study-cluster",
        ),
    )
    return replace(
        study(storage_path=storage_path),
        name="landmix-study-cluster",
        base=base,
        pretrain_epochs=60,
        pretrain_budget_s=0,
        pretrain_cpus_per_worker=0,
        grace_period=6,
    )


def study_selection(
    real_shards: str = "", synthetic_shards: str = "", storage_path: str | None = None
) -> SweepConfig:
    """Which real faces to label (issue 14's arm of the study), sized for one session on 2 cores: real only and
    pretraining + fine-tuning on n_real {10, 50, 250} faces picked by each selection method (cfg.SELECTIONS),
    3 seeds, with random picks at all faces too (the top of the equivalence curve) and the synthetic-only
    baseline. The study's model at 96 px, with budgets in epochs, not seconds, so that a busy host cannot move
    the steps a trial gets (the methods are compared on equal steps): at most 14 epochs of 1024 samples with
    patience 4; each seed's synthetic-only model (the selector and the fine-tunes' start) at most 16 epochs on
    2 CPUs. Four trials at once on 2 cores (the faces come from the object store, no read tasks; with budgets in
    epochs, crowding changes the time, not the result). docs/results/selection.md has its measured time."""
    s = study(real_shards, synthetic_shards, storage_path)
    base = replace(s.base, train=replace(s.base.train, epochs=14, time_budget_s=0, name="landmix-selection"))
    return replace(
        s,
        name="landmix-selection",
        strategies=("real_only", "synthetic_only", "pretrain_finetune"),
        n_real=(10, 50, 250, cfg.ALL_REAL),
        selections=cfg.SELECTIONS,
        base=base,
        pretrain_epochs=16,
        pretrain_budget_s=0,
        max_concurrent_trials=4,
    )


PRESETS = {"smoke": smoke, "study": study, "study-cluster": study_cluster, "study-selection": study_selection}
