"""The embedded procedural face generator: 3D landmark model (face3d), 2D renderer (render), Ray job (job).

`make_sample(seed, index, size)` is the whole generator for one sample: the rng comes from
`np.random.SeedSequence([seed, index])`, so sample `index` of `seed` is the same bytes whatever the sharding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landmix.generate.canvas import SEG
from landmix.generate.face3d import Face, FaceConfig, sample_face
from landmix.generate.render import render

__all__ = ["SEG", "Face", "FaceConfig", "Sample", "generator_version", "make_sample", "sample_rng"]


def generator_version(look: tuple[str, ...] | None = None) -> str:
    """A short hash of the generator package's source, its fitted data (face_shape.json) and the look (default: FaceConfig's): what a sample looks
    like follows from them, so cached generated faces are keyed by it (`landmix.inputs`) and a changed generator
    never mixes with old faces."""
    import hashlib
    from pathlib import Path

    digest = hashlib.sha1(",".join(FaceConfig().look if look is None else look).encode())
    for path in sorted([*Path(__file__).parent.glob("*.py"), *Path(__file__).parent.glob("*.json")]):
        digest.update(path.name.encode() + path.read_bytes())
    return "g" + digest.hexdigest()[:10]


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
