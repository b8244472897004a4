"""The fixed split of real faces (landmix.sources.split) and the faces of one part of it (sources.faces)."""

import numpy as np
import pytest

from landmix.config import DataConfig
from landmix.sources.faces import face_id, split_faces
from landmix.sources.split import photo_of, rank_key, real_split

# Several faces per photo, as in 300-W ("<photo>_<n>").
IDS = [f"afw/{i // 2:04d}_{i % 2 + 1}" for i in range(600)] + [
    f"helen/trainset/{i:04d}_1" for i in range(607)
]


def test_real_split_is_fixed_disjoint_and_order_free():
    split = real_split(IDS, DataConfig())
    train, val, test = split
    assert len(test) == round(0.2 * len(IDS)) == 241 and len(train) + len(val) + len(test) == len(IDS)
    assert len(val) >= round(0.1 * (len(IDS) - 241)) and len(val) <= round(0.1 * (len(IDS) - 241)) + 1
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    assert real_split(list(reversed(IDS)), DataConfig()) == split
    assert real_split(IDS, DataConfig(split_seed=1)).val != val
    with pytest.raises(ValueError, match="unique"):
        real_split(IDS + IDS[:1], DataConfig())


def test_validation_takes_whole_photos_and_the_test_faces_stay_the_old_ones():
    train, val, test = real_split(IDS, DataConfig())
    assert photo_of("afw/0007_2") == "afw/0007" and photo_of("takeo") == "takeo"
    val_photos = {photo_of(i) for i in val}
    assert not val_photos & {photo_of(i) for i in train}  # no photo in both validation and training
    # The 241 test faces are the faces the study always held out (drawn face by face, the same hash).
    old = sorted(sorted(IDS, key=lambda i: rank_key(0, "split", i))[:241])
    assert test == old


def test_the_split_reads_its_fractions_and_seed_from_the_data_config():
    """No call site falls back on default fractions: the run's DataConfig is the one source of the split."""
    default, wider = (
        real_split(IDS, DataConfig()),
        real_split(IDS, DataConfig(test_fraction=0.3, val_fraction=0.2)),
    )
    assert len(wider.test) == round(0.3 * len(IDS)) and len(wider.test) != len(default.test)
    assert len(wider.val) >= round(0.2 * (len(IDS) - len(wider.test)))
    with pytest.raises(TypeError):
        real_split(IDS)  # type: ignore[call-arg]


def test_split_faces_keeps_one_part_of_the_same_split():
    faces = [(f"{i}.jpg", np.zeros((68, 2), np.float32)) for i in IDS]
    data = DataConfig(split_seed=3)
    test = split_faces(faces, "test", data)
    assert [face_id(rel) for rel, _ in test] == real_split(IDS, data).test
    assert split_faces(faces, "all", data) == faces
    with pytest.raises(ValueError, match="holdout"):
        split_faces(faces, "holdout", data)


def test_withheld_faces_are_in_no_part_and_the_rest_still_split():
    """An audit's judged fold: withheld faces are never trained on, validated or tested with."""
    fold = IDS[::5]
    train, val, test = real_split(IDS, DataConfig(withheld=tuple(fold)))
    assert not set(fold) & (set(train) | set(val) | set(test))
    assert len(train) + len(val) + len(test) == len(IDS) - len(fold)
    assert len(test) == round(0.2 * (len(IDS) - len(fold)))
    # a DataConfig read back from JSON (lists) withholds the same faces
    assert real_split(IDS, DataConfig(withheld=list(fold))) == (train, val, test)
