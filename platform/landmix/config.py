"""Typed run configuration for training: frozen dataclasses and presets as functions.

A run is `RunSpec(model, data, train)`. Presets (`smoke()`, `cpu()`, `gpu()`, `real_baseline()`) return
one; `landmix train --preset NAME` picks one by name (`PRESETS`). Dicts appear only at Ray's edge:
`to_dict(spec)` goes into `train_loop_config` and `mlflow.log_params`, `from_dict` turns it back.
Cross-field checks live in `__post_init__` and name the field and the allowed values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from landmix import settings

HEADS = ("regression", "heatmap", "soft_argmax")
BACKBONES = ("small", "resnet50")
STRATEGIES = ("real_only", "synthetic_only", "mixed", "pretrain_finetune")


def _check(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {list(allowed)}")


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "small"  # "small" (CPU-friendly ResNet-ish, ~1M params) or "resnet50" (GPU)
    # "regression" (pooled FC + wing loss; chosen by measurement, docs/results/train.md), "heatmap"
    # (Gaussian MSE, argmax decoding) or "soft_argmax" (heatmaps read out by a spatial softmax + wing loss)
    head: str = "regression"
    width: int = 32  # channels of the first stage of the small backbone (doubles towards 4x)
    num_points: int = 68  # K, points predicted (IBUG68)
    image_size: int = 128  # input side in pixels (a multiple of 32); heatmaps are image_size / 4

    def __post_init__(self):
        _check("model.backbone", self.backbone, BACKBONES)
        _check("model.head", self.head, HEADS)
        if self.image_size % 32:
            raise ValueError(f"model.image_size={self.image_size} must be a multiple of 32 (stride of the backbone)")


@dataclass(frozen=True)
class DataConfig:
    real_shards: str = ""  # folder of prepared Parquet shards with real faces (contract (3)); "" = none
    synthetic_shards: str = ""  # folder of prepared shards with synthetic faces, labels already IBUG68
    strategy: str = "real_only"  # one of STRATEGIES (see landmix.mixing)
    n_real: int = 0  # distinct real training faces: a prefix of one seeded order (0 = all of the train split)
    alpha: float = 0.0  # fraction of synthetic samples in each batch (strategy "mixed")
    samples_per_epoch: int = 1024  # fixed per epoch (all ranks together) so trials are comparable
    val_fraction: float = 0.2  # of the real faces, held out by landmix.mixing.real_split (fixed, seeded)
    split_seed: int = 0  # seed of the real train/val split and of the n_real order
    augment_strength: float = 0.5  # passed to landmix.augment.make_augmenter; 0 = identity
    pretrain_epochs: int = 0  # strategy "pretrain_finetune": synthetic-only epochs before real fine-tuning

    def __post_init__(self):
        _check("data.strategy", self.strategy, STRATEGIES)
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"data.alpha={self.alpha} must lie in [0, 1] (fraction of synthetic samples per batch)")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction={self.val_fraction} must lie in (0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32  # per worker; the global batch is batch_size * num_workers
    lr: float = 2e-3  # AdamW peak learning rate, cosine decay after a 1-epoch warm-up
    weight_decay: float = 1e-4
    num_workers: int = 2  # Ray Train workers (DDP ranks)
    use_gpu: bool = False  # one GPU per worker; mixed precision (bf16 autocast) when True
    cpus_per_worker: float = 1.0
    placement_strategy: str = "PACK"  # Ray placement group strategy: PACK, SPREAD, STRICT_SPREAD, STRICT_PACK
    seed: int = 0  # model init, batch sampling and per-epoch augmentation seeds derive from it
    init_checkpoint: str = ""  # checkpoint dir to start from (fine-tuning after synthetic pretraining)
    storage_path: str = field(default_factory=settings.storage_path)  # Ray Train storage, shared by workers
    name: str = "landmix"  # Ray Train run name; also the MLflow run key, so a resumed run finds its MLflow run
    max_failures: int = 2  # FailureConfig: worker failures recovered from the last checkpoint
    tracking_uri: str = ""  # MLflow URI; "" = $MLFLOW_TRACKING_URI; "none" = no tracking
    experiment: str = "landmix"  # MLflow experiment name
    parent_run_id: str = ""  # MLflow parent run (a sweep's); "" = a top-level run
    run_label: str = ""  # MLflow run name; "" = train.name
    strategy_label: str = ""  # MLflow tag landmix.strategy; "" = data.strategy (a sweep says "pretrain_finetune")
    fail_at_epoch: int = -1  # test hook: rank 1 (or 0 alone) exits hard at this epoch once (= epochs: after the last)
    fail_marker: str = ""  # test hook: file created before the injected failure so it happens only once

    def __post_init__(self):
        if self.num_workers < 1:
            raise ValueError(f"train.num_workers={self.num_workers} must be >= 1")
        _check("train.placement_strategy", self.placement_strategy, ("PACK", "SPREAD", "STRICT_SPREAD", "STRICT_PACK"))
        if self.max_failures < 1:
            raise ValueError("train.max_failures must be >= 1 so a killed worker resumes from its checkpoint")


@dataclass(frozen=True)
class RunSpec:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        d = self.data
        if d.strategy != "synthetic_only" and not d.real_shards:
            raise ValueError(f"data.strategy={d.strategy!r} needs data.real_shards (a `landmix prepare` folder)")
        if d.strategy in ("synthetic_only", "mixed", "pretrain_finetune") and not d.synthetic_shards:
            raise ValueError(f"data.strategy={d.strategy!r} needs data.synthetic_shards")
        if d.strategy == "pretrain_finetune" and not 0 < d.pretrain_epochs < self.train.epochs:
            raise ValueError("data.pretrain_epochs must lie in (0, train.epochs) for strategy 'pretrain_finetune'")


def to_dict(spec: RunSpec) -> dict:
    """The nested dict that crosses Ray's edge (train_loop_config, MLflow params)."""
    return asdict(spec)


def from_dict(d: dict) -> RunSpec:
    return RunSpec(model=ModelConfig(**d["model"]), data=DataConfig(**d["data"]), train=TrainConfig(**d["train"]))


def flat_params(spec: RunSpec) -> dict[str, object]:
    """`section.field -> value`, the shape mlflow.log_params wants."""
    return {f"{sec}.{k}": v for sec, sub in to_dict(spec).items() for k, v in sub.items()}


def _shards(name: str) -> str:
    return str(settings.PROJECT_ROOT / "out" / "shards" / name)


# ----------------------------------------------------------------------------------------- presets
def smoke() -> RunSpec:
    """Seconds: a tiny model, 2 epochs of 64 samples at 64 px, 2 CPU workers. For tests and --smoke-test."""
    return RunSpec(
        model=ModelConfig(width=8, image_size=64),
        data=DataConfig(real_shards=_shards("300w"), samples_per_epoch=64, augment_strength=0.5),
        train=TrainConfig(epochs=2, batch_size=8, num_workers=2, name="landmix-smoke"),
    )


def cpu() -> RunSpec:
    """The CPU default: small backbone at 112 px, real faces mixed with synthetic ones (alpha 0.5)."""
    return RunSpec(
        model=ModelConfig(),
        data=DataConfig(
            real_shards=_shards("300w"), synthetic_shards=_shards("synthetic"), strategy="mixed", alpha=0.5
        ),
        train=TrainConfig(epochs=12, num_workers=2, name="landmix-cpu"),
    )


def real_baseline() -> RunSpec:
    """Real faces only (the 966 train faces of the shared 300-W), 241 held out (mixing.real_split); ~8 min here."""
    return RunSpec(
        model=ModelConfig(),
        data=DataConfig(real_shards=_shards("300w"), strategy="real_only", samples_per_epoch=1024),
        train=TrainConfig(epochs=24, num_workers=2, name="landmix-real-baseline"),
    )


def gpu() -> RunSpec:
    """The target deployment: ResNet-50 backbone at 256 px, 4 GPU workers, bf16 autocast."""
    return RunSpec(
        model=ModelConfig(backbone="resnet50", image_size=256),
        data=DataConfig(
            real_shards=_shards("300w"),
            synthetic_shards=_shards("synthetic"),
            strategy="mixed",
            alpha=0.5,
            samples_per_epoch=65536,
        ),
        train=TrainConfig(epochs=60, batch_size=64, lr=1e-3, num_workers=4, use_gpu=True, cpus_per_worker=4,
                          name="landmix-gpu"),
    )


PRESETS = {"smoke": smoke, "cpu": cpu, "gpu": gpu, "real-baseline": real_baseline}


def preset(name: str, **overrides) -> RunSpec:
    """The preset called `name`, with `section.field=value` style overrides given as section dicts."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    spec = PRESETS[name]()
    for section, values in overrides.items():
        spec = replace(spec, **{section: replace(getattr(spec, section), **values)})
    return spec
