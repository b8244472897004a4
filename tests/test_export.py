"""`landmix export`: every head's graph against PyTorch on real faces, the dynamic batch axis, the metadata
read back, the flip inside the graph, the registry route, and the errors a user can cause."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import numpy as np
import onnx
import pytest
import torch

from landmix import checkpoint, cli, config, detect, export, presets, registry, tracking
from landmix.models import create_model
from landmix.schemes import IBUG68

SIZE = 64


def _checkpoint(folder, head: str, seed: int = 0):
    """A checkpoint folder of a tiny random-weight model of `head` (its weights perturbed, so the zero-initialised
    regression heads do not answer the crop centre for every face)."""
    spec = presets.smoke()
    spec = config.RunSpec(
        model=config.ModelConfig(head=head, width=8, image_size=SIZE, crop_scale=1.25),
        data=spec.data,
        train=spec.train,
    )
    torch.manual_seed(seed)
    model = create_model(spec.model)
    with torch.no_grad():
        for name, p in model.named_parameters():  # the heads more: their outputs then vary with the face
            p.add_(torch.randn_like(p) * (0.5 if name.startswith(("head.", "simcc_")) else 0.05))
    folder.mkdir(parents=True)
    checkpoint.save(str(folder), model.state_dict(), {"model": model.state_dict()}, spec, epoch=3)
    return folder


def _export(folder, out, flip: bool = False):
    model, meta = checkpoint.load(folder)
    metadata = export.contract(model, meta, folder, str(folder), detect.BoxCalibration.load(), flip)
    return model, meta, export.export(model, out, metadata, flip=flip)


@pytest.fixture(scope="module", params=config.HEADS)
def exported(request, tmp_path_factory):
    """(model, meta, onnx path) of each head, exported once for the module."""
    tmp = tmp_path_factory.mktemp(request.param)
    return _export(_checkpoint(tmp / "checkpoint", request.param), tmp / "model.onnx")


def _crops(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def test_every_head_matches_pytorch_on_real_faces(exported, shared_data):
    model, meta, path = exported
    faces = export.real_crops(meta, SIZE, model.cfg.crop_scale, limit=24)
    result = export.parity(model, path, faces)
    assert result["faces"] == 24
    assert result["max_px"] <= export.PARITY_TOLERANCE_PX == 0.05, (model.cfg.head, result)
    spread = checkpoint.predict(model, faces, flip=False).std(0).mean()  # the points move from face to face
    assert spread > 4 * export.PARITY_TOLERANCE_PX, (model.cfg.head, spread)


def test_batch_axis_is_dynamic(exported):
    model, _, path = exported
    dim = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param and not dim.dim_value  # a symbol, not a fixed size
    sess, crops = export.session(path), _crops(3)
    three = export.onnx_predict(sess, crops)
    one = export.onnx_predict(sess, crops[:1])
    assert three.shape == (3, IBUG68.num_points, 2) and one.shape == (1, IBUG68.num_points, 2)
    ref = checkpoint.predict(model, crops, flip=False)
    assert np.abs(three - ref).max() <= export.PARITY_TOLERANCE_PX
    assert np.abs(one[0] - three[0]).max() <= 1e-3  # a face's points do not depend on its batch


def test_parity_fails_on_other_weights(exported, tmp_path):
    """The check can fail: the file against a model of other weights differs by far more than the tolerance."""
    model, _, path = exported
    other, _ = checkpoint.load(_checkpoint(tmp_path / "other", model.cfg.head, seed=1))
    result = export.parity(other, path, _crops(4))
    assert not result["ok"] and result["max_px"] > 10 * export.PARITY_TOLERANCE_PX, result


def test_metadata_round_trips(exported):
    _, meta, path = exported
    folder = path.parent / "checkpoint"
    got = export.read_contract(path)
    cfg = checkpoint.model_config(meta)
    assert got["input_size"] == cfg.image_size == SIZE and got["crop_scale"] == cfg.crop_scale == 1.25
    assert (got["head"], got["backbone"]) == (cfg.head, cfg.backbone)
    assert (got["input_name"], got["output_name"]) == ("images", "points")
    assert (got["input_dtype"], got["input_layout"], got["input_channels"]) == ("float32", "NCHW", "RGB")
    assert got["input_scale"] == 1 / 255 and got["input_mean"] == [0, 0, 0] and got["input_std"] == [1, 1, 1]
    assert got["scheme"] == IBUG68.name and got["num_points"] == cfg.num_points == IBUG68.num_points
    assert got["flip_perm"] == list(IBUG68.flip_perm) and got["flip_in_graph"] is False
    assert got["detector_calibration"] == json.loads(json.dumps(asdict(detect.BoxCalibration.load())))
    assert got["checkpoint_sha256"] == hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()
    assert got["checkpoint_epoch"] == 3 and got["landmix_version"]
    assert set(got) == {p.key for p in onnx.load(str(path)).metadata_props}


def test_flip_in_the_graph_matches_predict_with_flip(tmp_path):
    # a cheap export: the mirror pass and its average do not depend on the head
    folder = _checkpoint(tmp_path / "checkpoint", "flat_regression")
    model, _, path = _export(folder, tmp_path / "model.onnx", flip=True)
    assert export.read_contract(path)["flip_in_graph"] is True
    crops = _crops(3)
    result = export.parity(model, path, crops, flip=True)
    assert result["ok"], result
    single = checkpoint.predict(model, crops, flip=False)
    assert np.abs(export.onnx_predict(export.session(path), crops) - single).max() > 0.1  # it did average


def test_command_writes_the_file_and_reports_parity(checkpoint, tmp_path, capsys, shared_data):
    out = tmp_path / "m.onnx"
    assert (
        cli.main(["export", "--checkpoint", str(checkpoint), "--out", str(out), "--parity-faces", "8"]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["out"] == str(out.resolve()) and result["parity"]["faces"] == 8 and result["parity"]["ok"]
    assert export.read_contract(out)["checkpoint"] == str(checkpoint)


def test_a_missing_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert cli.main(["export", "--checkpoint", str(tmp_path / "nope"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("landmix export: ") and "meta.json" in err and err.count("\n") == 1
    assert not out.exists()


def test_a_registry_uri_needs_a_tracking_uri(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert cli.main(["export", "--checkpoint", "models:/x@best", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "set MLFLOW_TRACKING_URI" in capsys.readouterr().err


def test_registry_name_and_alias(monkeypatch, tmp_path, capsys):
    """models:/NAME@ALIAS through a real SQLite registry: the registered folder exports; a wrong alias or
    name says so in one line."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    folder = _checkpoint(tmp_path / "checkpoint", "regression")
    run = tracking.Tracker(uri, "landmix-export", run_key="export", run_name="export")
    run.log_checkpoint(str(folder))
    run.finish()
    registry.register_model(uri, "landmix-export-test", run.run_id)
    got = registry.checkpoint_folder("models:/landmix-export-test@best", tmp_path / "download")
    assert (got / "model.pt").read_bytes() == (folder / "model.pt").read_bytes()
    for wrong in ("models:/landmix-export-test@nope", "models:/no-such-model@best"):
        assert cli.main(["export", "--checkpoint", wrong, "--out", str(tmp_path / "m.onnx")]) == 2
        err = capsys.readouterr().err.splitlines()[-1]  # after MLflow's own log lines
        assert err.startswith(f"landmix export: {wrong}: not found in the registry"), err
