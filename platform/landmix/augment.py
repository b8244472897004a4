"""Keypoint-aware augmentation of face crops: albumentations, one `strength` knob, named presets.

Random work that runs per epoch in the training input pipeline (the prepare job has already
cropped, so an augmentation costs a crop's pixels, not a 512-px render's). The image and its
points move together: albumentations carries the points through the geometric transforms
(affine, perspective), and the horizontal flip is done here with `schemes.flip_points`, which
mirrors x -> W - 1 - x *and* permutes indices through the scheme (the image-left eye corner stays
point 36) -- albumentations 2.0.8's own flip would leave the indices unpermuted.

    aug = make_augmenter(strength=PRESETS["medium"], size=256, seed=0)
    image, pts = aug(image, pts)          # (256, 256, 3) uint8, (68, 2) float32 crop pixels
    aug = make_augmenter(0.5, size=144, out_size=96, seed=0)   # training: a context crop in, the model's
    image, pts = aug(image, pts)          # (96, 96, 3): the jittered centre of the context crop

`strength` in [0, 1] scales every transform's probability and magnitude together (one float for
Tune to search); 0 is the identity. Points may leave the image (they are kept, never dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import albumentations as A
import cv2
import numpy as np

from landmix.crops import centre_crop
from landmix.schemes import IBUG68, Scheme, flip_points, get_scheme

PRESETS: dict[str, float] = {"none": 0.0, "light": 0.3, "medium": 0.6, "heavy": 0.9}


def preset(name: str) -> float:
    """The strength of a named preset; a clear error lists the names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown augmentation preset {name!r}; choose one of {list(PRESETS)}") from None


def _odd(v: float) -> int:
    return int(v) // 2 * 2 + 1


def build_transforms(strength: float, size: int, photometric: bool = True, out_size: int = 0) -> list:
    """The albumentations pipeline (without the flip) at `strength`: probabilities and magnitudes scale.

    photometric=False keeps only the geometric transforms (tests check that points follow the pixels).
    out_size: cut the central out_size x out_size window last (0 = keep `size`).
    """
    s = float(strength)
    geometric = [
        A.Affine(
            scale=(1 - 0.25 * s, 1 + 0.25 * s),
            translate_percent=(-0.08 * s, 0.08 * s),
            rotate=(-30 * s, 30 * s),
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            p=0.9 * s,
        ),
        A.Perspective(scale=(0.01, 0.01 + 0.07 * s), border_mode=cv2.BORDER_CONSTANT, fill=0, p=0.3 * s),
    ]
    occlusion = [
        A.CoarseDropout(
            num_holes_range=(1, 1 + int(3 * s)),
            hole_height_range=(0.05, 0.05 + 0.2 * s),
            hole_width_range=(0.05, 0.05 + 0.2 * s),
            fill="random_uniform",
            p=0.3 * s,
        ),
        # Lighting. Not RandomFog: 129 ms an image at 144 px, 200x the rest of the pipeline (docs/results/train.md).
        A.OneOf(
            [
                A.RandomShadow(num_shadows_limit=(1, 2), shadow_intensity_range=(0.3, 0.3 + 0.4 * s)),
                A.RandomGamma(gamma_limit=(int(100 - 40 * s), int(100 + 40 * s))),
                A.CLAHE(clip_limit=(1, 1 + 3 * s)),
            ],
            p=0.3 * s,
        ),
    ]
    degradation = [
        A.OneOf(
            [
                A.MotionBlur(blur_limit=(3, _odd(3 + 8 * s)), allow_shifted=False),
                A.GaussianBlur(sigma_limit=(0.2, 0.2 + 2.0 * s)),
                A.MedianBlur(blur_limit=(3, _odd(3 + 4 * s))),
            ],
            p=0.4 * s,
        ),
        A.OneOf(
            [
                A.ISONoise(color_shift=(0.01, 0.01 + 0.04 * s), intensity=(0.1, 0.1 + 0.5 * s)),
                A.GaussNoise(std_range=(0.01, 0.01 + 0.1 * s)),
            ],
            p=0.4 * s,
        ),
        A.Downscale(scale_range=(1 - 0.7 * s, 1.0), p=0.3 * s),
    ]
    colour = [
        A.ColorJitter(
            brightness=(1 - 0.4 * s, 1 + 0.4 * s),
            contrast=(1 - 0.4 * s, 1 + 0.4 * s),
            saturation=(1 - 0.5 * s, 1 + 0.5 * s),
            hue=(-0.05 * s, 0.05 * s),
            p=0.6 * s,
        ),
        A.ToGray(p=0.15 * s),
        A.ImageCompression(quality_range=(int(100 - 70 * s), 100), p=0.4 * s),
    ]
    crop = [A.CenterCrop(out_size, out_size)] if out_size and out_size != size else []
    return [*geometric, *occlusion, *degradation, *colour, *crop] if photometric else [*geometric, *crop]


@dataclass
class Augmenter:
    """A seeded keypoint-aware augmenter; picklable (the pipeline is built lazily in each process).

    strength: 0..1, the one knob; size: side of the square crops it receives (pixels); out_size: side of
    the crops it returns, their central window after the transforms (0 = size); scheme: the points'
    convention (the flip permutation); seed: None = fresh randomness.
    """

    strength: float
    size: int
    out_size: int = 0
    scheme: Scheme = IBUG68
    seed: int | None = None
    flip_p: float = 0.5  # probability of a horizontal flip whenever strength > 0
    photometric: bool = True  # False: geometric transforms and the flip only
    _compose: A.Compose | None = field(default=None, init=False, repr=False)
    _rng: np.random.Generator | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"augmentation strength={self.strength} must lie in [0, 1]; presets: {PRESETS}")

    def __getstate__(self):
        # The scheme travels by name (its MappingProxyType does not pickle); the pipeline is rebuilt.
        return {**self.__dict__, "scheme": self.scheme.name, "_compose": None}

    def __setstate__(self, state):
        self.__dict__.update({**state, "scheme": get_scheme(state["scheme"])})

    def _build(self):
        self._compose = A.Compose(
            build_transforms(self.strength, self.size, self.photometric, self.out_size),
            keypoint_params=A.KeypointParams(format="xy", remove_invisible=False, check_each_transform=False),
            seed=self.seed,
        )
        self._rng = np.random.default_rng(self.seed)

    def __call__(self, image: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """image (H, W, 3) uint8, pts (K, 2) float32 pixels -> the same shapes, augmented together."""
        self.scheme.validate(pts)
        if self.strength == 0.0:
            if self.out_size and self.out_size != image.shape[0]:
                out, out_pts = centre_crop(image[None], np.asarray(pts, np.float32)[None], self.out_size)
                return out[0], out_pts[0]
            return image, np.asarray(pts, np.float32)
        if self._compose is None:
            self._build()
        if self._rng.random() < self.flip_p:
            image = np.ascontiguousarray(image[:, ::-1])
            pts = flip_points(pts, image.shape[1], self.scheme)
        out = self._compose(image=image, keypoints=np.asarray(pts, np.float32))
        return out["image"], np.asarray(out["keypoints"], np.float32)[:, :2]


def make_augmenter(
    strength: float, size: int, scheme: Scheme = IBUG68, seed: int | None = None, out_size: int = 0
) -> Augmenter:
    """An Augmenter at `strength` for size x size crops, returning out_size x out_size ones (0 = size)."""
    return Augmenter(
        strength=float(strength), size=int(size), out_size=int(out_size), scheme=scheme, seed=seed
    )
