"""Real/synthetic mixing with exact meanings, shared by training and the sweep.

- the fixed split of the real faces (test, validation, training pool) is `landmix.sources.split.real_split`,
  read with the run's `DataConfig`; every run's real training faces come from its training pool.
- `n_real`: the number of distinct real training faces, a PREFIX of one seeded order of the training pool
  (`real_subset`), so the 10 faces of n_real=10 are inside the 50 of n_real=50, inside the 250.
- `alpha`: the fraction of synthetic samples in EACH batch: round(alpha * batch) synthetic, the rest real.
- `samples_per_epoch`: fixed for every trial, so epochs of different mixes cost the same.
- strategies: real_only (alpha 0), synthetic_only (alpha 1, labels translated upstream), mixed (alpha),
  pretrain_finetune (alpha 1 for `pretrain_epochs`, then 0 on the n_real faces; `init_checkpoint` lets a
  sweep fine-tune many runs from one pretraining).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from landmix.config import ALL_REAL
from landmix.sources.split import RealSplit, real_order


def real_subset(train_ids: Sequence[str], n_real: int, seed: int) -> list[str]:
    """The first n_real faces of `real_order`: all of them for `config.ALL_REAL` (-1), none for 0."""
    order = real_order(train_ids, seed)
    if n_real > len(order) or n_real < ALL_REAL:
        raise ValueError(
            f"data.n_real={n_real} but the real training pool holds {len(order)} faces "
            f"(after the test and validation faces are held out); use {ALL_REAL} for all of them"
        )
    return order if n_real == ALL_REAL else order[:n_real]


def picked(split: RealSplit, data) -> list[str]:
    """The real faces a run trains on (data: a config.DataConfig): the first n_real of the seeded order, or
    the faces a selection method picked (data.real_faces), which must all lie in the training pool."""
    if not data.real_faces:
        return real_subset(split.train, data.n_real, data.split_seed)
    pool = set(split.train)
    outside = [i for i in data.real_faces if i not in pool]
    if outside:
        raise ValueError(
            f"{len(outside)} of data.real_faces are not in the real training pool (e.g. "
            f"{outside[:3]}): picks come from the training pool, never the validation or test faces"
        )
    return list(data.real_faces)


def synthetic_fraction(strategy: str, alpha: float, epoch: int, pretrain_epochs: int = 0) -> float:
    """Fraction of synthetic samples per batch at `epoch` (0-based) under `strategy`."""
    if strategy == "real_only":
        return 0.0
    if strategy == "synthetic_only":
        return 1.0
    if strategy == "mixed":
        return float(alpha)
    if strategy == "pretrain_finetune":
        return 1.0 if epoch < pretrain_epochs else 0.0
    raise ValueError(
        f"unknown strategy {strategy!r}; choose real_only, synthetic_only, mixed, pretrain_finetune"
    )


def steps_per_epoch(samples_per_epoch: int, batch_size: int, world_size: int) -> int:
    """Identical on every rank (DDP's all-reduce hangs when ranks run different step counts)."""
    return max(1, samples_per_epoch // (batch_size * world_size))


def epoch_batches(
    n_real: int, n_syn: int, frac: float, batch_size: int, steps: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One epoch of one rank: `steps` pairs (real indices, synthetic indices) into the rank's pools.

    Each batch holds exactly round(frac * batch_size) synthetic samples. Indices walk a seeded
    permutation of each pool, reshuffled whenever it runs out, so every face is seen before any repeats.
    """
    n_s = int(round(frac * batch_size))
    n_r = batch_size - n_s
    if n_r and not n_real:
        raise ValueError("this epoch needs real faces but the real pool is empty (check data.real_shards)")
    if n_s and not n_syn:
        raise ValueError(
            "this epoch needs synthetic faces but the pool is empty (check data.synthetic_shards)"
        )
    rng = np.random.default_rng(seed)
    real = _stream(rng, n_real, n_r * steps)
    syn = _stream(rng, n_syn, n_s * steps)
    return [(real[i * n_r : (i + 1) * n_r], syn[i * n_s : (i + 1) * n_s]) for i in range(steps)]


def _stream(rng: np.random.Generator, n: int, count: int) -> np.ndarray:
    if count == 0 or n == 0:
        return np.zeros(0, np.int64)
    reps = -(-count // n)
    return np.concatenate([rng.permutation(n) for _ in range(reps)])[:count]


def rank_slice(n: int, rank: int, world_size: int) -> np.ndarray:
    """Indices of a pool this rank owns: a stride over the pool, or the whole pool when it is too small
    to give every rank a face (a 10-face real set is shared, a 100k synthetic set is split)."""
    if n < world_size * 8:
        return np.arange(n)
    return np.arange(rank, n, world_size)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """Seed of one rank's sampling and augmentation in one epoch (different per rank and epoch)."""
    return int(seed) * 1_000_003 + epoch * 1009 + rank
