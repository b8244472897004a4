"""Mixing: nested n_real prefixes, exact alpha per batch, equal steps on every rank."""

import numpy as np
import pytest

from landmix import mixing
from landmix.config import ALL_REAL, DataConfig
from landmix.sources.split import real_order, real_split

# Several faces per photo, as in 300-W ("<photo>_<n>").
IDS = [f"afw/{i // 2:04d}_{i % 2 + 1}" for i in range(600)] + [
    f"helen/trainset/{i:04d}_1" for i in range(607)
]


def test_n_real_subsets_are_nested_prefixes():
    train = real_split(IDS, DataConfig()).train
    s10, s50, s250 = (set(mixing.real_subset(train, n, seed=0)) for n in (10, 50, 250))
    assert len(s10) == 10 and len(s50) == 50 and len(s250) == 250
    assert s10 < s50 < s250
    # One meaning of "all" (config.ALL_REAL) in the data config, the sweep and the translator's fit; 0 is none.
    assert (
        mixing.real_subset(train, ALL_REAL, 0) == real_order(train, 0)
        and mixing.real_subset(train, 0, 0) == []
    )
    with pytest.raises(ValueError, match="n_real=0"):
        DataConfig(real_shards="x", strategy="real_only", n_real=0)
    with pytest.raises(ValueError, match="n_real.*pool"):
        mixing.real_subset(train, 5000, 0)


def test_alpha_is_the_synthetic_share_of_every_batch():
    plan = mixing.epoch_batches(n_real=10, n_syn=100, frac=0.25, batch_size=32, steps=7, seed=3)
    assert len(plan) == 7
    for real, syn in plan:
        assert len(syn) == 8 and len(real) == 24
        assert real.max() < 10 and syn.max() < 100
    # every real face is seen before any repeats
    first = np.concatenate([r for r, _ in plan])[:10]
    assert sorted(first) == list(range(10))
    again = mixing.epoch_batches(10, 100, 0.25, 32, 7, seed=3)
    assert all((a[0] == b[0]).all() and (a[1] == b[1]).all() for a, b in zip(plan, again))


def test_empty_pools_fail_with_a_reason():
    with pytest.raises(ValueError, match="synthetic"):
        mixing.epoch_batches(10, 0, 0.5, 8, 1, 0)
    with pytest.raises(ValueError, match="real"):
        mixing.epoch_batches(0, 10, 0.5, 8, 1, 0)
    assert len(mixing.epoch_batches(0, 10, 1.0, 8, 2, 0)[0][1]) == 8


def test_strategies_and_fixed_steps():
    assert mixing.synthetic_fraction("real_only", 0.7, 0) == 0.0
    assert mixing.synthetic_fraction("synthetic_only", 0.0, 0) == 1.0
    assert mixing.synthetic_fraction("mixed", 0.3, 5) == 0.3
    assert [mixing.synthetic_fraction("pretrain_finetune", 0.3, e, pretrain_epochs=2) for e in range(4)] == [
        1.0,
        1.0,
        0.0,
        0.0,
    ]
    with pytest.raises(ValueError, match="strategy"):
        mixing.synthetic_fraction("both", 0.5, 0)
    assert mixing.steps_per_epoch(1024, 32, 2) == 16 and mixing.steps_per_epoch(10, 32, 2) == 1
    assert mixing.epoch_seed(0, 1, 0) != mixing.epoch_seed(0, 1, 1) != mixing.epoch_seed(0, 2, 1)


def test_rank_slice_shares_small_pools_and_splits_large_ones():
    assert list(mixing.rank_slice(10, 1, 2)) == list(range(10))
    a, b = mixing.rank_slice(100, 0, 2), mixing.rank_slice(100, 1, 2)
    assert len(a) == len(b) == 50 and not set(a) & set(b)


def test_a_selection_trains_on_its_picks_and_never_on_held_out_faces():
    from landmix.config import DataConfig

    ids = [f"helen/trainset/{i}_1" for i in range(100)]
    split = real_split(ids, DataConfig())
    picks = tuple(split.train[-5:])
    data = DataConfig(real_shards="/r", n_real=5, selection="coverage", real_faces=picks)
    assert mixing.picked(split, data) == list(picks)
    # random: the order
    assert mixing.picked(split, DataConfig(real_shards="/r", n_real=5)) == split.train[:5]
    leak = DataConfig(
        real_shards="/r", n_real=5, selection="coverage", real_faces=picks[:4] + (split.test[0],)
    )
    with pytest.raises(ValueError, match="not in the real training pool"):
        mixing.picked(split, leak)
    with pytest.raises(ValueError, match="exactly the n_real"):
        DataConfig(real_shards="/r", n_real=6, selection="coverage", real_faces=picks)
    with pytest.raises(ValueError, match="'random' takes the seeded order"):
        DataConfig(real_shards="/r", n_real=5, real_faces=picks)
    with pytest.raises(ValueError, match="data.selection"):
        DataConfig(real_shards="/r", n_real=5, selection="best", real_faces=picks)
    assert (
        DataConfig(real_shards="/r", n_real=5, selection="hybrid", real_faces=list(picks)).real_faces == picks
    )
