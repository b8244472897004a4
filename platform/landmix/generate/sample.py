"""One generated sample: `make_sample(seed, index, size)` draws a face (face3d) and renders it (render).

The rng of sample `index` comes from `np.random.SeedSequence([seed, index])`, so sample `index` of `seed` is
the same bytes whatever the sharding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landmix.generate.face3d import Face, FaceConfig, sample_face
from landmix.generate.render import render


@dataclass(frozen=True)
class Sample:
    """One generated face: the image, its seg mask, both label sets and the geometry they came from."""

    image: np.ndarray  # (S, S, 3) uint8 RGB
    seg: np.ndarray  # (S, S) uint8 FaceSynthetics class ids
    xray: np.ndarray  # (70, 2) float32 SYNTH70, 0-based pixels
    annotator: np.ndarray  # (68, 2) float32 IBUG68 human convention, 0-based pixels
    face: Face


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The rng of sample `index` under `seed`: independent of how samples are split into shards."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def make_sample(seed: int, index: int, size: int, cfg: FaceConfig | None = None) -> Sample:
    """Generate sample `index` of `seed` at `size` x `size` pixels (64..512)."""
    if not 32 <= size <= 1024:
        raise ValueError(f"size={size}: the generator draws faces from 32 to 1024 px (64..512 recommended)")
    rng = sample_rng(seed, index)
    cfg = cfg or FaceConfig()
    face = sample_face(rng, cfg, size)
    image, seg = render(face, rng, cfg.look, cfg.light_softness)
    return Sample(image=image, seg=seg, xray=face.xray, annotator=face.annotator, face=face)
