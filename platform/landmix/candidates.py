"""The candidates of annotation-budget selection: one face per photo (its best detection), described by a
synthetic-pretrained model without reading a label.

    detections = find_faces(photos)                              # images only: computed once for every seed
    cands = describe_pool(model, photos, names, detections)      # Candidates: points, embedding, disagreement

The model's crop comes from the detector box, refined by the model's own predictions (`predict.landmarks`, as
`landmix predict` does). From that crop the model gives an embedding (the backbone's last feature map, averaged
over space: pose, expression, appearance, lighting), a disagreement (the spread of its points over the crop
shifted and scaled a little and mirrored, `VARIANTS` x 2 predictions, in inter-ocular distances: where the model
is unsure) and the shape descriptors of its predicted points (landmix.descriptors). `landmix.ranking` orders them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landmix import crops, detect
from landmix.descriptors import descriptors
from landmix.schemes import IBUG68, flip_points, interocular

# The disagreement's crops: (dx, dy, scale) of the crop box, in crop sides; each also mirrored.
VARIANTS = (
    (0.0, 0.0, 1.0),
    (0.04, 0.0, 1.0),
    (-0.04, 0.0, 1.0),
    (0.0, 0.04, 1.0),
    (0.0, -0.04, 1.0),
    (0.0, 0.0, 0.92),
    (0.0, 0.0, 1.08),
)


@dataclass
class Candidates:
    """One candidate face per photo (its best detection), described by a model. N photos, `found` of them
    with a face; the arrays are NaN where none was found."""

    names: list[str]  # the photos, as the picks file names them
    found: np.ndarray  # (N,) bool: a face was found
    boxes: np.ndarray  # (N, 4) detector box x0, y0, x1, y1, image pixels
    scores: np.ndarray  # (N,) detector score
    crops: np.ndarray  # (N, 3) the last pass's model-input crop x0, y0, side
    points: np.ndarray  # (N, 68, 2) predicted points, image pixels
    embedding: np.ndarray  # (N, D) backbone features
    disagreement: np.ndarray  # (N,) RMS spread of the points over the VARIANTS, in inter-ocular distances
    descriptors: np.ndarray  # (N, 5) descriptors.DESCRIPTORS of the predicted points


def embed(model, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """(N, S, S, 3) uint8 model-input crops -> (N, D) the backbone's last feature map averaged over space."""
    import torch

    net = getattr(model, "module", model).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = (
                torch.from_numpy(np.ascontiguousarray(images[i : i + batch])).permute(0, 3, 1, 2).float()
                / 255.0
            )
            out.append(net.features(x)[-1].mean((2, 3)).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def views(model, image: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's points for the face whose points are `pts` (K, 2), over the crop around them shifted,
    scaled and mirrored (`VARIANTS` x 2): (2V, K, 2) in image pixels, and the variants' first crop (integer
    x0, y0, side; the batch of crops is what the model saw)."""
    from landmix import checkpoint, predict

    size, scale = model.cfg.image_size, model.cfg.crop_scale
    x0, y0, side = crops.box_for(pts, scale)
    none = np.zeros((0, 2), np.float32)
    # each variant: the crop moved by (dx, dy) sides, scaled about its centre
    cx, cy = (x0 + side / 2, y0 + side / 2)
    # integers: crops.crop_image cuts whole pixels
    boxes = [
        (round(cx + (dx - k / 2) * side), round(cy + (dy - k / 2) * side), round(k * side))
        for dx, dy, k in VARIANTS
    ]
    batch = np.stack([crops.crop_image(image, none, b, size)[0] for b in boxes])
    plain = checkpoint.predict(model, batch, flip=False)
    mirrored = flip_points(checkpoint.predict(model, batch[:, :, ::-1], flip=False), size, IBUG68)
    out = [predict.uncrop(p, b, size) for b, p in zip(boxes + boxes, np.concatenate([plain, mirrored]))]
    return np.stack(out), batch


def describe(model, image: np.ndarray, box, calibration: detect.BoxCalibration, passes: int = 3) -> dict:
    """One face of image (H, W, 3) uint8 RGB, found by the detector box (x0, y0, x1, y1): its points (68, 2)
    in image pixels, the crop they were predicted on, its embedding and its disagreement."""
    from landmix import predict

    scale = model.cfg.crop_scale
    pts = predict.landmarks(model, image, [calibration.model_box(box, scale)], passes)[0]
    seen, batch = views(model, image, pts)  # (2V, 68, 2) image pixels
    mean = seen.mean(0)
    iod = max(float(interocular(mean, IBUG68)), 1e-6)
    spread = float(np.sqrt(((seen - mean) ** 2).sum(-1).mean()) / iod)
    return {
        "points": pts,
        "crop": crops.box_for(pts, scale),
        "embedding": embed(model, batch[:1])[0],
        "disagreement": spread,
    }


def find_faces(photos: list[Path]) -> list[dict]:
    """The best-scoring detection of each photo: {"box": [x0, y0, x1, y1] or None, "score"} (or "error" where
    the photo cannot be read). Depends on the images only: a sweep computes it once for every seed."""
    import cv2

    from landmix import predict

    out = []
    for path in photos:
        try:
            image = predict.read_photo(path)
        except (ValueError, OSError, cv2.error) as e:  # named and listed, as predict lists it
            out.append({"box": None, "score": None, "error": str(e)})
            continue
        boxes, scores = detect.detect_faces(image, scores=True)
        out.append(
            {"box": boxes[0].tolist(), "score": float(scores[0])}
            if len(boxes)
            else {"box": None, "score": None}
        )
    return out


def describe_pool(
    model,
    photos: list[Path],
    names: list[str],
    detections: list[dict],
    calibration: detect.BoxCalibration | None = None,
) -> Candidates:
    """Every photo's candidate described by the model (NaN rows where no face was found)."""
    from landmix import predict

    calibration = calibration or detect.BoxCalibration.load()
    n, k = len(photos), model.cfg.num_points
    found = np.array([d["box"] is not None for d in detections], bool)
    boxes, pts = np.full((n, 4), np.nan), np.full((n, k, 2), np.nan, np.float32)
    crop, scores, dis = np.full((n, 3), np.nan), np.full(n, np.nan), np.full(n, np.nan)
    emb = None
    for i in np.flatnonzero(found):
        d = describe(model, predict.read_photo(photos[i]), detections[i]["box"], calibration)
        if emb is None:
            emb = np.full((n, len(d["embedding"])), np.nan, np.float32)
        boxes[i], scores[i], crop[i], pts[i] = (
            detections[i]["box"],
            detections[i]["score"],
            d["crop"],
            d["points"],
        )
        emb[i], dis[i] = d["embedding"], d["disagreement"]
    emb = np.full((n, 1), np.nan, np.float32) if emb is None else emb
    return Candidates(list(names), found, boxes, scores, crop, pts, emb, dis, descriptors(pts))
