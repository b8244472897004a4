"""Run configs: presets that round-trip through dicts, checks that name the field, where presets find inputs."""

import json

import pytest

from landmix import config as C
from landmix import presets, settings


def test_presets_are_valid_and_round_trip_through_dicts():
    for name, make in presets.PRESETS.items():
        spec = make()
        assert C.from_dict(json.loads(json.dumps(C.to_dict(spec)))) == spec, name
    assert (
        presets.gpu().model.backbone == "resnet50"
        and presets.gpu().model.image_size == 256
        and presets.gpu().train.use_gpu
    )
    assert "model.head" in C.flat_params(presets.smoke())
    # A checkpoint's config written before tracking had its own section, when n_real 0 meant "all", still loads.
    old = C.to_dict(presets.smoke())
    tracking = old.pop("tracking")
    old["train"] |= {
        "tracking_uri": "none",
        "experiment": "x",
        "parent_run_id": "",
        "run_label": "",
        "strategy_label": "",
    }
    old["data"]["n_real"] = 0
    back = C.from_dict(old)
    assert back.tracking == C.TrackingConfig(**{**tracking, "uri": "none", "experiment": "x"})
    assert back.data.n_real == C.ALL_REAL


def test_bad_configs_name_the_field_and_the_choices():
    with pytest.raises(ValueError, match=r"model.head='hm'.*soft_argmax"):
        C.ModelConfig(head="hm")
    with pytest.raises(ValueError, match="crop_scale"):
        C.ModelConfig(crop_scale=0.5)
    with pytest.raises(ValueError, match="patience"):
        C.TrainConfig(patience=-1)
    with pytest.raises(ValueError, match="data.alpha"):
        C.DataConfig(alpha=1.5)
    with pytest.raises(ValueError, match="synthetic_shards"):
        presets.preset("smoke", data={"strategy": "mixed"})
    with pytest.raises(ValueError, match="max_failures"):
        C.TrainConfig(max_failures=0)
    with pytest.raises(ValueError, match=r"train.precision='fp16'.*bf16"):
        C.TrainConfig(precision="fp16")
    with pytest.raises(ValueError, match=r"train.ema_decay=1.0 must lie in \[0, 1\)"):
        C.TrainConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="unknown preset"):
        presets.preset("large")


def test_presets_find_their_inputs_where_the_build_writes_them():
    spec = presets.real_baseline()
    assert spec.data.real_shards.endswith(f"out/prepared/real-{C.shard_size(spec.model)}/shards")
    assert spec.data.real_shards == str(
        C.prepared_real(settings.work_dir(), C.shard_size(spec.model)) / "shards"
    )
    assert C.shard_size(C.ModelConfig(image_size=96, crop_scale=1.25)) == 160
    assert spec.model.crop_scale == 1.25 and presets.gpu().model.head == spec.model.head
