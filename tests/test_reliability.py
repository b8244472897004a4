"""Faults of a rented cluster that need a real volume (docs/results/reliability.md): the storage path runs out
of space while a run writes its checkpoints. A small tmpfs is mounted for it, which needs root (CI runs as
root; elsewhere the test skips and says why, and in CI a skip fails)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from ray.train import TrainingFailedError

from landmix import checkpoint, presets, trainer
from landmix.models import create_model

pytestmark = pytest.mark.slow


@pytest.fixture
def small_volume(tmp_path):
    """A 24 MB tmpfs at tmp_path/volume, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "volume"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def checkpoint_bytes(spec) -> int:
    """What one checkpoint folder of spec's model takes (the best weights and the resume state)."""
    model = create_model(spec.model)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.zeros(2, 3, spec.model.image_size, spec.model.image_size)).pts.sum().backward()
    opt.step()
    with tempfile.TemporaryDirectory() as folder:
        resume = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 0, "plan": {}}
        checkpoint.save(folder, model.state_dict(), resume, spec, epoch=0)
        return sum(f.stat().st_size for f in Path(folder).iterdir())


def test_a_full_storage_volume_stops_with_the_space_needed_and_the_run_resumes_after(
    ray_cluster, shared_data, small_volume, tmp_path
):
    import _shards

    real = _shards.real_shards(shared_data, tmp_path / "real", limit=48, size=128)
    spec = presets.preset("smoke", data={"real_shards": str(real)})
    spec = replace(
        spec,
        train=replace(
            spec.train,
            epochs=4,
            num_workers=1,
            storage_path=str(small_volume),
            name="full-disk",
            max_failures=1,
        ),
        tracking=replace(spec.tracking, uri="none"),
    )
    # leave room for the first checkpoint and its margin, not for a second one beside it
    size = checkpoint_bytes(spec)
    need = int(size * 1.05) + 2**20  # checkpoint.ensure_room's rule
    filler = small_volume / "filler"
    free = shutil.disk_usage(small_volume).free
    filler.write_bytes(b"\0" * (free - need - size // 2))

    with pytest.raises(TrainingFailedError) as failed:
        trainer.fit(spec)
    says = str(failed.value)
    assert "no room for the next checkpoint in" in says and str(small_volume) in says and "MB free" in says
    kept = sorted(p for p in (small_volume / "full-disk").glob("checkpoint_*") if p.is_dir())
    assert kept, "the last good checkpoint is gone"
    assert checkpoint.read_meta(kept[-1])["epoch"] == 0  # whole, and the one before the full volume

    filler.unlink()  # space freed: the same run started again resumes from that checkpoint and finishes
    done = trainer.fit(spec)
    assert done.error is None
    assert done.metrics["resumed_from_epoch"] == 0 and done.metrics["epoch"] == 3


def test_sigterm_to_landmix_train_leaves_a_run_the_same_name_resumes(shared_data, tmp_path):
    """`kill -TERM` of `landmix train` once it has two epoch checkpoints: the command ends, the checkpoints stay,
    and the same command with the same --name resumes the run from a checkpoint, says so, and finishes it.

    Ray's own failure-signal handler in the driver takes SIGTERM (the command aborts, often with 134): what
    matters is the state it leaves, which this checks. The command runs its own local Ray, as a user's would."""
    import signal
    import sys
    import time

    import _shards

    real = _shards.real_shards(shared_data, tmp_path / "real", limit=48)
    runs = tmp_path / "runs"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {
        "LANDMIX_STORAGE_PATH": str(runs),
        "MLFLOW_TRACKING_URI": "none",
    }
    cmd = [sys.executable, "-m", "landmix.cli", "train", "--preset", "smoke", "--epochs", "8"]
    cmd += ["--real-shards", str(real), "--name", "sig-test", "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while len(list((runs / "sig-test").glob("checkpoint_*"))) < 2:
        assert proc.poll() is None, (
            f"the run ended before its second checkpoint:\n{proc.stdout.read()[-3000:]}"
        )
        assert time.monotonic() < deadline, "no second checkpoint in 300 s"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    try:
        first, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("landmix train did not end within 120 s of SIGTERM") from None
    assert proc.returncode != 0, "a stopped run must not report success"
    assert not (tmp_path / "out" / "checkpoint").exists(), "the stopped run wrote a final checkpoint"
    kept = sorted(p for p in (runs / "sig-test").glob("checkpoint_*") if p.is_dir())
    assert len(kept) >= 2

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    said = [line for line in again.stdout.splitlines() if "resumed from its epoch-" in line]
    assert said and said[0].startswith("run sig-test resumed from its epoch-"), again.stdout[-2000:]
    assert int(said[0].split("epoch-")[1].split()[0]) >= 0
    assert (tmp_path / "out" / "checkpoint" / "meta.json").exists()
