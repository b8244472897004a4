"""Checkpoints and prediction: what training writes, and what eval, predict, relabel and sweeps read.

A checkpoint is a folder:
    model.pt     {"model": state_dict}: the weights to predict with (training keeps the best validation epoch's)
    resume.pt    {"model", "optimizer", "epoch", "best"}: the LAST epoch's state, for resuming after a failure
    meta.json    {"config": the RunSpec as a dict, "epoch", "best_epoch", "metrics", ...}
Weights load with `weights_only=True`: no checkpoint is ever unpickled.

    model, meta = load("out/real/checkpoint")         # on CPU, in eval mode; model.cfg.crop_scale is its crop
    pts = predict(model, crops)                       # (N, S, S, 3) uint8 model-input crops -> (N, K, 2)

`predict` averages the prediction on each crop with the one on its mirror image (flipped back through
the scheme's flip permutation): flip test-time averaging, as train's validation and eval use it.

The label translator's real-face stage, fitted from a model's predictions on real faces, is in landmix.relabel.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from landmix import config as C
from landmix.schemes import IBUG68, Scheme

MODEL_FILE = "model.pt"
RESUME_FILE = "resume.pt"
META_FILE = "meta.json"


def save(folder, best_model: dict, resume: dict, spec: C.RunSpec, **meta) -> None:
    """Write a checkpoint folder: best_model (a state_dict), resume (last epoch's state), meta.json."""
    torch.save({"model": best_model}, Path(folder, MODEL_FILE))
    torch.save(resume, Path(folder, RESUME_FILE))
    Path(folder, META_FILE).write_text(json.dumps({"config": C.to_dict(spec), **meta}, indent=1, default=str))


def ensure_room(storage: str, folder) -> None:
    """Refuse to write checkpoint `folder` into a local `storage` path without room for it: an OSError (ENOSPC)
    naming the path, the space free and the space needed, raised before any byte is written, so the run's
    last good checkpoint stays whole and the same run started again after freeing space resumes from it.
    Remote storage (s3://...) is left to its own errors."""
    import errno
    import shutil

    if "://" in str(storage):
        return
    need = sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())
    need = int(need * 1.05) + 2**20  # the copy, and Ray's own small files beside it
    where = Path(storage)
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if free < need:
        raise OSError(
            errno.ENOSPC,
            f"no room for the next checkpoint in {storage}: {free / 2**20:.1f} MB free, it needs "
            f"{need / 2**20:.1f} MB; free space there (or set LANDMIX_STORAGE_PATH elsewhere) and start the same "
            f"run again (landmix train --name NAME) to resume from its last checkpoint",
        )


def read_meta(folder) -> dict:
    """meta.json of a checkpoint folder; a clear error where the folder is not one."""
    path = Path(folder, META_FILE)
    if not path.exists():
        raise FileNotFoundError(
            f"{folder} is not a landmix checkpoint folder (no {META_FILE}); "
            f"`landmix train --out DIR` writes one to DIR/checkpoint"
        )
    return json.loads(path.read_text())


def data_config(meta: dict) -> C.DataConfig:
    """The data config the checkpoint's run trained with: its real faces' split fractions and seed."""
    return C.from_dict(meta["config"]).data


def model_config(meta: dict) -> C.ModelConfig:
    """The model's config; checkpoints from before crop_scale was a model setting recorded it beside."""
    cfg = dict(meta["config"]["model"])
    cfg.setdefault("crop_scale", float(meta.get("crop_scale", 2.0)))
    return C.ModelConfig(**cfg)


def load(folder):
    """(model on CPU in eval mode, meta dict) from a checkpoint folder written by training."""
    from landmix.models import create_model

    meta = read_meta(folder)
    model = create_model(model_config(meta))
    state = torch.load(Path(folder, MODEL_FILE), map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    return model.eval(), meta


def load_resume(folder, device="cpu") -> dict:
    return torch.load(Path(folder, RESUME_FILE), map_location=device, weights_only=True)


def _forward(model, x: torch.Tensor) -> torch.Tensor:
    return model(x).pts.float()


def predict(
    model, images: np.ndarray, flip: bool = True, batch: int = 64, device="cpu", scheme: Scheme = IBUG68
) -> np.ndarray:
    """images (N, S, S, 3) uint8 model-input crops -> pts (N, K, 2) float32, crop pixels.

    flip: average with the prediction on the mirrored crop (x -> S - 1 - x, indices through the scheme)."""
    net = getattr(model, "module", model)  # unwrap DDP
    was_training = net.training
    net.eval()
    perm = torch.as_tensor(scheme.flip_perm, dtype=torch.long)
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = (
                torch.from_numpy(np.ascontiguousarray(images[i : i + batch]))
                .permute(0, 3, 1, 2)
                .float()
                .div_(255.0)
            )
            x = x.to(device)
            pts = _forward(net, x).cpu()
            if flip:
                mirrored = _forward(net, x.flip(-1)).cpu()[:, perm]
                mirrored[..., 0] = x.shape[-1] - 1 - mirrored[..., 0]
                pts = (pts + mirrored) / 2
            out.append(pts.numpy())
    net.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, scheme.num_points, 2), np.float32)


def checkpoint_uri(checkpoint) -> str:
    """Where a Ray Train checkpoint lies, as one string `ray.train.Checkpoint(...)` reads back: a local
    path, or a URI (s3://bucket/...) when it lies on a remote filesystem."""
    import pyarrow.fs

    if isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
        return checkpoint.path
    return f"{checkpoint.filesystem.type_name}://{checkpoint.path}"
