"""The camera that takes a generated face: the flat drawing's and the camera step's.

`flat_camera` is the flat drawing's: a Gaussian lens blur, Gaussian noise from OpenCV's rng (reseeded per
sample) and an exposure factor. The camera step (landmix.generate.look) takes the picture with `camera`
instead: lens blur, white balance, vignetting, a lower sensor resolution on some faces, a tone curve,
sharpening, signal-dependent sensor noise and JPEG. The flat camera's draws are made either way
(landmix.generate.render).
"""

from __future__ import annotations

import cv2
import numpy as np

from landmix.generate.draw import times


def flat_camera(
    img: np.ndarray, blur: float, noise_seed: int, noise_sigma: float, exposure: float
) -> np.ndarray:
    """The scene img (n, n, 3) float32 blurred by `blur` px, times `exposure`, plus noise of `noise_sigma` drawn by
    OpenCV's rng from `noise_seed` (deterministic and fast). Returns uint8 RGB."""
    n = img.shape[0]
    img = cv2.GaussianBlur(img, (0, 0), blur)
    noise = np.empty(img.shape, np.float32)
    cv2.setRNGSeed(noise_seed)  # cv2's own rng, reseeded per sample
    # one channel's view: a scalar sigma on 3 fills only red
    cv2.randn(noise.reshape(n, -1), 0.0, noise_sigma)
    img = cv2.addWeighted(img, exposure, noise, 1.0, 0.0)
    return np.clip(img, 0, 255).astype(np.uint8)


def _towards_grey(keep: float) -> np.ndarray:
    """(3, 3) colour matrix keeping `keep` of each pixel's colour about its channel mean (1 = unchanged)."""
    return keep * np.eye(3) + (1 - keep) / 3


def camera(rng: np.random.Generator, img: np.ndarray, blur: float) -> np.ndarray:
    """The camera, on the scene (n, n, 3) float32: lens blur (up to `blur` px), white balance (warm on average,
    as the real photos' crops are), vignetting, a lower sensor resolution on some faces, a tone curve, the
    camera's sharpening, signal-dependent sensor noise and JPEG. Returns uint8 RGB."""
    n = img.shape[0]
    img = cv2.GaussianBlur(img, (0, 0), max(0.1, blur * rng.uniform(0.2, 0.8)))
    balance = np.diag(np.array([1.12, 1.0, 0.97]) * (1 + rng.normal(0, 0.05, 3)))  # white balance
    # muted colour
    img = cv2.transform(img, (_towards_grey(rng.uniform(0.6, 1.0)) @ balance).astype(np.float32))
    t = np.linspace(-0.5, 0.5, n, dtype=np.float32) ** 2
    img = times(img, 1 - np.float32(rng.uniform(0, 0.35) * 2) * (t[:, None] + t[None, :]))  # vignetting
    if rng.random() < 0.3:  # a sensor with fewer pixels than the image: down then up
        small = max(16, int(n / rng.uniform(1.2, 2.0)))
        img = cv2.resize(cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA), (n, n))
    lin = np.clip(img, 0, 255) / 255
    mid = lin.mean()
    lin = np.clip(mid + (lin - mid) * rng.uniform(1.0, 1.35), 0, 1)  # contrast of the tone curve
    if rng.random() < 0.4:  # in-camera sharpening (unsharp mask)
        lin = np.clip(lin + rng.uniform(0.2, 0.8) * (lin - cv2.GaussianBlur(lin, (0, 0), 1.0)), 0, 1)
    sigma = np.sqrt(rng.uniform(1e-4, 1.2e-3) * lin + rng.uniform(1e-5, 1e-4))  # shot + read noise
    noise = np.empty(img.shape, np.float32)
    cv2.setRNGSeed(int(rng.integers(2**31)))  # OpenCV's normal draws, reseeded per sample: 3x numpy's speed
    cv2.randn(noise.reshape(n, -1), 0.0, 1.0)  # one channel: a scalar sigma on 3 channels is (sigma, 0, 0)
    own = rng.uniform(0.2, 0.8)  # the part of the noise each channel draws on its own (chroma noise)
    noise = cv2.transform(noise, (own * np.eye(3) + (1 - own) * np.sqrt(3) / 3).astype(np.float32))  # + luma
    img = np.clip((lin + sigma * noise) * 255, 0, 255).astype(np.uint8)
    if rng.random() < 0.8:
        q = int(rng.integers(40, 96))
        ok, enc = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        img = cv2.imdecode(enc, cv2.IMREAD_COLOR)[:, :, ::-1]
    return np.ascontiguousarray(img)
