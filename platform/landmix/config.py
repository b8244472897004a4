"""Typed run configuration for training: frozen dataclasses and presets as functions.

A run is `RunSpec(model, data, train, tracking)`. Presets (`smoke()`, `cpu()`, `gpu()`, `real_baseline()`) return
one; `landmix train --preset NAME` picks one by name (`PRESETS`). Dicts appear only at Ray's edge:
`to_dict(spec)` goes into `train_loop_config` and `mlflow.log_params`, `from_dict` turns it back.
Cross-field checks live in `__post_init__` and name the field and the allowed values.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from landmix import settings

HEADS = ("regression", "flat_regression", "soft_argmax", "heatmap_offset", "simcc")
BACKBONES = ("small", "mobilenet", "resnet50")
PRECISIONS = ("fp32", "bf16", "auto")
STRATEGIES = ("real_only", "synthetic_only", "mixed", "pretrain_finetune")
# How the n_real real training faces are chosen (landmix.select): "random" = the seeded n_real order
# (mixing.real_subset); the others rank the unlabelled training pool with a synthetic-pretrained model.
SELECTIONS = ("random", "coverage", "uncertainty", "hybrid")
# n_real, everywhere (a run's data, a sweep's cells, the translator's real-face fit): how many real training
# faces; ALL_REAL = every face of the training pool, 0 = none.
ALL_REAL = -1


def _check(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {list(allowed)}")


@dataclass(frozen=True)
class ModelConfig:
    # "small" (CPU-friendly ResNet-ish), "mobilenet" (depthwise-separable, MobileNetV2-style) or "resnet50" (GPU)
    backbone: str = "small"
    # How points are read out (landmix.models; measured against each other in docs/results/train.md):
    # "heatmap_offset" (a small FPN to stride 4, which cell holds each point + where in it, PIPNet-style; the
    # default: the best at equal wall time), "soft_argmax" (the same maps, integral regression, L1),
    # "simcc" (1-D classification per axis), "regression" (pooled features -> FC), "flat_regression"
    # (flattened stride-32 features -> FC)
    head: str = "heatmap_offset"
    width: int = 32  # channels of the first stage of the small backbones (grows towards 4x)
    num_points: int = 68  # K, points predicted (IBUG68)
    image_size: int = 96  # input side in pixels (a multiple of 32); heatmaps are image_size / 4
    # The model-input crop: a square of crop_scale x the landmark box's long side, centred on the box. Train,
    # eval and predict all crop this way (predict maps a face detector's box to it); recorded in checkpoints.
    crop_scale: float = 1.25

    def __post_init__(self):
        _check("model.backbone", self.backbone, BACKBONES)
        _check("model.head", self.head, HEADS)
        if self.image_size % 32:
            raise ValueError(
                f"model.image_size={self.image_size} must be a multiple of 32 (stride of the backbone)"
            )
        if not 1.0 <= self.crop_scale <= 3.0:
            raise ValueError(
                f"model.crop_scale={self.crop_scale} must lie in [1, 3] (crop side / landmark box side)"
            )


@dataclass(frozen=True)
class DataConfig:
    real_shards: str = ""  # folder of prepared real faces (`landmix prepare`, landmix.prepare); "" = none
    synthetic_shards: str = ""  # folder of prepared shards with synthetic faces, labels already IBUG68
    strategy: str = "real_only"  # one of STRATEGIES (see landmix.mixing)
    # Distinct real training faces: a prefix of one seeded order of the training pool (ALL_REAL = all of it)
    n_real: int = ALL_REAL
    alpha: float = 0.0  # fraction of synthetic samples in each batch (strategy "mixed")
    samples_per_epoch: int = 1024  # fixed per epoch (all ranks together) so trials are comparable
    # The real faces' fixed splits (landmix.sources.split.real_split): test_fraction of all faces are held out for
    # reporting only; val_fraction of the rest (whole source photos) are the validation faces (early stopping,
    # model selection); the remaining pool is where the n_real faces come from.
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    split_seed: int = 0  # seed of the real splits and of the n_real order
    augment_strength: float = 0.5  # passed to landmix.augment.make_augmenter; 0 = identity
    pretrain_epochs: int = 0  # strategy "pretrain_finetune": synthetic-only epochs before real fine-tuning
    # Which real faces were picked for labelling (SELECTIONS): "random" = the first n_real of the seeded order;
    # otherwise real_faces holds the n_real training-pool ids that method picked (landmix.select), in order.
    selection: str = "random"
    real_faces: tuple[str, ...] = ()
    # Real faces no part of the split holds (not trained on, validated or tested with): the fold that
    # `landmix audit` judges with this run's model.
    withheld: tuple[str, ...] = ()

    def __post_init__(self):
        _check("data.strategy", self.strategy, STRATEGIES)
        _check("data.selection", self.selection, SELECTIONS)
        object.__setattr__(self, "real_faces", tuple(self.real_faces))  # a list when read back from JSON
        object.__setattr__(self, "withheld", tuple(self.withheld))
        if (self.selection == "random") != (not self.real_faces):
            raise ValueError(
                f"data.selection={self.selection!r} with {len(self.real_faces)} data.real_faces: "
                "'random' takes the seeded order (no ids); a selection method gives its picks' ids"
            )
        if self.real_faces and len(self.real_faces) != self.n_real:
            raise ValueError(
                f"data.real_faces holds {len(self.real_faces)} ids for data.n_real={self.n_real}: "
                "give exactly the n_real picked faces"
            )
        if self.n_real < ALL_REAL or (self.n_real == 0 and self.strategy != "synthetic_only"):
            raise ValueError(
                f"data.n_real={self.n_real}: strategy {self.strategy!r} trains on real faces; give "
                f"how many (>= 1), or {ALL_REAL} for all of the training pool"
            )
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(
                f"data.alpha={self.alpha} must lie in [0, 1] (fraction of synthetic samples per batch)"
            )
        for name in ("test_fraction", "val_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"data.{name}={getattr(self, name)} must lie in (0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10  # at most; early stopping and time_budget_s may end the run sooner
    batch_size: int = 32  # per worker; the global batch is batch_size * num_workers
    lr: float = 2e-3  # AdamW peak learning rate, cosine decay after a 1-epoch warm-up
    weight_decay: float = 1e-4
    # Early stopping: end when validation NME has not improved for `patience` epochs (0 = never); the best
    # epoch's weights are what the checkpoint's model.pt holds and what the test faces are scored with.
    patience: int = 0
    # Compute budget in seconds of training (Ray start-up and data loading excluded; 0 = none): the cosine
    # schedule is laid over the budget (estimated from the measured epoch time), and training ends when it
    # is spent. Makes runs comparable at equal wall time on a given machine.
    time_budget_s: float = 0.0
    num_workers: int = 2  # Ray Train workers (DDP ranks)
    use_gpu: bool = False  # one GPU per worker
    # The training step's arithmetic: "fp32"; "bf16" (autocast: convolutions in bfloat16, weights, loss and
    # optimizer in float32); "auto" = bf16 on a GPU and on a CPU that computes bf16 natively (AMX or
    # AVX512-BF16: 1.3-1.6x the model step at 128-160 px, docs/results/train.md), fp32 elsewhere. Validation, test
    # scoring and prediction always run in fp32.
    precision: str = "fp32"
    # Weight averaging: validate, keep and score an exponential moving average of the weights (torch's
    # AveragedModel), `ema_decay` per step; 0 = off (the raw weights).
    ema_decay: float = 0.0
    cpus_per_worker: float = 1.0
    placement_strategy: str = "PACK"  # Ray placement group strategy: PACK, SPREAD, STRICT_SPREAD, STRICT_PACK
    seed: int = 0  # model init, batch sampling and per-epoch augmentation seeds derive from it
    init_checkpoint: str = ""  # checkpoint dir to start from (fine-tuning after synthetic pretraining)
    storage_path: str = field(default_factory=settings.storage_path)  # Ray Train storage, shared by workers
    name: str = (
        "landmix"  # Ray Train run name; also the MLflow run key, so a resumed run finds its MLflow run
    )
    max_failures: int = 2  # FailureConfig: worker failures recovered from the last checkpoint

    def __post_init__(self):
        if self.num_workers < 1:
            raise ValueError(f"train.num_workers={self.num_workers} must be >= 1")
        _check("train.precision", self.precision, PRECISIONS)
        _check(
            "train.placement_strategy",
            self.placement_strategy,
            ("PACK", "SPREAD", "STRICT_SPREAD", "STRICT_PACK"),
        )
        if self.patience < 0 or self.time_budget_s < 0:
            raise ValueError(
                f"train.patience={self.patience} and train.time_budget_s={self.time_budget_s} must be >= 0"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"train.ema_decay={self.ema_decay} must lie in [0, 1) (0 = no weight averaging)")
        if self.max_failures < 1:
            raise ValueError("train.max_failures must be >= 1 so a killed worker resumes from its checkpoint")


@dataclass(frozen=True)
class TrackingConfig:
    """Where a run is tracked in MLflow; changes nothing about what it trains."""

    uri: str = ""  # MLflow URI; "" = $MLFLOW_TRACKING_URI; "none" = no tracking
    experiment: str = "landmix"  # MLflow experiment name
    parent_run_id: str = ""  # MLflow parent run (a sweep's); "" = a top-level run
    run_label: str = ""  # MLflow run name; "" = train.name
    strategy_label: str = (
        ""  # MLflow tag landmix.strategy; "" = data.strategy (a sweep says "pretrain_finetune")
    )


@dataclass(frozen=True)
class RunSpec:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self):
        d = self.data
        if d.strategy != "synthetic_only" and not d.real_shards:
            raise ValueError(
                f"data.strategy={d.strategy!r} needs data.real_shards (a `landmix prepare` folder)"
            )
        if d.strategy in ("synthetic_only", "mixed", "pretrain_finetune") and not d.synthetic_shards:
            raise ValueError(f"data.strategy={d.strategy!r} needs data.synthetic_shards")
        if d.strategy == "pretrain_finetune" and not 0 < d.pretrain_epochs < self.train.epochs:
            raise ValueError(
                "data.pretrain_epochs must lie in (0, train.epochs) for strategy 'pretrain_finetune'"
            )


def to_dict(spec: RunSpec) -> dict:
    """The nested dict that crosses Ray's edge (train_loop_config, MLflow params)."""
    return asdict(spec)


# Fields that moved from train to tracking: a checkpoint's meta.json written before the move still loads.
_MOVED_TO_TRACKING = {
    "tracking_uri": "uri",
    "experiment": "experiment",
    "parent_run_id": "parent_run_id",
    "run_label": "run_label",
    "strategy_label": "strategy_label",
}


def from_dict(d: dict) -> RunSpec:
    train, data = dict(d["train"]), dict(d["data"])
    tracking = {new: train.pop(old) for old, new in _MOVED_TO_TRACKING.items() if old in train}
    tracking |= d.get("tracking", {})
    if "tracking" not in d and data.get("n_real") == 0 and data.get("strategy") != "synthetic_only":
        data["n_real"] = ALL_REAL  # written when 0 meant "all"
    return RunSpec(
        model=ModelConfig(**d["model"]),
        data=DataConfig(**data),
        train=TrainConfig(**train),
        tracking=TrackingConfig(**tracking),
    )


def flat_params(spec: RunSpec) -> dict[str, object]:
    """`section.field -> value`, the shape mlflow.log_params wants. A selection's picked ids are logged as
    their count and a hash (hundreds of ids overflow an MLflow parameter; the run's faces.json lists them)."""
    out = {f"{sec}.{k}": v for sec, sub in to_dict(spec).items() for k, v in sub.items()}
    if faces := spec.data.real_faces:
        out["data.real_faces"] = (
            f"{len(faces)} ids, sha1 {hashlib.sha1(chr(10).join(faces).encode()).hexdigest()[:12]}"
        )
    return out


def shard_size(model: ModelConfig) -> int:
    """Side in pixels of the prepared real crops a model needs: real faces are prepared at their images' own
    framing (2x the landmark box for the shared 300-W crops), and training cuts a context crop of
    1.5 x crop_scale x the box at 1.5 x image_size pixels out of them without upsampling (landmix.crops)."""
    return -(-int(2.0 * model.image_size / model.crop_scale) // 32) * 32


def prepared_real(work: Path, crop_size: int) -> Path:
    """The folder of the real faces prepared at `crop_size` px under a work folder (`landmix.inputs.build_real`
    writes its shards/ and crop_distribution.json there; the presets read them from there)."""
    return Path(work) / "prepared" / f"real-{crop_size}"
