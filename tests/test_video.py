"""`landmix predict` on a video (landmix.video) and the synthetic clips it is measured on (landmix.clip)."""

import csv
import json

import cv2
import numpy as np
import pytest

from landmix import cli, clip
from landmix.generate.face3d import FaceConfig

FRAMES = 12


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "turn.avi"
    truth = clip.make_clip(path, frames=FRAMES, fps=15, size=160)
    return path, truth


def frame_count(path) -> int:
    cap, n = cv2.VideoCapture(str(path)), 0
    while cap.read()[0]:
        n += 1
    return n


def test_clip_has_its_truth_per_frame_and_moves(small_clip):
    path, truth = small_clip
    assert frame_count(path) == FRAMES
    saved = np.load(clip.truth_path(path))
    assert saved["annotator"].shape == (FRAMES, 68, 2) and saved["xray"].shape == (FRAMES, 70, 2)
    assert np.ptp(saved["yaw"]) > 5 and np.abs(np.diff(saved["annotator"], axis=0)).max() > 0.5
    rng = clip.Scripted(11, FaceConfig(), (20.0, -5.0, 3.0), 0.9, 0.5, np.zeros(2))
    assert rng.normal(0.0, 30.0) == 20.0 and rng.normal(0, 4) != 4  # the pose answered, the rest drawn


def test_every_frame_is_a_csv_row_and_a_frame_of_the_annotated_video(
    small_clip, checkpoint, tmp_path, capsys
):
    path, _ = small_clip
    out = tmp_path / "out"
    args = ["predict", "--checkpoint", str(checkpoint), str(path), "--out", str(out), "--beta", "0.5"]
    assert cli.main(args) == 0
    rows = list(csv.DictReader(open(out / "turn_landmarks.csv")))
    assert [int(r["frame"]) for r in rows] == list(range(FRAMES))
    assert {r["status"] for r in rows} <= {"detected", "tracked", "no_face"}
    assert all(r["x0"] and r["sy67"] for r in rows if r["status"] != "no_face")
    assert frame_count(out / "turn_landmarks.mp4") == FRAMES
    meta = json.loads((out / "turn_landmarks.json").read_text())
    assert meta["filter"]["beta"] == 0.5 and sum(meta["counts"].values()) == FRAMES
    assert f"{FRAMES} frames" in capsys.readouterr().out


def test_a_bad_video_says_what_to_do(checkpoint, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    assert cli.main(["predict", "--checkpoint", str(checkpoint), str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "broken.mp4: OpenCV cannot open this video" in err and len(err.strip().splitlines()) == 1
