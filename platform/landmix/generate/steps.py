"""The look's photographic steps as typed steps, one class per name of `look.STEPS`, applied to a `Canvas`.

`Canvas` is the state the renderer's flat drawing and the steps share while one face is drawn: the image, its
seg mask, the colours, the face mask, the light. The renderer (landmix.generate.render) draws the flat face in
stages and, at each stage, calls that stage's hook of every step of the look, in `STEPS` order:

    begin       before the head is drawn: how the face's parts will be drawn (features: `RoundStyle`)
    background  after the flat background's draws: background paints its own
    eyes        after the eyes: eyes adds iris, lids and lashes
    mouth       after the lips: features darkens the folds
    light       after the features are clipped to the head, before the image is lit: shading replaces the flat
                dome's light, skin and hair texture the image, features lights the eyes and the neck
    camera      after every draw of the flat camera: camera takes the picture itself

A hook does nothing unless its step overrides it. A step that paints a part instead of the flat drawing says
so in `replaces` ("background", "light", "camera"): the flat drawing then makes that part's draws from the
sample's rng and paints nothing, so the rest of the sample draws what it draws without the step. Each step
draws from its own rng (`step_rngs`), so switching one on does not change what the others draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from landmix.generate import backgrounds, camera, features, light, texture
from landmix.generate.draw import of_class, times
from landmix.generate.face3d import Face
from landmix.generate.features import FaceStyle
from landmix.generate.look import STEPS


@dataclass
class Canvas:
    """One face being drawn. The drawing fills the fields in its order (background and colours first, the face
    mask with the head, the light after the features, the camera's last); a step reads what is there at its
    stage and may replace it."""

    face: Face
    img: np.ndarray  # (n, n, 3) float32 RGB 0..255; (n, n, 3) uint8 once the camera has taken it
    seg: np.ndarray  # (n, n) uint8 SEG class ids
    style: (
        FaceStyle  # how the face's parts are drawn (features.FaceStyle; the features step draws them round)
    )
    skin: np.ndarray  # (3,) float RGB of the face's skin
    hair: np.ndarray  # (3,) float RGB of the hair
    face_mask: np.ndarray | None = None  # (n, n) uint8, 255 inside the drawn skin outline
    lips_closed: bool = False  # the inner lips nearer than 2 mm (or a pixel): where they meet is a line
    light: np.ndarray | None = None  # (3,) unit light direction of the flat drawing (x right, y down, z out)
    occlusion: np.ndarray | None = (
        None  # (n, n) float32 0..1 ambient occlusion: eye sockets, under nose and lip
    )
    shade: np.ndarray | None = None  # (n, n) float32 light factor the image is multiplied by
    specular: np.ndarray | None = None  # (n, n) float32 0..255 highlights added after the shade, or None
    blur: float = 0.0  # px, the lens blur the camera draws
    exposure: float = 1.0  # the camera's exposure factor

    @property
    def n(self) -> int:
        return self.face.size

    @property
    def mm(self) -> float:
        return self.face.px_per_mm

    @property
    def pts(self) -> np.ndarray:
        return self.face.xray


def step_rngs(rng: np.random.Generator) -> dict[str, np.random.Generator]:
    """One rng per step, spawned from the sample's seed sequence (the sample's own stream is not advanced); a step
    added at the end of STEPS gets a new child and leaves the others' as they were."""
    return {s: np.random.default_rng(c) for s, c in zip(STEPS, rng.bit_generator.seed_seq.spawn(len(STEPS)))}


@dataclass
class Step:
    """One photographic step: its hooks, called at their stage of the drawing (module docstring)."""

    rng: np.random.Generator  # the step's own rng (step_rngs)
    name: ClassVar[str]
    replaces: ClassVar[str | None] = None  # the part of the flat drawing the step paints instead

    def begin(self, c: Canvas) -> None: ...

    def background(self, c: Canvas) -> None: ...

    def eyes(self, c: Canvas) -> None: ...

    def mouth(self, c: Canvas) -> None: ...

    def light(self, c: Canvas) -> None: ...

    def camera(self, c: Canvas) -> None: ...


class Background(Step):
    """A natural-image background in place of the flat one."""

    name, replaces = "background", "background"

    def background(self, c):
        c.img = backgrounds.natural_background(self.rng, c.n)


@dataclass
class Shading(Step):
    """The relief of the face's height map, lit by key, fill and ambient light, in place of the flat dome."""

    softness: float = 0.0  # ambient against key light, 0..1 (look.light_ranges)
    name, replaces = "shading", "light"

    def light(self, c):
        skin_like = of_class(c.seg, "skin", "nose", "lip_top", "lip_bottom")
        diffuse, spec = light.shade(self.rng, light.height_map(c.face, c.face_mask), skin_like, self.softness)
        c.shade = diffuse * (1 - np.float32(0.3) * c.occlusion)
        c.specular = spec * 255


class Skin(Step):
    """Skin texture, and make-up on the lips and in the eye sockets' upper part on some faces."""

    name = "skin"

    def light(self, c):
        skin_mask = of_class(c.seg, "skin", "nose", "neck", "ear_l", "ear_r")
        c.img = c.img * texture.skin_texture(self.rng, c.face, skin_mask)
        above_eyes = np.arange(c.n)[:, None] < c.pts[36:48, 1].max()
        lids = (c.occlusion > 0.5) & skin_mask & above_eyes  # the eye sockets' upper part, not under the nose
        texture.makeup(self.rng, c.img, of_class(c.seg, "lip_top", "lip_bottom"), lids)


class Eyes(Step):
    """Iris streaks and ring, the upper lid's shadow, lashes."""

    name = "eyes"

    def eyes(self, c):
        for eye, pupil in ((c.pts[36:42], c.pts[68]), (c.pts[42:48], c.pts[69])):
            texture.eye_detail(self.rng, c.img, eye, pupil, max(0.55, 5.8 * c.mm), c.mm)


class Hair(Step):
    """Strands on hair, beard and brows."""

    name = "hair"

    def light(self, c):
        hair = of_class(c.seg, "hair", "beard", "brow_l", "brow_r")
        texture.hair_strands(self.rng, c.img, hair, c.face.down, c.mm)


class Camera(Step):
    """The photographic camera in place of the flat one, at the flat camera's blur and exposure."""

    name, replaces = "camera", "camera"

    def camera(self, c):
        c.img = camera.camera(self.rng, c.img * np.float32(c.exposure), blur=c.blur)


class Features(Step):
    """The parts drawn round (`features.RoundStyle`), the folds darkened, the eyes and the neck lit as the face."""

    name = "features"

    def begin(self, c):
        c.style = features.RoundStyle(self.rng)

    def mouth(self, c):
        c.img = times(c.img, 1 - features.feature_lines(self.rng, c.face, c.lips_closed))

    def light(self, c):
        c.shade = light.as_the_face(self.rng, c.shade, c.seg, c.face_mask, c.mm)


KINDS = (Background, Shading, Skin, Eyes, Hair, Camera, Features)  # in STEPS order (tests check the names)


def steps_of(look: tuple[str, ...], rng: np.random.Generator, light_softness: float = 0.0) -> list[Step]:
    """The steps of `look` (names from STEPS), in STEPS order, each with its rng; none for the flat drawing (whose
    sample rng then spawns nothing)."""
    if not look:
        return []
    rngs = step_rngs(rng)
    return [
        Shading(rngs[k.name], light_softness) if k is Shading else k(rngs[k.name])
        for k in KINDS
        if k.name in look
    ]
