"""The synthetic pretraining and its presets at the smoke size, on a real Ray cluster and a real MLflow server:
`landmix train --preset synthetic` (generated faces, one re-labelling round, the synthetic-only model, registered
as landmix-synthetic@best), `--preset pretrained` (reuses it, fine-tunes from it) and `--init` (a folder and a
registered model give the same weights; a moved alias is what it then loads; wrong starts refused in one line).
Each real-fitted asset the pretraining depends on is checked to have seen training-pool faces only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from landmix import checkpoint, cli, presets, registry, train_command
from landmix.config import DataConfig
from landmix.sources.faces import face_id
from landmix.sources.split import real_split

pytestmark = pytest.mark.slow


def small_300w(shared: Path, out: Path, n: int = 60) -> Path:
    """A 300-W-layout folder of n shared faces (symlinks), half AFW, half HELEN."""
    root = shared / "300w"
    pts = sorted(root.glob("afw/*.pts"))[: n // 2] + sorted(root.glob("helen/trainset/*.pts"))[: n - n // 2]
    for p in pts:
        for f in (p, p.with_suffix(".jpg")):
            dst = out / f.relative_to(root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(f)
    return out


def weights(folder) -> dict:
    return torch.load(Path(folder, checkpoint.MODEL_FILE), map_location="cpu", weights_only=True)["model"]


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def built(ray_cluster, mlflow_tracking, shared_data, tmp_path_factory):
    """`landmix train --preset synthetic --smoke-test`, then `--preset pretrained --smoke-test`, in one work folder."""
    base = tmp_path_factory.mktemp("pretraining")
    real = small_300w(shared_data, base / "300w")
    env = {
        "LANDMIX_WORK": str(base / "work"),
        "LANDMIX_STORAGE_PATH": str(base / "runs"),
        "MLFLOW_TRACKING_URI": mlflow_tracking,
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        smoke = ["--smoke-test", "--real-root", str(real)]
        rc_synthetic = cli.main(["train", "--preset", "synthetic", *smoke, "--out", str(base / "synthetic")])
        rc_pretrained = cli.main(
            ["train", "--preset", "pretrained", *smoke, "--out", str(base / "pretrained")]
        )
        yield {"base": base, "real": real, "env": env, "rc": (rc_synthetic, rc_pretrained)}


def test_synthetic_then_pretrained_presets_build_once_and_fine_tune_from_it(built):
    base = built["base"]
    assert built["rc"] == (0, 0)
    markers = sorted((base / "work" / "pretraining").glob("*/pretraining.json"))
    # one round's model, then the final one on the round's labels; the pretrained preset trained none of its own
    assert [m.parent.name.rsplit("-", 1)[0] for m in markers] == ["synthetic-round0", "synthetic-round1"]
    final = json.loads(markers[1].read_text())
    assert final["registered"]["name"] == "landmix-synthetic" and final["registered"]["version"] == 1
    # --out holds the pretraining's weights; the fine-tune started from them, and moved off them
    assert same(weights(base / "synthetic" / "checkpoint"), weights(final["checkpoint"]))
    tuned = checkpoint.read_meta(base / "pretrained" / "checkpoint")["config"]["train"]
    assert tuned["init_checkpoint"] == str(Path(final["checkpoint"]).resolve())
    assert not same(weights(base / "pretrained" / "checkpoint"), weights(final["checkpoint"]))


def test_every_real_fitted_asset_saw_training_pool_faces_only(built):
    """The translator stage and the crop distribution were fitted on the training pool of the split the runs
    use; no validation or test face."""
    work = built["base"] / "work"
    ids = sorted(
        face_id(p.relative_to(built["real"]).with_suffix(".jpg").as_posix())
        for p in built["real"].rglob("*.pts")
    )
    split = real_split(ids, DataConfig())
    held_out = set(split.val) | set(split.test)
    reports = sorted((work / "translators").glob("relabel-*.json"))
    assert reports, "no re-labelling round's report"
    for report in reports:
        fitted = set(json.loads(report.read_text())["fit_ids"])
        assert fitted and fitted <= set(split.train) and not fitted & held_out
    (crops_json,) = (work / "prepared").glob("real-*/crop_distribution.json")
    assert json.loads(crops_json.read_text())["n"] == len(split.train) < len(ids)


def test_init_from_a_registered_model_and_from_its_folder_give_the_same_weights(built):
    spec = presets.smoke_sized(presets.real_baseline())
    folder = built["base"] / "synthetic" / "checkpoint"
    by_folder = train_command.with_init(spec, str(folder)).train.init_checkpoint
    by_name = train_command.with_init(spec, "models:/landmix-synthetic@best").train.init_checkpoint
    assert by_name != by_folder and same(weights(by_name), weights(by_folder))

    # the alias moved to another version is what --init then loads: register the fine-tune as version 2
    tuned = built["base"] / "pretrained" / "checkpoint"
    run_id = checkpoint.read_meta(tuned)["mlflow_run_id"]
    moved = registry.register_model(built["env"]["MLFLOW_TRACKING_URI"], "landmix-synthetic", run_id)
    assert moved["version"] == 2
    again = train_command.with_init(spec, "models:/landmix-synthetic@best").train.init_checkpoint
    assert same(weights(again), weights(tuned)) and not same(weights(again), weights(by_folder))


@pytest.mark.parametrize(
    "init, says",
    [
        ("/no/such/checkpoint", "is not a landmix checkpoint folder"),
        ("models:/landmix-nothing@best", "not found in the registry"),
        ("models:/landmix-synthetic@nope", "not found in the registry"),
        ("WIDE", "is not the one this run builds"),
        ("SYNTHETIC", "starts from random weights"),
    ],
)
def test_a_wrong_start_is_refused_in_one_line_before_training(built, capsys, init, says):
    synthetic = str(built["base"] / "synthetic" / "checkpoint")
    argv = {
        "SYNTHETIC": [
            "train",
            "--preset",
            "synthetic",
            "--init",
            synthetic,
        ],  # the pretraining takes no start
        # a checkpoint of another network: the smoke model is 8 wide, this preset's is not
        "WIDE": ["train", "--preset", "real-baseline", "--init", synthetic],
    }.get(init, ["train", "--preset", "pretrained", "--smoke-test", "--init", init])
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "Traceback" not in err and len(err.splitlines()) == 1, err
