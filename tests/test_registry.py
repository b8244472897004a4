"""Model registry: a trial's checkpoint folder registered by name, the `best` alias, download by name.

Against the real MLflow server on loopback (proxied `mlflow-artifacts:` storage) and an absolute SQLite URI.
"""

from pathlib import Path

import mlflow
import pytest

from landmix import registry, tracking


def _trial(uri: str, tmp_path, key: str, weights: bytes) -> tuple[str, dict[str, bytes]]:
    """A finished trial run whose checkpoint folder (model.pt, meta.json) is logged by the Tracker."""
    files = {"model.pt": weights, "meta.json": b'{"epoch": 3}'}
    folder = tmp_path / key
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    t = tracking.Tracker(uri, "landmix-registry", run_key=key, run_name=key)
    t.log_checkpoint(str(folder))
    t.finish()
    return t.run_id, files


def _download(model_uri: str, dst) -> dict[str, bytes]:
    """The files a team gets by name, as the register_model docstring tells it (the URI set globally)."""
    folder = mlflow.artifacts.download_artifacts(model_uri, dst_path=str(dst))
    return {p.name: p.read_bytes() for p in Path(folder).iterdir()}


def _exercise(uri: str, tmp_path, monkeypatch) -> list[dict]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # what `mlflow.set_tracking_uri(uri)` does, undone after
    name = registry.registered_model_name("landmix-registry", "pretrain_finetune")
    first, files = _trial(uri, tmp_path, "trial-a", b"weights-a")
    tags = {
        "strategy": "pretrain_finetune",
        "n_real": 10,
        "val_nme": 0.041,
        "val_fr@10": 0.2,
        "shards": {"real": "ab12", "synthetic": "cd34"},
        "translator_versions": ["fixed-v1"],
    }
    v1 = registry.register_model(uri, name, first, tags=tags, description="best of 6 trials on val NME")
    assert v1 == {"name": name, "version": 1, "source": v1["source"], "run_id": first}
    assert v1["source"].endswith(f"{first}/artifacts/model")

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = client.get_model_version(name, "1")
    assert mv.run_id == first and mv.description == "best of 6 trials on val NME"
    assert mv.tags == {
        "strategy": "pretrain_finetune",
        "n_real": "10",
        "val_nme": "0.041",
        "val_fr_at_10": "0.2",
        "shards": '{"real": "ab12", "synthetic": "cd34"}',
        "translator_versions": '["fixed-v1"]',
    }
    assert int(client.get_model_version_by_alias(name, "best").version) == 1
    assert _download(f"models:/{name}@best", tmp_path / "dl1") == files

    second, files2 = _trial(uri, tmp_path, "trial-b", b"weights-b")
    v2 = registry.register_model(uri, name, second, tags={"val_nme": 0.03})
    assert v2["version"] == 2 and v2["run_id"] == second
    assert int(client.get_model_version_by_alias(name, "best").version) == 2
    assert client.get_model_version(name, "2").description == ""
    assert _download(f"models:/{name}@best", tmp_path / "dl2") == files2
    assert _download(f"models:/{name}/1", tmp_path / "dl3") == files  # the older version stays reachable
    return [v1, v2]


def test_register_against_the_server(mlflow_tracking, tmp_path, monkeypatch):
    v1, _ = _exercise(mlflow_tracking, tmp_path, monkeypatch)
    assert v1["source"].startswith("mlflow-artifacts:/")


def test_register_against_absolute_sqlite(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}"
    (tmp_path / "db").mkdir()
    v1, _ = _exercise(uri, tmp_path, monkeypatch)
    # artifacts beside the database (tracking.experiment_id), so the source is an absolute file URI
    assert v1["source"].startswith((tmp_path / "db" / "artifacts").as_uri() + "/")


def test_register_refuses_a_missing_run_or_checkpoint(mlflow_tracking, tmp_path):
    with pytest.raises(ValueError, match="pass the run id of a trial"):
        registry.register_model(mlflow_tracking, "landmix-registry.missing", "0" * 32)
    t = tracking.Tracker(mlflow_tracking, "landmix-registry", run_key="no-ckpt", run_name="no-ckpt")
    t.log_dict({"a": 1}, "provenance.json")
    t.flush()
    with pytest.raises(ValueError, match=r"no artifacts under 'model' \(it has \['provenance.json'\]\); log"):
        registry.register_model(mlflow_tracking, "landmix-registry.missing", t.run_id)
    with pytest.raises(ValueError, match="no artifacts under 'checkpoint'"):
        registry.register_model(mlflow_tracking, "landmix-registry.missing", t.run_id, "checkpoint")
    client = mlflow.MlflowClient(tracking_uri=mlflow_tracking, registry_uri=mlflow_tracking)
    assert not client.search_registered_models("name = 'landmix-registry.missing'")  # nothing half-made


def test_registered_model_name_is_valid_and_stable():
    name = registry.registered_model_name("landmix-study", "pretrain_finetune")
    assert name == "landmix-study.pretrain_finetune"
    assert registry.registered_model_name("team/study: v2", "mix@0.5") == "team-study-v2.mix-0-5"
    assert registry.registered_model_name("a b", "c") == registry.registered_model_name("a b", "c")
    with pytest.raises(ValueError, match="letter or digit"):
        registry.registered_model_name("landmix-study", "..")
