"""The 2D renderer: draws a `Face` as an RGB image and its FaceSynthetics segmentation mask.

OpenCV polygons, ellipses and blurs over numpy arrays, fast enough for ~100 images/s/core at 128 px.
Every part is drawn from the same projected points the labels come from, so the labels sit on the
drawn features: the skin is the polygon of the visible outline (where the annotator jaw lies), each eye
is the polygon of its six points with the iris centred on the pupil point, the lips are the mouth points.
Appearance (skin tone, light direction and colour, hair, background, glasses, occluders, blur and noise)
is drawn from the same per-sample rng.

`render` draws the flat face in stages on one `Canvas` (landmix.generate.steps): the background, the head
(clothes, hair, neck, ears, skin), the features (brows, nose, eyes, mouth, beard; clipped to what the head
hides), the light, glasses and occluders, the camera. The look's photographic steps (landmix.generate.look)
are typed steps (landmix.generate.steps) whose hooks the stages call in turn; the flat drawing makes the same
draws from the sample's rng whichever steps are on. Seg ids: `SEG` (draw.py).
"""

from __future__ import annotations

import cv2
import numpy as np

from landmix.generate.backgrounds import background
from landmix.generate.camera import flat_camera
from landmix.generate.draw import SEG, SHIFT, box, colour, ellipse, fill, fixed, times
from landmix.generate.face3d import Face
from landmix.generate.features import FaceStyle
from landmix.generate.light import dome, occlusion
from landmix.generate.steps import Canvas, Step, steps_of

__all__ = ["SEG", "background", "render"]

# RGB
_SKIN_TONES = np.array(
    [[224, 198, 180], [198, 160, 134], [170, 124, 95], [130, 88, 62], [90, 58, 42], [236, 212, 196]],
    np.float32,
)
_HAIR_TONES = np.array(
    [[20, 16, 14], [60, 40, 28], [110, 76, 46], [170, 130, 80], [200, 190, 180], [90, 40, 20]], np.float32
)
_FLAT = FaceStyle()


def _eye(img, seg, eye, pupil, cls, iris_rgb, px_mm, rng, upper=None):
    """Sclera, iris and pupil clipped to the eyelid polygon `eye` (its six points, or an outline drawn through
    them); dark upper lid line along `upper` (None: the polygon's first four points, corner to corner)."""
    x0, y0, x1, y1 = box(eye, img.shape, 2, 3)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return
    off = np.array([x0, y0])
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [fixed(eye - off)], 255, cv2.LINE_AA, SHIFT)
    cv2.fillPoly(seg[y0:y1, x0:x1], [fixed(eye - off)], int(cls), cv2.LINE_8, SHIFT)
    layer = np.empty((y1 - y0, x1 - x0, 3), np.float32)
    layer[:] = colour(rng.uniform(200, 240) * np.array([1.0, 0.97, 0.95]))
    r_iris = max(0.55, 5.8 * px_mm)
    c = fixed(pupil - off)[0, 0]
    cv2.circle(layer, c, int(r_iris * 16), colour(iris_rgb), -1, cv2.LINE_AA, SHIFT)
    cv2.circle(layer, c, int(r_iris * 0.45 * 16), (15.0, 12.0, 12.0), -1, cv2.LINE_AA, SHIFT)
    cv2.circle(
        layer,
        fixed(pupil - off + r_iris * 0.55 * np.array([-0.6, -0.8]))[0, 0],
        max(1, int(r_iris * 0.15 * 16)),
        (250.0, 250.0, 250.0),
        -1,
        cv2.LINE_AA,
        SHIFT,
    )
    alpha = mask.astype(np.float32)[..., None] / 255
    roi = img[y0:y1, x0:x1]
    roi[:] = roi * (1 - alpha) + layer * alpha
    upper = eye[[0, 1, 2, 3]] if upper is None else upper
    cv2.polylines(
        img, [fixed(upper)], False, (30.0, 20.0, 20.0), max(1, int(round(1.6 * px_mm))), cv2.LINE_AA, SHIFT
    )


def _occluder(rng, img, seg, face: Face, skin_rgb):
    """A hand (palm + fingers, skin coloured) or an object over a random part of the face; seg 255."""
    pts = face.annotator
    mm = face.px_per_mm
    target = pts[rng.integers(68)] + rng.normal(0, 8 * mm, 2)
    ang = rng.uniform(0, 360)
    layer_seg = np.zeros_like(seg)
    if rng.random() < 0.5:
        col = colour(skin_rgb * rng.uniform(0.85, 1.1))
        d = np.array([np.cos(np.radians(ang)), np.sin(np.radians(ang))])
        palm = target + d * 45 * mm
        cv2.ellipse(
            img,
            fixed(palm)[0, 0],
            (int(40 * mm * 16), int(48 * mm * 16)),
            ang,
            0,
            360,
            col,
            -1,
            cv2.LINE_AA,
            SHIFT,
        )
        cv2.ellipse(
            layer_seg,
            fixed(palm)[0, 0],
            (int(40 * mm * 16), int(48 * mm * 16)),
            ang,
            0,
            360,
            255,
            -1,
            cv2.LINE_8,
            SHIFT,
        )
        perp = np.array([-d[1], d[0]])
        for k in range(4):
            base = palm - d * 30 * mm + perp * (k - 1.5) * 18 * mm
            tip = base - d * rng.uniform(45, 75) * mm
            th = max(1, int(15 * mm))
            cv2.line(img, fixed(base)[0, 0], fixed(tip)[0, 0], col, th, cv2.LINE_AA, SHIFT)
            cv2.line(layer_seg, fixed(base)[0, 0], fixed(tip)[0, 0], 255, th, cv2.LINE_8, SHIFT)
    else:
        col = colour(rng.uniform(0, 255, 3))
        poly = ellipse(target, rng.uniform(12, 45, 2) * mm, ang, n=int(rng.integers(3, 9)))
        poly = poly + rng.normal(0, 4 * mm, poly.shape)
        fill(img, layer_seg, poly, col, 255)
    seg[layer_seg == 255] = 255


def render(
    face: Face, rng: np.random.Generator, look: tuple[str, ...] = (), light_softness: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw `face`: returns image (size, size, 3) uint8 RGB and seg (size, size) uint8 class ids. `look`: the
    photographic steps to add (landmix.generate.look.STEPS); the flat drawing draws the same from rng either way.
    `light_softness`: the shading step's ambient against key light (landmix.generate.look.light_ranges)."""
    steps = steps_of(look, rng, light_softness)
    replaced = {s.replaces for s in steps}
    n = face.size
    img = background(rng, n, paint="background" not in replaced)
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.85, 1.12, 3) ** 0.5
    hair = _HAIR_TONES[rng.integers(len(_HAIR_TONES))] * rng.uniform(0.8, 1.2)
    c = Canvas(face, img, np.zeros((n, n), np.uint8), _FLAT, skin, hair)
    for s in steps:
        s.begin(c)
    for s in steps:
        s.background(c)
    _head(c, rng)
    _features(c, rng, steps)
    _light(c, rng, steps, replaced)
    _accessories(c, rng)
    _camera(c, rng, steps, replaced)
    return c.img, c.seg


def _head(c: Canvas, rng: np.random.Generator) -> None:
    """Clothes, long hair behind the head, the neck, the cranium (hair or bald), the ears, the face's skin (its
    outline polygon: c.face_mask) and the hair above the hairline."""
    face, img, seg, mm, n = c.face, c.img, c.seg, c.mm, c.n
    hairdo = rng.choice(4, p=[0.1, 0.4, 0.35, 0.15])  # 0 bald, 1 short, 2 long, 3 medium
    outline = face.outline
    top = outline[17:]  # cranium part of the outline, image-right round to image-left
    centre = outline.mean(0)
    hull = lambda pts: cv2.convexHull(pts.astype(np.float32))[:, 0]  # noqa: E731
    fill(img, seg, hull(face.shoulders), colour(rng.uniform(0, 255, 3)), SEG["clothing"])
    if hairdo == 2:  # long hair, behind the head
        back = np.vstack(
            [
                top,
                outline[0] + (outline[0] - centre) * 0.25 + [0, 60 * mm],
                outline[16] + (outline[16] - centre) * 0.25 + [0, 60 * mm],
            ]
        )
        back = centre + (back - centre) * 1.12
        fill(img, seg, hull(back), colour(c.hair * 0.8), SEG["hair"])
    fill(img, seg, hull(face.neck), colour(c.style.neck_rgb(c.skin)), SEG["neck"])
    skull = hull(face.skull)
    if hairdo > 0:  # hair volume
        sc = skull.mean(0)
        skull = sc + (skull - sc) * (rng.uniform(1.0, 1.1) + (0.08 if hairdo == 3 else 0.0))
    fill(
        img,
        seg,
        skull,
        colour(c.hair if hairdo > 0 else c.skin * 0.95),
        SEG["hair"] if hairdo > 0 else SEG["skin"],
    )
    for (ear, facing), cls in zip(face.ears, (SEG["ear_l"], SEG["ear_r"])):
        if facing < 0.35:
            ce, t, b, fr, bk = ear
            ax = (max(0.5, np.linalg.norm(fr - bk) / 2), max(0.5, np.linalg.norm(t - b) / 2))
            ang = np.degrees(np.arctan2(*(b - t)[::-1])) - 90
            fill(img, seg, ellipse(ce, ax, ang), colour(c.skin * 0.85), cls)
    # skin: the outline's polygon (drawn through the same points: the annotator jaw on it)
    drawn = c.style.outline(outline)
    c.face_mask = np.zeros((n, n), np.uint8)
    cv2.fillPoly(c.face_mask, [fixed(drawn)], 255, cv2.LINE_AA, SHIFT)
    fill(img, seg, drawn, colour(c.skin), SEG["skin"])
    # hair on top: between the hairline and the enlarged cranium outline, never outside the skull
    if hairdo > 0:
        line = face.hairline + face.down * rng.uniform(-4, 6) * mm
        right = np.array([face.down[1], -face.down[0]]) * 4 * n
        # everything under the hairline
        below = np.vstack(
            [
                line[0] - right,
                line,
                line[-1] + right,
                line[-1] + right + face.down * 4 * n,
                line[0] - right + face.down * 4 * n,
            ]
        )
        cap = np.zeros((n, n), np.uint8)
        cv2.fillPoly(cap, [fixed(below)], 1, cv2.LINE_8, SHIFT)
        cap = (c.face_mask > 0) & (cap == 0)  # the face above the hairline
        img[cap] = colour(c.hair)
        seg[cap] = SEG["hair"]


def _features(c: Canvas, rng: np.random.Generator, steps: list[Step]) -> None:
    """Brows, nose (and the light's direction: c.light), eyes, mouth, teeth, lips, beard; clipped afterwards to
    what the head hides: the skin outline, nose and lips stay visible."""
    pts, mm, skin = c.pts, c.mm, c.skin
    before_img, before_seg = c.img.copy(), c.seg.copy()
    img, seg = c.img, c.seg
    brow_rgb = c.hair * 0.9 if rng.random() < 0.8 else skin * 0.5
    th = rng.uniform(2.5, 5.5) * mm
    for idx, cls in ((slice(17, 22), SEG["brow_l"]), (slice(22, 27), SEG["brow_r"])):
        # the labels on the brow's upper edge
        fill(img, seg, c.style.brow(pts[idx], th), colour(brow_rgb), cls)
    nose = np.vstack(
        [
            pts[27] + [-5 * mm, 0],
            pts[29] + [-6 * mm, 0],
            pts[31] + [-4 * mm, -2 * mm],
            pts[32:35],
            pts[35] + [4 * mm, -2 * mm],
            pts[29] + [6 * mm, 0],
            pts[27] + [5 * mm, 0],
        ]
    )
    fill(img, seg, nose, colour(skin), SEG["nose"])
    light = rng.normal(0, 1, 3) * [1, 0.7, 0] + [0, 0, 1.2]
    light /= np.linalg.norm(light)
    c.light = light
    side = 1 if light[0] < 0 else -1  # the nose side away from the light
    shadow = np.vstack([pts[27] + [side * 2 * mm, 0], pts[30], pts[31 if side < 0 else 35], pts[33]])
    cv2.fillPoly(img, [fixed(shadow)], colour(skin * 0.9), cv2.LINE_AA, SHIFT)
    for p in (pts[32], pts[34]):  # the nostrils above the nose's lower edge, where the labels are
        axes = (max(8, int(3 * mm * 16)), max(6, int(1.8 * mm * 16)))
        cv2.ellipse(
            img, fixed(p + [0, -2.0 * mm])[0, 0], axes, 0, 0, 360, colour(skin * 0.45), -1, cv2.LINE_AA, SHIFT
        )
    cv2.circle(
        img,
        fixed(pts[30] + [-light[0] * 3 * mm, -3 * mm])[0, 0],
        max(8, int(2.5 * mm * 16)),
        colour(skin * 1.12),
        -1,
        cv2.LINE_AA,
        SHIFT,
    )
    iris = _HAIR_TONES[rng.integers(4)] * 0.7 + rng.uniform(0, 80, 3)
    for eye, pupil, cls in ((pts[36:42], pts[68], SEG["eye_l"]), (pts[42:48], pts[69], SEG["eye_r"])):
        lids, upper = c.style.eye(eye)
        _eye(img, seg, lids, pupil, cls, iris, mm, rng, upper=upper)
    for s in steps:
        s.eyes(c)
    lip_rgb = c.style.lip_rgb(skin, skin * np.array([0.95, 0.62, 0.62]) * rng.uniform(0.75, 1.05))
    mouth, upper_lip, lower_lip = c.style.lips(pts)
    fill(c.img, seg, mouth, (60.0, 25.0, 30.0), SEG["mouth"])
    c.lips_closed = np.linalg.norm(pts[[61, 62, 63]] - pts[[67, 66, 65]], axis=1).mean() < max(1.0, 2 * mm)
    c.style.teeth(c.img, c.face, c.lips_closed)
    fill(c.img, seg, upper_lip, colour(lip_rgb), SEG["lip_top"])
    fill(c.img, seg, lower_lip, colour(lip_rgb * 1.08), SEG["lip_bottom"])
    for s in steps:
        s.mouth(c)
    if rng.random() < 0.15:  # beard
        beard = np.vstack([c.face.annotator[3:14], pts[[54, 55, 56, 57, 58, 59, 48]] + [0, 5 * mm]])
        fill(c.img, seg, beard, colour(c.hair * 0.9), SEG["beard"])
        above = np.vstack([pts[48:55] + [0, -4 * mm], pts[54:47:-1] + [0, -1 * mm]])  # the moustache
        fill(c.img, seg, above, colour(c.hair * 0.9), SEG["beard"])
    visible = c.face_mask.copy()
    cv2.fillPoly(visible, [fixed(nose), fixed(pts[48:60])], 255, cv2.LINE_8, SHIFT)
    hidden = visible == 0
    np.copyto(c.img, before_img, where=hidden[..., None])
    np.copyto(seg, before_seg, where=hidden)


def _light(c: Canvas, rng: np.random.Generator, steps: list[Step], replaced: set) -> None:
    """Light the drawn face: the flat dome (a smooth normal from the blurred face mask, Lambert with a coloured
    light) darkened by ambient occlusion, unless a step lights it instead (its draws are made either way)."""
    light_rgb = (rng.uniform(0.85, 1.15) * (1 + rng.normal(0, 0.05, 3))).astype(np.float32)
    lo, hi = np.float32(rng.uniform(0.35, 0.6)), np.float32(rng.uniform(0.5, 0.8))
    c.occlusion = occlusion(c.pts, c.face_mask, c.mm)
    occl_k = np.float32(rng.uniform(0.15, 0.4))
    if "light" not in replaced:
        c.shade = dome(c.face_mask, c.face.outline, c.light, lo, hi)
        c.shade *= 1 - occl_k * c.occlusion
    for s in steps:
        s.light(c)
    c.shade[c.seg == 0] = 1.0
    # OpenCV's per-channel arithmetic; the flat drawing keeps numpy's, so that its bytes do not change
    if steps:
        img = times(c.img, c.shade.astype(np.float32))
        if c.specular is not None:
            img += cv2.merge([c.specular, c.specular, c.specular])
        c.img = cv2.transform(img, np.diag(light_rgb).astype(np.float32))
    else:
        c.img = c.img * c.shade[..., None] * light_rgb


def _accessories(c: Canvas, rng: np.random.Generator) -> None:
    """Glasses on some faces (rims around both eyes, a bridge, optional dark lenses); a hand or an object over
    the face on others (seg 255)."""
    img, seg, pts, mm = c.img, c.seg, c.pts, c.mm
    if rng.random() < 0.2:
        gl = np.zeros_like(seg)
        col = colour(rng.uniform(0, 120, 3))
        thick = max(1, int(round(rng.uniform(1.2, 3.0) * mm)))
        dark = rng.random() < 0.3
        for eye in (pts[36:42], pts[42:48]):
            w = np.linalg.norm(eye[3] - eye[0])
            ang = np.degrees(np.arctan2(*(eye[3] - eye[0])[::-1]))
            rim = ellipse(eye.mean(0) + [0, 1.5 * mm], (w * 0.8 + 4 * mm, w * 0.5 + 3 * mm), ang)
            if dark:
                fill(img, gl, rim, (20.0, 20.0, 25.0), 255)
            cv2.polylines(img, [fixed(rim)], True, col, thick, cv2.LINE_AA, SHIFT)
            cv2.polylines(gl, [fixed(rim)], True, 255, thick, cv2.LINE_8, SHIFT)
        bridge = (fixed(pts[39] + [0, -2 * mm])[0, 0], fixed(pts[42] + [0, -2 * mm])[0, 0])
        cv2.line(img, *bridge, col, thick, cv2.LINE_AA, SHIFT)
        seg[gl == 255] = SEG["glasses"]
    if rng.random() < 0.25:
        _occluder(rng, img, seg, c.face, c.skin)


def _camera(c: Canvas, rng: np.random.Generator, steps: list[Step], replaced: set) -> None:
    """Take the picture: the flat camera's blur, noise and exposure (drawn with or without the camera step)."""
    c.blur = rng.uniform(0.2, 0.9) * c.n / 128
    noise_seed, noise_sigma = int(rng.integers(2**31)), float(rng.uniform(1, 7))
    c.exposure = float(rng.uniform(0.75, 1.2))
    c.img = c.img.astype(np.float32)
    for s in steps:
        s.camera(c)
    if "camera" not in replaced:
        c.img = flat_camera(c.img, c.blur, noise_seed, noise_sigma, c.exposure)
