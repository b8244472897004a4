"""`landmix COMMAND`: an error the user can cause ends as one line and exit code 2, one test per command.

Every error here is triggered before a command starts Ray or MLflow, so the file runs in seconds."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from landmix import checkpoint as ckpt_io
from landmix import cli, config


def one_line(capsys, command: str, *argv: str) -> str:
    """Run `landmix command argv...` in-process; the stderr line, checked to be the only one and no traceback."""
    assert cli.main([command, *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"landmix {command}: "), err
    return lines[0]


def test_eval_nonexistent_checkpoint(capsys, tmp_path):
    line = one_line(capsys, "eval", "--checkpoint", str(tmp_path / "nope"), "--data", str(tmp_path))
    assert f"{tmp_path / 'nope'} is not a landmix checkpoint folder (no meta.json)" in line
    assert "landmix train" in line and "--traceback" in line


def test_eval_checkpoint_refused_by_the_weights_only_loader(capsys, checkpoint, tmp_path):
    torch.save({"x": object()}, checkpoint / "model.pt")  # a pickled Python object, not a state_dict
    line = one_line(capsys, "eval", "--checkpoint", str(checkpoint), "--data", str(tmp_path))
    assert f"{checkpoint / 'model.pt'} is refused by torch's weights-only loader" in line
    assert "GLOBAL object" in line and "model.pt and meta.json" in line


def test_eval_checkpoint_without_model_pt(capsys, checkpoint, tmp_path):
    (checkpoint / "model.pt").unlink()
    line = one_line(capsys, "eval", "--checkpoint", str(checkpoint), "--data", str(tmp_path))
    assert (
        f"{checkpoint / 'model.pt'}: no such file or folder; pass a folder written by `landmix train`" in line
    )


def test_eval_empty_data_folder(capsys, checkpoint, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_line(capsys, "eval", "--checkpoint", str(checkpoint), "--data", str(empty))
    assert f"no 300w faces under {empty}" in line


def test_predict_nonexistent_checkpoint(capsys, tmp_path):
    photo = tmp_path / "face.jpg"
    photo.write_bytes(b"")
    line = one_line(
        capsys, "predict", "--checkpoint", str(tmp_path / "nope"), str(photo), "--out", str(tmp_path)
    )
    assert f"{tmp_path / 'nope'} is not a landmix checkpoint folder" in line


def test_fit_translator_nonexistent_checkpoint(capsys, tmp_path):
    argv = [
        "--checkpoint",
        str(tmp_path / "nope"),
        "--real-shards",
        str(tmp_path),
        "--out",
        str(tmp_path / "t.npz"),
    ]
    line = one_line(capsys, "fit-translator", *argv)
    assert f"{tmp_path / 'nope'} is not a landmix checkpoint folder" in line


def test_ingest_nonexistent_folder(capsys, tmp_path):
    argv = [str(tmp_path / "nope"), "--source", "300w", "--out", str(tmp_path / "m.parquet")]
    line = one_line(capsys, "ingest", *argv)
    assert f"{tmp_path / 'nope'} is not a folder" in line


def test_inspect_nonexistent_manifest(capsys, tmp_path):
    line = one_line(capsys, "inspect", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "figs"))
    assert f"{tmp_path / 'nope.parquet'}: no such file or folder" in line


def test_prepare_nonexistent_manifest(capsys, tmp_path):
    line = one_line(capsys, "prepare", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "out"))
    assert "nope.parquet" in line and "landmix ingest" in line


def test_train_invalid_setting(capsys):
    # 0 means "the preset's"; -1 is refused by TrainConfig
    line = one_line(capsys, "train", "--workers", "-1")
    assert "train.num_workers=-1 must be >= 1" in line


def test_generate_negative_count(capsys, tmp_path):
    line = one_line(capsys, "generate", "--n", "-1", "--out", str(tmp_path))
    assert "GenerateConfig.n=-1" in line


def test_mlflow_server_bad_flag_value(capsys):
    # A flag of the wrong type is argparse's to refuse: usage, one error line, exit 2 (the host, the login and
    # the admin password are mlflow-server's own checks: tests/test_mlflow_server.py).
    with pytest.raises(SystemExit) as exit_:
        cli.main(["mlflow-server", "--port", "abc"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (
        err.strip().splitlines()[-1]
        == "landmix mlflow-server: error: argument --port: invalid int value: 'abc'"
    )


def test_traceback_flag_and_variable_show_the_traceback(tmp_path, monkeypatch):
    argv = ["eval", "--checkpoint", str(tmp_path / "nope"), "--data", str(tmp_path)]
    with pytest.raises(FileNotFoundError):
        cli.main([*argv, "--traceback"])
    monkeypatch.setenv("LANDMIX_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError):
        cli.main(argv)


def test_unexpected_error_keeps_its_traceback(monkeypatch, tmp_path):
    from landmix.generate import job

    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(job, "run", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["generate", "--n", "1", "--out", str(tmp_path)])


def test_eval_malformed_landmark_file(capsys, checkpoint, tmp_path):
    (tmp_path / "face.pts").write_text("version: 1\nn_points: 1\n{\nx y\n}\n")
    (tmp_path / "face.png").write_bytes(b"")
    line = one_line(capsys, "eval", "--checkpoint", str(checkpoint), "--data", str(tmp_path))
    assert f"{tmp_path / 'face.pts'}: non_numeric" in line


def test_only_value_errors_raised_by_landmix_are_expected():
    with pytest.raises(ValueError) as own:  # a config check: names the field and the allowed values
        config.TrainConfig(num_workers=0)
    assert cli.expected(own.value)
    with pytest.raises(ValueError) as builtin:  # float("abc") on a landmix line: names no file or field
        ckpt_io.model_config({"config": {"model": {}}, "crop_scale": "abc"})
    assert not cli.expected(builtin.value)
    with pytest.raises(ValueError) as numpy_:  # raised inside numpy
        np.loadtxt(io.StringIO("x y"))
    assert not cli.expected(numpy_.value)


def test_console_script_prints_no_traceback(tmp_path):
    argv = ["eval", "--checkpoint", str(tmp_path / "nope"), "--data", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k != "LANDMIX_TRACEBACK"}
    proc = subprocess.run(
        [sys.executable, "-m", "landmix.cli", *argv], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("landmix eval: ") and proc.stderr.count("\n") == 1


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_prints_its_help(capsys, command):
    with pytest.raises(SystemExit) as stop:  # argparse expands "%" in help texts only when it prints them
        cli.main([command, "--help"])
    assert stop.value.code == 0 and f"usage: landmix {command}" in capsys.readouterr().out


def test_every_job_script_prints_its_help():
    from pathlib import Path

    jobs = sorted((Path(__file__).parents[1] / "jobs").glob("*.py"))
    assert jobs
    for job in jobs:
        proc = subprocess.run(
            [sys.executable, str(job), "--help"], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0 and "usage:" in proc.stdout, (job.name, proc.stderr[-2000:])
