"""The prepare job on a real Ray cluster: shards in SHARD_SCHEMA, quarantine, idempotence, determinism."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from _fixtures import real_rows, synthetic_rows, write_manifest
from landmix import crops, pool, prepare, presets, trainer, translate
from landmix.config import DataConfig
from landmix.schemes import IBUG68, SYNTH70
from landmix.sources.split import real_split


def _manifests(shared_data, tmp_path):
    real = real_rows(shared_data, 16)
    syn = synthetic_rows(shared_data, 6)
    missing = dict(syn[0], id="ghost", image_path="ghost.png")
    nan = dict(syn[1], id="nan_face", landmarks=[[float("nan"), 1.0]] + syn[1]["landmarks"][1:])
    short = dict(real[0], id="short_face", landmarks=real[0]["landmarks"][:60])
    return (
        write_manifest(real + [short], tmp_path / "real.parquet"),
        write_manifest(syn + [missing, nan], tmp_path / "syn.parquet"),
    )


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((folder / "shards").iterdir())}


@pytest.mark.slow
def test_prepare_writes_contract_shards_quarantines_and_reruns_identically(
    ray_cluster, shared_data, tmp_path
):
    real, syn = _manifests(shared_data, tmp_path)
    out = tmp_path / "prepared"
    cfg = prepare.PrepareConfig((str(real), str(syn)), str(out), crop_size=64, rows_per_block=8)
    summary = prepare.prepare(cfg)
    assert (summary["rows_in"], summary["rows_written"], summary["quarantined"]) == (25, 22, 3)
    bad = {r["id"]: r["reason"] for r in map(json.loads, (out / "quarantine.jsonl").read_text().splitlines())}
    assert bad == {"ghost": "missing_image", "nan_face": "non_finite", "short_face": "wrong_point_count"}

    table = pq.read_table(out / "shards")
    assert table.schema.equals(prepare.SHARD_SCHEMA, check_metadata=False)
    assert sorted(table["id"].to_pylist()) == sorted(set(table["id"].to_pylist()))  # no duplicates
    rows = table.to_pylist()
    for row in rows:
        crop = cv2.imdecode(np.frombuffer(row["image"], np.uint8), cv2.IMREAD_COLOR)
        assert crop.shape == (64, 64, 3) and len(row["landmarks"]) == 136
        pts = np.reshape(row["landmarks"], (68, 2))
        assert (pts > -8).all() and (pts < 72).all()
        assert row["is_synthetic"] == (row["source"] == "facesynthetics")
        assert (row["translator_version"] != "") == row["is_synthetic"]

    # A stray file in --out and a re-run: the folder is replaced, the shards are byte-identical.
    first = _digest(out)
    (out / "shards" / "stale.parquet").write_bytes(b"old")
    prepare.prepare(cfg)
    assert _digest(out) == first

    # A shard cut off or replaced between two runs is refused with its path before anything reads it
    pool.verify_shards(str(out))
    part = sorted((out / "shards").glob("*.parquet"))[0]
    whole = part.read_bytes()
    spec = presets.preset("smoke", data={"real_shards": str(out)})
    for damaged, says in ((whole[: len(whole) // 2], "cut off"), (b"PAR1" + b"x" * 100, "cut off")):
        part.write_bytes(damaged)
        for read in (lambda: pool.verify_shards(str(out)), lambda: trainer.build_trainer(spec)):
            with pytest.raises(pool.ShardError, match=f"{part.name}.*{says}.*landmix prepare again"):
                read()
    part.write_bytes(whole)
    (out / "shards" / "part-99999.parquet").write_bytes(whole)
    with pytest.raises(pool.ShardError, match="not written by it.*part-99999"):
        pool.verify_shards(str(out))
    (out / "shards" / "part-99999.parquet").unlink()
    pool.verify_shards(str(out))

    # Shards with no prepare.json (written by other means): each file's footer and columns
    (out / "prepare.json").unlink()
    pool.verify_shards(str(out))
    part.write_bytes(whole[:-100])
    with pytest.raises(pool.ShardError, match=f"{part.name}: not a Parquet file pyarrow can read"):
        pool.verify_shards(str(out))


def test_prepare_row_translates_and_crops_from_the_distribution(shared_data, tmp_path):
    (syn,) = synthetic_rows(shared_data, 1)
    (real,) = real_rows(shared_data, 1)
    dist = crops.CropDistribution(mean=(np.log(1.7), 0.05, -0.02), cov=(1e-6, 0, 0, 0, 1e-6, 0, 0, 0, 1e-6))
    x = np.asarray(syn["landmarks"], np.float64)[None]
    tr = translate.fit(
        x.repeat(8, 0) + np.random.default_rng(0).normal(0, 1, (8, 70, 2)), x[:, :68].repeat(8, 0) + 3.0
    )
    row = prepare.prepare_row(syn, dist, tr, 128, seed=0)
    assert row["translator_version"] == tr.version and row["is_synthetic"]
    box = np.array([row["crop_box"]])
    stats = crops.box_stats(tr(x).astype(np.float64), box)[0]
    np.testing.assert_allclose(stats[:3], [1.7, 0.05, -0.02], atol=0.02)
    expected = crops.crop_image(np.zeros((512, 512, 3), np.uint8), tr(x[0]), box[0], 128)[1]
    np.testing.assert_allclose(np.reshape(row["landmarks"], (68, 2)), expected, atol=1e-4)

    row = prepare.prepare_row(real, dist, tr, 128, seed=0)
    assert row["translator_version"] == "" and not row["is_synthetic"]
    stats = crops.box_stats(np.asarray(real["landmarks"], np.float64)[None], np.array([row["crop_box"]]))[0]
    np.testing.assert_allclose(stats[:3], [1.7, 0.0, 0.0], atol=0.02)


def test_crop_distribution_is_fitted_on_real_rows_only(shared_data, tmp_path):
    real, syn = _manifests(shared_data, tmp_path)
    cfg = prepare.PrepareConfig((str(real), str(syn)), str(tmp_path / "o"))
    tables = [pq.read_table(real), pq.read_table(syn)]  # with a short and a NaN row: both left out
    dist = prepare.crop_distribution(replace(cfg, crop_fit="all"), tables)
    assert dist.n == 16 and dist.canonical_scale == pytest.approx(2.0, abs=0.01)


def test_crop_distribution_sees_no_validation_or_test_face(shared_data, tmp_path):
    """A real-fitted asset the pretraining depends on: by default the crops are fitted on the training pool of
    the default split only, the faces a run with `DataConfig()` trains on."""
    real, syn = _manifests(shared_data, tmp_path)
    tables = [pq.read_table(real), pq.read_table(syn)]
    ids, pts = tables[0]["id"].to_pylist(), tables[0]["landmarks"].to_pylist()
    good = [i for i, p in zip(ids, pts) if p and len(p) == 68 and np.isfinite(np.asarray(p, float)).all()]
    split = real_split(good, DataConfig())
    fitted = prepare.crop_fit_ids(good, "train")
    assert fitted == set(split.train) and not fitted & set(split.val + split.test)
    dist = prepare.crop_distribution(
        prepare.PrepareConfig((str(real), str(syn)), str(tmp_path / "o")), tables
    )
    assert dist.n == len(split.train) < 16


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="crop_size"):
        prepare.PrepareConfig(("m.parquet",), "out", crop_size=4)
    with pytest.raises(ValueError, match="at least one manifest"):
        prepare.PrepareConfig((), "out")
    assert SYNTH70.num_points == 70 and IBUG68.num_points == 68


def test_prepare_does_not_import_the_generator():
    """The generator's marker file name lives with the FaceSynthetics layout (sources.facesynthetics), so
    the prepare pipeline stands below the generator."""
    import subprocess
    import sys

    code = "import sys, landmix.prepare; print([m for m in sys.modules if m.startswith('landmix.generate')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
