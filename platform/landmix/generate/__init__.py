"""The embedded procedural face generator: 3D landmark model (face3d), 2D renderer (render), Ray job (job).

`make_sample(seed, index, size)` is the whole generator for one sample (sample.py): the rng comes from
`np.random.SeedSequence([seed, index])`, so sample `index` of `seed` is the same bytes whatever the sharding.
`generator_version(look)` hashes what the generator draws (version.py): caches of generated faces are keyed by
it.

Layers, each importing only those before it in this list: look (the step names, the light's range) and
shape_prior (the fitted data, read on first use); face3d (geometry, FaceConfig); draw (seg classes,
primitives); backgrounds, light, texture, features, camera (what is drawn); steps (the Canvas and the look's
typed steps); render; sample; version; then job and recompose (`landmix generate` and its second mode), and
pose_prior and light_prior (the fits run after the shape prior's).
"""

from __future__ import annotations

from landmix.generate.draw import SEG
from landmix.generate.face3d import Face, FaceConfig
from landmix.generate.sample import Sample, make_sample, sample_rng
from landmix.generate.version import generator_version

__all__ = ["SEG", "Face", "FaceConfig", "Sample", "generator_version", "make_sample", "sample_rng"]
