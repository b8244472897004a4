"""The photographic look of a generated face: the names of the steps the renderer adds on top of its flat
drawing, and the range of the shading step's light.

Nothing of the drawing lives here: the face's geometry (face3d: `FaceConfig.look`,
`FaceConfig.light_softness`) checks a look against this module without importing the renderer. Each step is a
typed step (landmix.generate.steps) that the renderer (landmix.generate.render) applies at its places in the
drawing, in `STEPS` order; `FaceConfig.look` names the steps a sample gets, so the ablation
(bench/generator_ablation.py) can switch them on one at a time. Each step draws from its own rng
(`steps.step_rngs`), spawned from the sample's without drawing from it: with no step on, a sample is the same
bytes as before the steps existed, and switching one step on does not change what the others draw.

- background (backgrounds.py): a natural-image spectrum (1/f^beta noise in muted colours) with soft
  out-of-focus shapes, in place of saturated flat shapes and lines.
- shading (light.py): a height map of the face from its landmarks (head dome, brow ridge, nose, cheekbones,
  lips, chin, eye sockets), its normals lit by a key light drawn from above-front, a fill light and ambient,
  with Blinn-Phong highlights on the skin. How soft the light is (ambient against key, `light_ranges`) is
  fitted on real photos (landmix.generate.light_prior): hard key light drew faces far more contrasted than the
  photos.
- skin (texture.py): texture at several scales (pores, mottling), redness on cheeks and nose, freckles,
  blemishes, make-up on some faces.
- eyes (texture.py): a radial iris texture with a dark limbal ring, the upper lid's shadow on the sclera,
  lashes.
- hair (texture.py): strands, as noise streaked along the hair's fall, on hair, beard and brows.
- camera (camera.py): white balance, vignetting, signal-dependent sensor noise, a lower sensor resolution,
  JPEG.
- features (features.py, and the neck's light in light.py): what photos show of the features and the flat
  drawing lacks: the dark line where closed lips meet and the mouth's corners, lips nearer the skin's colour,
  the nose wings' creases, the upper lid's crease and the lower lid, faint nasolabial folds (soft lines
  darkening the skin), lit sclera (the eyeball catches light the socket around it does not), teeth in every
  open mouth, the neck in the face's skin and lit as the face is with the chin's soft shadow on it, the face
  filled round through its outline's points (`rounded`), and the lids, lips and brows drawn round through
  their labels, sharp only at the eyes' and the mouth's corners (`rounded_path`, `rounded_between_corners`).
"""

from __future__ import annotations

STEPS = ("background", "shading", "skin", "eyes", "hair", "camera", "features")  # the ablation's order


def light_ranges(softness: float) -> dict[str, tuple[float, float]]:
    """The uniform ranges the shading draws its ambient, key and fill strengths from, at `softness` in [0, 1]:
    0 = the hard key light the look was first drawn with (ambient 0.25-0.45, key 0.6-0.9, fill 0-0.25), 1 = mostly
    ambient (0.65-0.85, key 0.15-0.4, fill 0.1-0.3). The generator draws at the softness fitted on real photos
    (FaceConfig.light_softness, landmix.generate.light_prior)."""
    s = float(softness)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"light_softness={softness}: use 0 (hard key light) .. 1 (mostly ambient)")
    return {
        "ambient": (0.25 + 0.4 * s, 0.45 + 0.4 * s),
        "key": (0.6 - 0.45 * s, 0.9 - 0.5 * s),
        "fill": (0.1 * s, 0.25 + 0.05 * s),
    }
