"""The fixed split of labelled real faces: test, validation and training pool, and the n_real order.

- `real_split(ids, data)`: test (`data.test_fraction` of all faces, drawn face by face, for reporting only:
  no run trains on them or selects with them), validation (`data.val_fraction` of the rest, whole source
  photos: early stopping, model selection, Tune's metric) and the training pool (the rest, in the n_real
  order). Hash-ordered, so it does not depend on the order files were listed in: the same ids always land
  in the same part. Faces in `data.withheld` are in no part (the fold an audit judges). `data` is the run's
  `config.DataConfig`: there are no default fractions to fall back on.
- `real_order(train_ids, seed)`: the one seeded order of the training pool whose prefixes are the n_real
  subsets, so the 10 faces of n_real=10 are inside the 50 of n_real=50.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple, Protocol


class SplitSpec(Protocol):
    """The fields of `config.DataConfig` that fix the split (read, never defaulted here)."""

    split_seed: int  # seed of the split and of the n_real order
    test_fraction: float  # share of all faces held out for reporting
    val_fraction: float  # share of the rest (whole photos) used for validation
    withheld: tuple[str, ...]  # faces no part holds (an audit's judged fold)


class RealSplit(NamedTuple):
    train: list[str]  # the training pool, in the n_real order
    val: list[str]  # validation faces (sorted): whole source photos, none of them in train
    test: list[str]  # held-out test faces (sorted), for reporting only


def rank_key(seed: int, salt: str, id_: str) -> str:
    """A face's (or photo's) place in one seeded, salted hash order."""
    return hashlib.sha1(f"{salt}:{seed}:{id_}".encode()).hexdigest()


def photo_of(id_: str) -> str:
    """The source photo of a face id: 300-W names faces of one photo `<photo>_<n>` ("helen/trainset/123_2")."""
    stem, _, n = id_.rpartition("_")
    return stem if stem and n.isdigit() else id_


def real_split(ids: Sequence[str], data: SplitSpec) -> RealSplit:
    """The fixed split of real faces under `data` (a `config.DataConfig`): round(test_fraction * N) test
    faces, then whole photos drawn as validation until they hold round(val_fraction * rest) faces; the
    training pool is the rest, in the n_real order."""
    seed = data.split_seed
    uniq = sorted(set(ids))
    if len(uniq) != len(ids):
        raise ValueError("real_split: ids must be unique (check the shards for duplicated faces)")
    withheld = set(data.withheld)
    uniq = [i for i in uniq if i not in withheld]
    by_split = sorted(uniq, key=lambda i: rank_key(seed, "split", i))
    n_test = int(round(data.test_fraction * len(uniq)))
    test, rest = by_split[:n_test], by_split[n_test:]
    photos: dict[str, list[str]] = {}
    for i in rest:
        photos.setdefault(photo_of(i), []).append(i)
    want, val = int(round(data.val_fraction * len(rest))), []
    for photo in sorted(photos, key=lambda p: rank_key(seed, "val", p)):
        if len(val) >= want:
            break
        val += photos[photo]
    held = set(val)
    return RealSplit(real_order([i for i in rest if i not in held], seed), sorted(val), sorted(test))


def real_order(train_ids: Sequence[str], seed: int) -> list[str]:
    """The one seeded order of the real training pool whose prefixes are the n_real subsets."""
    return sorted(train_ids, key=lambda i: rank_key(seed, "order", i))
