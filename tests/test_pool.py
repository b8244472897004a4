"""Prepared shards: where they lie and what they were made from (provenance)."""

from landmix import pool


def test_provenance_names_the_generators_behind_the_shards(tmp_path):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    shards = tmp_path / "prepared" / "shards"
    shards.mkdir(parents=True)
    pq.write_table(pa.table({"translator_version": ["ridge-1", ""]}), shards / "part-00000.parquet")
    gens = {"/data/gen-a": {"version": "gaaaaaaaaaa", "look": []}, "/data/gen-b": {"version": "gbbbbbbbbbb"}}
    (tmp_path / "prepared" / "prepare.json").write_text(json.dumps({"generators": gens}))
    prov = pool.provenance({"synthetic": str(tmp_path / "prepared"), "real": ""})
    assert set(prov) == {"synthetic"}
    assert prov["synthetic"]["folder"] == str(shards.resolve())  # the Parquet folder, as training finds it
    assert pool.provenance({"synthetic": str(shards)}) == prov  # named by its shards/ folder: the same record
    assert prov["synthetic"]["generator_versions"] == ["gaaaaaaaaaa", "gbbbbbbbbbb"]
    assert prov["synthetic"]["translator_versions"] == ["ridge-1"]
    (tmp_path / "prepared" / "prepare.json").write_text("{}")  # shards prepared before generator.json existed
    assert pool.provenance({"synthetic": str(tmp_path / "prepared")})["synthetic"]["generator_versions"] == []
