"""The generator's version: a short hash of what it draws, so that caches of its faces follow the drawing.

Generated faces are cached under their generator's version (`landmix.inputs`, `generator.json`, the ablation's
rows). `generator_version(look)` renders a few fixed probe samples (`PROBES`: glasses, a hand or an object
over the face, a beard, a bald head, an open mouth, a closed eye, a turned face, and one face in the pose
spread fitted on real faces) with that look and the default `FaceConfig` otherwise, and hashes the bytes of
their images, seg masks and both label sets, with the look's names. So a refactor or a formatter run that
draws the same faces keeps the version, and every cache keyed by it; a changed drawing, shape prior, pose
spread or light softness changes it. The bytes are OpenCV's and numpy's: another version of either that draws
other bytes gives another generator version too, as it should (the cached faces would differ).

The probes cost about 0.1 s per look, once per process (`probe_digest` is cached per look).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from landmix.generate.face3d import FaceConfig
from landmix.generate.sample import make_sample

SEED = 0
SIZE = 112  # px: big enough for the eyes' and the mouth's detail, small enough to be cheap
# (index, pose) under SEED; indices 6, 17 and 35 show glasses, a hand or object, a beard, a bald head, an open
# mouth, a closed eye and a face turned past 35 degrees between them
PROBES = ((6, "wide"), (17, "wide"), (35, "wide"), (0, "real"))


@functools.cache
def probe_digest(look: tuple[str, ...]) -> str:
    """sha1 hex digest of the look's names and the bytes of the probes drawn with it (cached per look)."""
    digest = hashlib.sha1(",".join(look).encode())
    for index, pose in PROBES:
        s = make_sample(SEED, index, SIZE, FaceConfig(pose=pose, look=look))
        for array in (s.image, s.seg, s.xray, s.annotator):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def generator_version(look: tuple[str, ...] | None = None) -> str:
    """ "g" + 10 hex digits: the hash of the probe samples drawn with `look` (None: FaceConfig's default look; ()
    the flat drawing) and the default FaceConfig otherwise; see the module docstring."""
    return "g" + probe_digest(FaceConfig().look if look is None else tuple(look))[:10]
