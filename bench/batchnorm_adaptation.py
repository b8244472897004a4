"""Does re-estimating a synthetic-trained model's batch-norm statistics on real faces close the visual gap?

    LANDMIX_DATA_ROOT=../shared/data .venv/bin/python bench/batchnorm_adaptation.py CHECKPOINT [CHECKPOINT ...]

AdaBN (Li et al. 2016): the weights stay; every BatchNorm2d's running mean and variance are recomputed (a plain
average, `momentum=None`) from the model-input crops of the real faces of the fixed split's *train* part and their
mirror images, in training mode without gradients. No label is read beyond the crop's framing, which the test
faces are cropped with too. Prints the test faces' NME before and after, per checkpoint (seconds each).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from landmix import checkpoint, evaluate, metrics, predict, settings


def crops(data: str, split: str, size: int, scale: float) -> tuple[np.ndarray, list, np.ndarray]:
    """The split's model-input crops (N, S, S, 3) uint8 RGB, their boxes and their truths (N, 68, 2) in pixels."""
    images, boxes, truths = [], [], []
    for rel, pts in evaluate.split_faces(evaluate.list_faces(data, "300w"), split):
        crop, box = evaluate.crop_face(cv2.imread(str(Path(data, rel)), cv2.IMREAD_COLOR)[:, :, ::-1], pts, size, scale)
        images.append(crop)
        boxes.append(box)
        truths.append(pts)
    return np.stack(images), boxes, np.stack(truths)


def test_nme(model, images: np.ndarray, boxes: list, truths: np.ndarray) -> float:
    pred = checkpoint.predict(model, images)
    pred = np.stack([predict.uncrop(p, box, images.shape[1]) for p, box in zip(pred, boxes)])
    return float(metrics.nme(pred, truths).mean())


def adapt(model, images: np.ndarray, batch: int = 64) -> None:
    """Recompute every BatchNorm2d's statistics on images (N, S, S, 3) uint8 and their mirrors, in place."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over all batches
    x = torch.from_numpy(np.concatenate([images, images[:, :, ::-1]])).permute(0, 3, 1, 2).float().div_(255.0)
    model.train()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            model(x[i : i + batch])
    model.eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+")
    args = p.parse_args()
    data = str(settings.data_root() / "300w")
    print("| checkpoint | test NME | after AdaBN on the real train crops |\n|---|---|---|")
    for folder in args.checkpoints:
        model, _ = checkpoint.load(folder)
        size, scale = model.cfg.image_size, model.cfg.crop_scale
        test = crops(data, "test", size, scale)
        before = test_nme(model, *test)
        adapt(model, crops(data, "train", size, scale)[0])
        print(f"| {folder} | {100 * before:.2f} % | {100 * test_nme(model, *test):.2f} % |", flush=True)


if __name__ == "__main__":
    main()
