"""The sweep presets: functions that return a `SweepConfig` (`smoke`, `study`, `study_cluster`,
`study_selection`), by name in `PRESETS` (`jobs/tune_mix.py --preset NAME`).
"""

from __future__ import annotations

from dataclasses import replace

from landmix import config as cfg
from landmix import presets, settings
from landmix.sweep.spec import SweepConfig


def smoke(real_shards: str = "", synthetic_shards: str = "", storage_path: str | None = None) -> SweepConfig:
    """A complete small sweep in a few minutes on 2 cores: every strategy, n_real 10 and 50, two mixing ratios
    (the loser stopped early), one seed."""
    base = presets.smoke()
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
    base = presets.real_baseline()
    model = replace(base.model, image_size=96)
    base = replace(
        base,
        model=model,
        data=replace(
            base.data,
            real_shards=real_shards or presets.real_shards(model),
            synthetic_shards=synthetic_shards or presets.synthetic_shards(model),
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
    base = presets.real_baseline()
    base = replace(
        base,
        data=replace(
            base.data,
            real_shards=real_shards or base.data.real_shards,
            synthetic_shards=synthetic_shards or presets.synthetic_shards(base.model),
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
