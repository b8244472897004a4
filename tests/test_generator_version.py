"""Tests of the generator's version: it follows what the generator draws, not its source files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import landmix
from landmix.generate import FaceConfig, generator_version
from landmix.generate import version as version_module
from landmix.generate.look import STEPS


def test_version_format_default_look_and_cache():
    v = generator_version()
    assert v.startswith("g") and len(v) == 11 and int(v[1:], 16) >= 0
    # a list after a Ray hop
    assert v == generator_version(FaceConfig().look) == generator_version(list(STEPS))
    assert generator_version(()) != v  # the flat drawing
    assert version_module.probe_digest.cache_info().currsize >= 2  # cached per look: drawn once per process


def test_a_refactor_that_draws_the_same_faces_keeps_the_version(tmp_path):
    """A copy of the package whose renderer's source differs (a comment and an unused function, as a refactor or
    a formatter run leaves it) draws the same faces, so it has the same version."""
    copy = tmp_path / "landmix"
    shutil.copytree(Path(landmix.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    render = copy / "generate" / "render.py"
    original = render.read_text()
    render.write_text(original + "\n\n# moved here by a refactor\ndef _unused() -> None:\n    return None\n")
    assert render.read_text() != original
    code = (
        "import landmix; from landmix.generate import generator_version; "
        "print(landmix.__file__); print(generator_version()); print(generator_version(()))"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    where, default, flat = out.stdout.split()
    assert Path(where).resolve() == (copy / "__init__.py").resolve()  # the copy was imported, not this tree
    assert (default, flat) == (generator_version(), generator_version(()))


def test_a_changed_drawing_changes_the_version(monkeypatch):
    """A step that draws something else changes the version of every look with that step and of no other; a
    changed flat drawing changes the flat look's version; a changed fitted pose spread changes it too."""
    from landmix.generate import render, shape_prior, steps

    default, flat, hairless = generator_version(), generator_version(()), generator_version(("skin",))

    def darker_hair(self, c):  # the hair step drawing something else: the top of the image darker
        c.img[: c.n // 4] *= np.float32(0.5)

    try:
        monkeypatch.setattr(steps.Hair, "light", darker_hair)
        version_module.probe_digest.cache_clear()
        assert generator_version() != default
        assert generator_version(()) == flat and generator_version(("skin",)) == hairless
        monkeypatch.undo()
        flat_background = render.background  # the same draws, painted half as bright
        monkeypatch.setattr(
            render, "background", lambda rng, n, paint=True: flat_background(rng, n, paint) * 0.5
        )
        version_module.probe_digest.cache_clear()
        assert generator_version(()) != flat
        monkeypatch.undo()
        prior = shape_prior.load()
        monkeypatch.setattr(
            shape_prior, "load", lambda: {**prior, "pose_sd": {"yaw": 3.0, "pitch": 3.0, "roll": 3.0}}
        )
        version_module.probe_digest.cache_clear()
        assert generator_version() != default  # a probe is drawn in the fitted ("real") pose spread
    finally:
        monkeypatch.undo()
        version_module.probe_digest.cache_clear()
    assert (generator_version(), generator_version(())) == (default, flat)


# What the generator draws today, per look (its probe faces' bytes). A refactor keeps every one; a change of the
# drawing changes some. When a drawing changes on purpose, update the pin in the same commit: every cache keyed
# by the version (generated faces, prepared shards, pretrainings) is then rebuilt once.
DRAWN = {
    "default": "ga0689af5da",
    "flat": "g8db36b93a8",
    "background": "gb2ce10c2a7",
    "shading": "g2aee933d10",
    "skin": "ga148620762",
    "eyes": "g1b18b9c2b7",
    "hair": "g20c9d94284",
    "camera": "ga2b2da189c",
    "features": "g6115864dcc",
}


def test_the_drawing_of_every_look_is_pinned():
    looks = {"default": None, "flat": (), **{step: (step,) for step in STEPS}}
    assert {name: generator_version(look) for name, look in looks.items()} == DRAWN
