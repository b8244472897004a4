"""Face crops: a square around the landmark box, with a scale and a centre offset.

A crop is described relative to the face's landmark box (bw x bh, long side L, centre c):

    side   = scale * L                      the square's side in image pixels
    centre = c + (dx, dy) * L               offset in units of the box's long side

The real set fixes the target: `CropDistribution.fit` measures (log scale, dx, dy) of the real
images (each real 300-W image *is* a crop, so its statistics are those of the whole image) and fits
a Gaussian; synthetic crops are sampled from it, one draw per face id, seeded, so that a re-run
picks the same crop whatever the sharding. Real faces get the canonical crop (median scale, no
offset). `crop_image` cuts the square (zero padding outside the image) and resizes it with OpenCV's
pixel-centre convention, returning the points in crop pixels.

    stats = crop_stats(pts, width, height)        # (N, 4): scale, dx, dy, aspect of the image itself
    dist = CropDistribution.fit(real_stats)
    box = dist.sample_box(pts, key="000042", seed=0)   # (x0, y0, side)
    crop, crop_pts = crop_image(image, pts, box, size=256)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

STAT_NAMES = ("scale", "dx", "dy", "aspect")


def landmark_box(pts: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) of the points' bounding box. pts: (..., K, 2) -> (..., 4)."""
    lo, hi = pts.min(axis=-2), pts.max(axis=-2)
    return np.concatenate([lo, hi], axis=-1)


def crop_stats(pts: np.ndarray, width, height) -> np.ndarray:
    """Statistics of the window (0, 0, width, height) around each face: (N, 4) scale, dx, dy, aspect.

    pts: (N, K, 2) pixels; width, height: scalars or (N,). scale = max(W, H) / L, (dx, dy) = offset of
    the window centre from the box centre in units of L, aspect = W / H of the window.
    """
    pts = np.asarray(pts, np.float64)
    w = np.broadcast_to(np.asarray(width, np.float64), pts.shape[:1])
    h = np.broadcast_to(np.asarray(height, np.float64), pts.shape[:1])
    box = landmark_box(pts)
    side = np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
    cx, cy = (box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2
    # Window centre in the pixel-centre convention: the middle of pixels 0..W-1 is (W - 1) / 2.
    return np.stack(
        [np.maximum(w, h) / side, ((w - 1) / 2 - cx) / side, ((h - 1) / 2 - cy) / side, w / h], axis=1
    )


def box_stats(pts: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Statistics of square crop boxes (N, 3) = (x0, y0, side) around faces pts (N, K, 2): (N, 4)."""
    shifted = np.asarray(pts, np.float64) - np.asarray(boxes, np.float64)[:, None, :2]
    return crop_stats(shifted, boxes[:, 2], boxes[:, 2])


def box_for(pts: np.ndarray, scale: float, dx: float = 0.0, dy: float = 0.0) -> tuple[float, float, float]:
    """The integer square (x0, y0, side) with the given scale and offset around pts (K, 2)."""
    x0, y0, x1, y1 = landmark_box(np.asarray(pts, np.float64))
    long_side = max(x1 - x0, y1 - y0, 1.0)
    side = max(int(round(scale * long_side)), 2)
    cx, cy = (x0 + x1) / 2 + dx * long_side, (y0 + y1) / 2 + dy * long_side
    return float(round(cx - (side - 1) / 2)), float(round(cy - (side - 1) / 2)), float(side)


# Training decodes each face once into a crop CONTEXT times the model-input crop, so that the scale, shift and
# rotation jitter of augmentation shows real pixels; the model-input crop is its centre (`centre_crop`).
CONTEXT = 1.5


def context_size(image_size: int) -> int:
    """Side in pixels of a training face's decoded crop: the model-input crop and its surround."""
    # even, so the model-input crop sits exactly in its centre
    return int(round(image_size * CONTEXT / 2)) * 2


def input_crop(
    image: np.ndarray, pts: np.ndarray, crop_scale: float, size: int, context: float = 1.0
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """The model-input crop of a face: a square of crop_scale x (context x) its landmark box's long side,
    centred on the box, at `size` pixels. Returns (crop, pts in crop pixels, box (x0, y0, side))."""
    box = box_for(pts, crop_scale * context)
    crop, crop_pts = crop_image(image, pts, box, size)
    return crop, crop_pts, box


def centre_crop(images: np.ndarray, pts: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The central size x size window of crops (N, C, C, 3) and their points (N, K, 2): exact, no resampling."""
    o = (images.shape[1] - size) // 2
    return np.ascontiguousarray(images[:, o : o + size, o : o + size]), (pts - o).astype(np.float32)


def _key_rng(key: str, seed: int) -> np.random.Generator:
    """A generator that depends only on (seed, key): the same face gets the same draw in any shard."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass(frozen=True)
class CropDistribution:
    """A Gaussian over (log scale, dx, dy), fitted to real crops.

    mean: (3,) mean of (log scale, dx, dy); cov: (3, 3) flattened row-major into 9 floats.
    n: the number of faces it was fitted on (0 = the built-in default).
    """

    mean: tuple[float, float, float] = (float(np.log(2.0)), 0.0, 0.0)
    cov: tuple[float, ...] = (0.05**2, 0, 0, 0, 0.03**2, 0, 0, 0, 0.03**2)
    n: int = 0

    @classmethod
    def fit(cls, stats: np.ndarray) -> CropDistribution:
        """Fit to crop statistics (N, 4) from `crop_stats` or `box_stats` (the aspect column is ignored)."""
        stats = np.asarray(stats, np.float64)
        if len(stats) < 2:
            raise ValueError(f"need at least 2 real faces to fit a crop distribution, got {len(stats)}")
        x = np.column_stack([np.log(stats[:, 0]), stats[:, 1], stats[:, 2]])
        cov = np.cov(x, rowvar=False) + np.eye(3) * 1e-8
        return cls(tuple(float(v) for v in x.mean(0)), tuple(float(v) for v in cov.ravel()), len(x))

    @property
    def canonical_scale(self) -> float:
        """The median crop scale: the crop every real face gets."""
        return float(np.exp(self.mean[0]))

    def sample(self, key: str, seed: int) -> tuple[float, float, float]:
        """One (scale, dx, dy) for the face called `key`: deterministic given (seed, key)."""
        z = _key_rng(key, seed).multivariate_normal(self.mean, np.reshape(self.cov, (3, 3)))
        return float(np.exp(z[0])), float(z[1]), float(z[2])

    def sample_box(self, pts: np.ndarray, key: str, seed: int) -> tuple[float, float, float]:
        """A sampled square (x0, y0, side) around pts (K, 2)."""
        return box_for(pts, *self.sample(key, seed))

    def canonical_box(self, pts: np.ndarray) -> tuple[float, float, float]:
        """The canonical square (x0, y0, side) around pts (K, 2): median scale, centred."""
        return box_for(pts, self.canonical_scale)

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path) -> CropDistribution:
        d = json.loads(Path(path).read_text())
        return cls(tuple(d["mean"]), tuple(d["cov"]), int(d["n"]))


def crop_image(image: np.ndarray, pts: np.ndarray, box, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut the square box = (x0, y0, side) from image (H, W, C) uint8, zero-padded, resized to size.

    Returns (crop (size, size, C) uint8, pts (K, 2) float32 in crop pixels). Points follow OpenCV's
    resize convention for pixel centres: u = (x - x0 + 0.5) * size / side - 0.5.
    """
    x0, y0, side = (int(v) for v in box)
    h, w = image.shape[:2]
    patch = np.zeros((side, side, *image.shape[2:]), dtype=image.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    crop = cv2.resize(patch, (size, size), interpolation=interp)
    if crop.ndim < patch.ndim:  # cv2 drops a trailing channel axis of length 1
        crop = crop[..., None]
    k = size / side
    out = (np.asarray(pts, np.float64) - (x0, y0) + 0.5) * k - 0.5
    return crop, out.astype(np.float32)


def plot_coverage(panels: dict[str, np.ndarray], path, sizes: dict[str, np.ndarray] | None = None) -> None:
    """Histograms of scale, dx, dy and aspect, one colour per named (N, 4) statistics array; with
    sizes (name -> (N, 2) width, height in pixels) a fifth panel scatters the image sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {
        "scale": "crop side / landmark box",
        "dx": "centre offset x / box",
        "dy": "centre offset y / box",
        "aspect": "crop width / height",
    }
    fig, axes = plt.subplots(1, 4 + bool(sizes), figsize=(3.5 * (4 + bool(sizes)), 3.2))
    for j, name in enumerate(STAT_NAMES):
        values = np.concatenate([s[:, j] for s in panels.values()])
        lo, hi = np.percentile(values, [0.5, 99.5])
        pad = max(hi - lo, 0.1) * 0.1
        bins = np.linspace(lo - pad, hi + pad, 40)
        for label, s in panels.items():
            axes[j].hist(np.clip(s[:, j], bins[0], bins[-1]), bins=bins, alpha=0.5, density=True, label=label)
        axes[j].set_title(titles[name], fontsize=9)
        axes[j].set_yticks([])
    axes[0].legend(fontsize=7)
    for label, wh in (sizes or {}).items():
        axes[4].scatter(wh[:, 0], wh[:, 1], s=6, alpha=0.5, label=label)
    if sizes:
        axes[4].set_title("image width x height (px)", fontsize=9)
        axes[4].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
