"""The 2D renderer: draws a `Face` as an RGB image and its FaceSynthetics segmentation mask.

OpenCV polygons, ellipses and blurs over numpy arrays, fast enough for ~100 images/s/core at 128 px.
Every part is drawn from the same projected points the labels come from, so the labels sit on the
drawn features: the skin is the polygon of the visible outline (where the annotator jaw lies), each eye
is the polygon of its six points with the iris centred on the pupil point, the lips are the mouth points.
Appearance (skin tone, light direction and colour, hair, background, glasses, occluders, blur and noise)
is drawn from the same per-sample rng.

Seg ids follow FaceSynthetics as released, whose left/right name the IMAGE side: the image-left eye
(points 36-41, pupil 68) is 4 "left eye", the image-right eye (42-47, pupil 69) is 3; brows 6 / 5; ears 8 / 7.
Hands and objects in front of the face are 255 (ignore).
"""

from __future__ import annotations

import cv2
import numpy as np

from landmix.generate import look as looks
from landmix.generate.face3d import Face

SEG = {"bg": 0, "skin": 1, "nose": 2, "eye_r": 3, "eye_l": 4, "brow_r": 5, "brow_l": 6, "ear_r": 7,
       "ear_l": 8, "mouth": 9, "lip_top": 10, "lip_bottom": 11, "neck": 12, "hair": 13, "beard": 14,
       "clothing": 15, "glasses": 16, "headwear": 17, "facewear": 18, "ignore": 255}  # fmt: skip
_SHIFT = 4  # fixed-point bits for sub-pixel polygon vertices
_SKIN_TONES = np.array([[224, 198, 180], [198, 160, 134], [170, 124, 95], [130, 88, 62], [90, 58, 42],
                        [236, 212, 196]], np.float32)  # RGB  # fmt: skip
_HAIR_TONES = np.array([[20, 16, 14], [60, 40, 28], [110, 76, 46], [170, 130, 80], [200, 190, 180],
                        [90, 40, 20]], np.float32)  # fmt: skip


def _fx(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts, np.float64) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def _poly(img, seg, pts, color, cls=None):
    cv2.fillPoly(img, [_fx(pts)], color, cv2.LINE_AA, _SHIFT)
    if cls is not None:
        cv2.fillPoly(seg, [_fx(pts)], int(cls), cv2.LINE_8, _SHIFT)


def _of_class(seg: np.ndarray, *names: str) -> np.ndarray:
    """(n, n) bool: where seg holds one of the SEG classes `names` (a lookup table: np.isin sorts per call)."""
    table = np.zeros(256, bool)
    table[[SEG[k] for k in names]] = True
    return table[seg]


def _col(rgb) -> tuple:
    return tuple(float(v) for v in np.clip(rgb, 0, 255))


def background(rng: np.random.Generator, size: int, paint: bool = True) -> np.ndarray | None:
    """(size, size, 3) float32: a gradient, a smooth texture or clutter, or a mix. paint=False makes the same
    draws from rng and paints nothing (returns None): the look's own background replaces it, and the rest of
    the sample must draw what it draws in the flat drawing."""
    kind = rng.integers(4)
    c0, c1 = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    img = None
    if paint:
        t = np.linspace(0, 1, size, dtype=np.float32)
        ramp = (np.float32(np.cos(a)) * t[None, :] + np.float32(np.sin(a)) * t[:, None] + 1.5) / 3
        img = c0 + (c1 - c0) * ramp[..., None]
    if kind >= 1:  # smooth random texture at a random scale
        cells = int(rng.integers(3, 24))
        noise = rng.uniform(-1, 1, (cells, cells, 3)).astype(np.float32)
        amp = rng.uniform(10, 70)
        if paint:
            img += cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC) * amp
    if kind >= 2:  # clutter: rectangles, circles and lines in random colours
        for _ in range(int(rng.integers(3, 14))):
            col, p = _col(rng.uniform(0, 255, 3)), rng.uniform(-0.2, 1.2, 4) * size
            shape = rng.integers(3)
            if shape == 0:
                if paint:
                    cv2.rectangle(img, _fx(p[:2])[0, 0], _fx(p[2:])[0, 0], col, -1, cv2.LINE_AA, _SHIFT)
            elif shape == 1:
                radius = int(rng.uniform(0.03, 0.3) * size * 16)
                if paint:
                    cv2.circle(img, _fx(p[:2])[0, 0], radius, col, -1, cv2.LINE_AA, _SHIFT)
            else:
                thick = max(1, int(rng.uniform(0.005, 0.04) * size))
                if paint:
                    cv2.line(img, _fx(p[:2])[0, 0], _fx(p[2:])[0, 0], col, thick, cv2.LINE_AA, _SHIFT)
        if kind == 3:
            k = int(rng.integers(1, 4)) * 2 + 1
            if paint:
                img = cv2.GaussianBlur(img, (k, k), 0)
    return np.clip(img, 0, 255).astype(np.float32) if paint else None


def _ellipse_pts(centre, axes, angle_deg, n=24) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    a = np.radians(angle_deg)
    x, y = axes[0] * np.cos(t), axes[1] * np.sin(t)
    return np.stack([centre[0] + x * np.cos(a) - y * np.sin(a), centre[1] + x * np.sin(a) + y * np.cos(a)], 1)


def _eye(img, seg, eye, pupil, cls, iris_rgb, px_mm, rng, upper=None):
    """Sclera, iris and pupil clipped to the eyelid polygon `eye` (its six points, or an outline drawn through
    them); dark upper lid line along `upper` (None: the polygon's first four points, corner to corner)."""
    x0, y0, x1, y1 = looks.box(eye, img.shape, 2, 3)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return
    off = np.array([x0, y0])
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [_fx(eye - off)], 255, cv2.LINE_AA, _SHIFT)
    cv2.fillPoly(seg[y0:y1, x0:x1], [_fx(eye - off)], int(cls), cv2.LINE_8, _SHIFT)
    layer = np.empty((y1 - y0, x1 - x0, 3), np.float32)
    layer[:] = _col(rng.uniform(200, 240) * np.array([1.0, 0.97, 0.95]))
    r_iris = max(0.55, 5.8 * px_mm)
    c = _fx(pupil - off)[0, 0]
    cv2.circle(layer, c, int(r_iris * 16), _col(iris_rgb), -1, cv2.LINE_AA, _SHIFT)
    cv2.circle(layer, c, int(r_iris * 0.45 * 16), (15.0, 12.0, 12.0), -1, cv2.LINE_AA, _SHIFT)
    cv2.circle(
        layer,
        _fx(pupil - off + r_iris * 0.55 * np.array([-0.6, -0.8]))[0, 0],
        max(1, int(r_iris * 0.15 * 16)),
        (250.0, 250.0, 250.0),
        -1,
        cv2.LINE_AA,
        _SHIFT,
    )
    alpha = mask.astype(np.float32)[..., None] / 255
    roi = img[y0:y1, x0:x1]
    roi[:] = roi * (1 - alpha) + layer * alpha
    upper = eye[[0, 1, 2, 3]] if upper is None else upper
    cv2.polylines(
        img, [_fx(upper)], False, (30.0, 20.0, 20.0), max(1, int(round(1.6 * px_mm))), cv2.LINE_AA, _SHIFT
    )


def _occluder(rng, img, seg, face: Face, skin_rgb):
    """A hand (palm + fingers, skin coloured) or an object over a random part of the face; seg 255."""
    pts = face.annotator
    mm = face.px_per_mm
    target = pts[rng.integers(68)] + rng.normal(0, 8 * mm, 2)
    ang = rng.uniform(0, 360)
    layer_seg = np.zeros_like(seg)
    if rng.random() < 0.5:
        col = _col(skin_rgb * rng.uniform(0.85, 1.1))
        d = np.array([np.cos(np.radians(ang)), np.sin(np.radians(ang))])
        palm = target + d * 45 * mm
        cv2.ellipse(
            img,
            _fx(palm)[0, 0],
            (int(40 * mm * 16), int(48 * mm * 16)),
            ang,
            0,
            360,
            col,
            -1,
            cv2.LINE_AA,
            _SHIFT,
        )
        cv2.ellipse(
            layer_seg,
            _fx(palm)[0, 0],
            (int(40 * mm * 16), int(48 * mm * 16)),
            ang,
            0,
            360,
            255,
            -1,
            cv2.LINE_8,
            _SHIFT,
        )
        perp = np.array([-d[1], d[0]])
        for k in range(4):
            base = palm - d * 30 * mm + perp * (k - 1.5) * 18 * mm
            tip = base - d * rng.uniform(45, 75) * mm
            th = max(1, int(15 * mm))
            cv2.line(img, _fx(base)[0, 0], _fx(tip)[0, 0], col, th, cv2.LINE_AA, _SHIFT)
            cv2.line(layer_seg, _fx(base)[0, 0], _fx(tip)[0, 0], 255, th, cv2.LINE_8, _SHIFT)
    else:
        col = _col(rng.uniform(0, 255, 3))
        poly = _ellipse_pts(target, rng.uniform(12, 45, 2) * mm, ang, n=int(rng.integers(3, 9)))
        poly = poly + rng.normal(0, 4 * mm, poly.shape)
        _poly(img, layer_seg, poly, col, 255)
    seg[layer_seg == 255] = 255


def render(face: Face, rng: np.random.Generator, look: tuple[str, ...] = (),
           light_softness: float = 0.0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Draw `face`: returns image (size, size, 3) uint8 RGB and seg (size, size) uint8 class ids. `look`: the
    photographic steps to add (landmix.generate.look.STEPS); the flat drawing draws the same from rng either way.
    `light_softness`: the shading step's ambient against key light (landmix.generate.look.light_ranges)."""
    n = face.size
    mm = face.px_per_mm
    pts = face.xray
    lr = looks.step_rngs(rng) if look else {}
    img = background(rng, n, paint="background" not in look)
    if "background" in look:
        img = looks.natural_background(lr["background"], n)
    seg = np.zeros((n, n), np.uint8)
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.85, 1.12, 3) ** 0.5
    hair_rgb = _HAIR_TONES[rng.integers(len(_HAIR_TONES))] * rng.uniform(0.8, 1.2)
    style = rng.choice(4, p=[0.1, 0.4, 0.35, 0.15])  # 0 bald, 1 short, 2 long, 3 medium
    outline = face.outline
    top = outline[17:]  # cranium part of the outline, image-right round to image-left
    centre = outline.mean(0)

    # clothing, long hair behind, neck, ears
    _poly(
        img,
        seg,
        cv2.convexHull(face.shoulders.astype(np.float32))[:, 0],
        _col(rng.uniform(0, 255, 3)),
        SEG["clothing"],
    )
    if style == 2:
        back = np.vstack(
            [
                top,
                outline[0] + (outline[0] - centre) * 0.25 + [0, 60 * mm],
                outline[16] + (outline[16] - centre) * 0.25 + [0, 60 * mm],
            ]
        )
        back = centre + (back - centre) * 1.12
        _poly(img, seg, cv2.convexHull(back.astype(np.float32))[:, 0], _col(hair_rgb * 0.8), SEG["hair"])
    neck_rgb = skin if "features" in look else skin * 0.8  # the features step lights the neck as the face (below)
    _poly(img, seg, cv2.convexHull(face.neck.astype(np.float32))[:, 0], _col(neck_rgb), SEG["neck"])
    skull = cv2.convexHull(face.skull.astype(np.float32))[:, 0]
    if style > 0:  # hair volume
        sc = skull.mean(0)
        skull = sc + (skull - sc) * (rng.uniform(1.0, 1.1) + (0.08 if style == 3 else 0.0))
    _poly(
        img,
        seg,
        skull,
        _col(hair_rgb if style > 0 else skin * 0.95),
        SEG["hair"] if style > 0 else SEG["skin"],
    )
    for (ear, facing), cls in zip(face.ears, (SEG["ear_l"], SEG["ear_r"])):
        if facing < 0.35:
            c, t, b, fr, bk = ear
            ax = (max(0.5, np.linalg.norm(fr - bk) / 2), max(0.5, np.linalg.norm(t - b) / 2))
            ang = np.degrees(np.arctan2(*(b - t)[::-1])) - 90
            _poly(img, seg, _ellipse_pts(c, ax, ang), _col(skin * 0.85), cls)

    # skin: outline polygon, shaded from a random light
    drawn = looks.rounded(outline) if "features" in look else outline  # through the same points: labels on it
    face_mask = np.zeros((n, n), np.uint8)
    cv2.fillPoly(face_mask, [_fx(drawn)], 255, cv2.LINE_AA, _SHIFT)
    _poly(img, seg, drawn, _col(skin), SEG["skin"])
    # hair on top: between the hairline and the enlarged cranium outline, never outside the skull
    if style > 0:
        line = face.hairline + face.down * rng.uniform(-4, 6) * mm
        right = np.array([face.down[1], -face.down[0]]) * 4 * n
        below = np.vstack(
            [
                line[0] - right,
                line,
                line[-1] + right,
                line[-1] + right + face.down * 4 * n,
                line[0] - right + face.down * 4 * n,
            ]
        )  # everything under the hairline
        cap = np.zeros((n, n), np.uint8)
        cv2.fillPoly(cap, [_fx(below)], 1, cv2.LINE_8, _SHIFT)
        cap = (face_mask > 0) & (cap == 0)  # the face above the hairline
        img[cap] = _col(hair_rgb)
        seg[cap] = SEG["hair"]

    # facial features, clipped afterwards to what the head hides: skin outline, nose and lips stay visible
    before_img, before_seg = img.copy(), seg.copy()
    brow_rgb = hair_rgb * 0.9 if rng.random() < 0.8 else skin * 0.5
    th = rng.uniform(2.5, 5.5) * mm
    for idx, cls in ((slice(17, 22), SEG["brow_l"]), (slice(22, 27), SEG["brow_r"])):
        b = pts[idx]
        poly = np.vstack([b + [0, -th * 0.1], (b + [0, th * 1.2])[::-1]])  # the labels on the brow's upper edge
        poly[[0, -1]] = b[0]
        if "features" in look:  # a round brow through its points (a polygon draws a corner at every label)
            poly = np.vstack([looks.rounded_path(b + [0, -th * 0.1]), looks.rounded_path((b + [0, th * 1.2])[::-1])])
            poly[[0, -1]] = b[0]
        _poly(img, seg, poly, _col(brow_rgb), cls)
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
    _poly(img, seg, nose, _col(skin), SEG["nose"])
    light = rng.normal(0, 1, 3) * [1, 0.7, 0] + [0, 0, 1.2]
    light /= np.linalg.norm(light)
    side = 1 if light[0] < 0 else -1  # the nose side away from the light
    shadow = np.vstack([pts[27] + [side * 2 * mm, 0], pts[30], pts[31 if side < 0 else 35], pts[33]])
    cv2.fillPoly(img, [_fx(shadow)], _col(skin * 0.9), cv2.LINE_AA, _SHIFT)
    for p in (pts[32], pts[34]):  # the nostrils above the nose's lower edge, where the labels are
        cv2.ellipse(
            img,
            _fx(p + [0, -2.0 * mm])[0, 0],
            (max(8, int(3 * mm * 16)), max(6, int(1.8 * mm * 16))),
            0,
            0,
            360,
            _col(skin * 0.45),
            -1,
            cv2.LINE_AA,
            _SHIFT,
        )
    cv2.circle(
        img,
        _fx(pts[30] + [-light[0] * 3 * mm, -3 * mm])[0, 0],
        max(8, int(2.5 * mm * 16)),
        _col(skin * 1.12),
        -1,
        cv2.LINE_AA,
        _SHIFT,
    )
    iris = _HAIR_TONES[rng.integers(4)] * 0.7 + rng.uniform(0, 80, 3)
    for eye, pupil, cls in ((pts[36:42], pts[68], SEG["eye_l"]), (pts[42:48], pts[69], SEG["eye_r"])):
        if "features" in look:  # the lids drawn round between the eye's corners, through the labels
            lid = looks.rounded_path(eye[[0, 1, 2, 3]])
            _eye(img, seg, looks.rounded_between_corners(eye, (0, 3)), pupil, cls, iris, mm, rng, upper=lid)
        else:
            _eye(img, seg, eye, pupil, cls, iris, mm, rng)
    if "eyes" in look:
        for eye, pupil in ((pts[36:42], pts[68]), (pts[42:48], pts[69])):
            looks.eye_detail(lr["eyes"], img, eye, pupil, max(0.55, 5.8 * mm), mm)
    lip_rgb = skin * np.array([0.95, 0.62, 0.62]) * rng.uniform(0.75, 1.05)
    if "features" in look:  # photographed lips are nearer the skin's colour than the flat drawing's
        lip_rgb = skin * np.array([0.97, 0.74, 0.76]) * (0.85 + 0.3 * (lip_rgb[0] / skin[0] - 0.7))
    if "features" in look:  # the lips drawn round between the mouth's corners, through the labels
        mouth = looks.rounded_between_corners(pts[60:68], (0, 4))
        upper_lip = np.vstack([looks.rounded_path(pts[48:55]), looks.rounded_path(pts[[64, 63, 62, 61, 60]])])
        lower_lip = np.vstack([looks.rounded_path(pts[[54, 55, 56, 57, 58, 59, 48]]),
                               looks.rounded_path(pts[[60, 67, 66, 65, 64]])])  # fmt: skip
    else:
        mouth = pts[60:68]
        upper_lip = np.vstack([pts[48:55], pts[[64, 63, 62, 61, 60]]])
        lower_lip = np.vstack([pts[[54, 55, 56, 57, 58, 59, 48]], pts[[60, 67, 66, 65, 64]]])
    _poly(img, seg, mouth, (60.0, 25.0, 30.0), SEG["mouth"])
    lips_closed = np.linalg.norm(pts[[61, 62, 63]] - pts[[67, 66, 65]], axis=1).mean() < max(1.0, 2 * mm)
    if "features" in look:  # teeth in every open mouth, as smiles show them
        if not lips_closed:
            looks.teeth(lr["features"], img, pts, face.down, mm)
    elif face.mouth_open > 0.3:
        teeth = np.vstack([pts[60:65], (pts[60:65] + [0, 3 * mm])[::-1]])
        _poly(img, seg, teeth, (225.0, 220.0, 205.0))
    _poly(img, seg, upper_lip, _col(lip_rgb), SEG["lip_top"])
    _poly(img, seg, lower_lip, _col(lip_rgb * 1.08), SEG["lip_bottom"])
    if "features" in look:  # the folds where the features meet: lips, mouth corners, nose wings, lids
        img = looks.times(img, 1 - looks.feature_lines(lr["features"], face, lips_closed))
    if rng.random() < 0.15:  # beard
        jaw = face.annotator[3:14]
        mouth_top = pts[48:55] + [0, -4 * mm]
        beard = np.vstack([jaw, pts[[54, 55, 56, 57, 58, 59, 48]] + [0, 5 * mm]])
        _poly(img, seg, beard, _col(hair_rgb * 0.9), SEG["beard"])
        _poly(
            img, seg, np.vstack([mouth_top, pts[54:47:-1] + [0, -1 * mm]]), _col(hair_rgb * 0.9), SEG["beard"]
        )

    visible = face_mask.copy()
    cv2.fillPoly(visible, [_fx(nose), _fx(pts[48:60])], 255, cv2.LINE_8, _SHIFT)
    hidden = visible == 0
    np.copyto(img, before_img, where=hidden[..., None])
    np.copyto(seg, before_seg, where=hidden)

    # light: a smooth dome normal from the blurred face mask, Lambert with a coloured light (the shading step
    # replaces it; its draws are made either way)
    light_rgb = (rng.uniform(0.85, 1.15) * (1 + rng.normal(0, 0.05, 3))).astype(np.float32)
    lo, hi = np.float32(rng.uniform(0.35, 0.6)), np.float32(rng.uniform(0.5, 0.8))
    # ambient occlusion: eye sockets, under the nose and the lower lip, soft-edged
    occl = np.zeros((n, n), np.float32)
    for eye, brow in ((pts[36:42], pts[17:22]), (pts[42:48], pts[22:27])):
        c = (eye.mean(0) * 2 + brow.mean(0)) / 3
        w = np.linalg.norm(eye[3] - eye[0])
        ang = np.degrees(np.arctan2(*(eye[3] - eye[0])[::-1]))
        _poly(
            occl,
            None,
            _ellipse_pts(c, (w * 0.75, max(1.0, np.linalg.norm(c - brow.mean(0)) * 1.1)), ang),
            1.0,
        )
    _poly(occl, None, np.vstack([pts[31:36], pts[[54, 48]] * 0.3 + pts[[35, 31]] * 0.7]), 0.8)
    _poly(occl, None, np.vstack([pts[55:60], pts[[7, 9]] * 0.35 + pts[[57, 57]] * 0.65]), 0.7)
    occl = cv2.GaussianBlur(occl, (0, 0), max(0.6, 3.5 * mm)) * (face_mask.astype(np.float32) / 255)
    occl_k = np.float32(rng.uniform(0.15, 0.4))
    if "shading" not in look:
        sig = max(1.0, 0.12 * np.ptp(outline[:, 0]))
        dome = cv2.GaussianBlur(face_mask.astype(np.float32) / 255, (0, 0), sig)
        gx = cv2.Sobel(dome, cv2.CV_32F, 1, 0, ksize=3) * sig * 1.5
        gy = cv2.Sobel(dome, cv2.CV_32F, 0, 1, ksize=3) * sig * 1.5
        lam = np.clip((-gx * light[0] - gy * light[1] + light[2]) / np.sqrt(gx * gx + gy * gy + 1), 0, 1)
        shade = lo + hi * lam
        shade *= 1 - occl_k * occl
    specular = None
    if "skin" in look:
        skin_mask = _of_class(seg, "skin", "nose", "neck", "ear_l", "ear_r")
        img = img * looks.skin_texture(lr["skin"], face, skin_mask)
        above_eyes = np.arange(n)[:, None] < pts[36:48, 1].max()
        lids = (occl > 0.5) & skin_mask & above_eyes  # the eye sockets' upper part, not under the nose
        looks.makeup(lr["skin"], img, _of_class(seg, "lip_top", "lip_bottom"), lids)
    if "hair" in look:
        hair = _of_class(seg, "hair", "beard", "brow_l", "brow_r")
        looks.hair_strands(lr["hair"], img, hair, face.down, mm)
    if "shading" in look:
        skin_like = _of_class(seg, "skin", "nose", "lip_top", "lip_bottom")
        diffuse, spec = looks.shade(lr["shading"], looks.height_map(face, face_mask), skin_like, light_softness)
        shade = diffuse * (1 - np.float32(0.3) * occl)
        specular = spec * 255
    if "features" in look:
        eyes = _of_class(seg, "eye_l", "eye_r")
        lit = _of_class(seg, "skin", "nose")
        if eyes.any() and lit.any():  # the eyeball is lit as the brighter skin is, not as the socket round it
            shade[eyes] = np.maximum(shade[eyes], 0.95 * np.percentile(shade[lit], 75))
        neck = seg == SEG["neck"]
        if neck.any() and lit.any():  # the neck lit as the face is, a little less (it turns down, away from the
            # light), where the face's relief, falling off past the outline, shaded it darker than photos show
            shade[neck] = np.median(shade[lit]) * np.float32(lr["features"].uniform(0.75, 1.0))
        shade = shade * looks.neck_shadow(lr["features"], face_mask, neck, mm)
    shade[seg == 0] = 1.0
    if look:  # OpenCV's per-channel arithmetic; the flat drawing keeps numpy's, so that its bytes do not change
        img = looks.times(img, shade.astype(np.float32))
        if specular is not None:
            img += cv2.merge([specular, specular, specular])
        img = cv2.transform(img, np.diag(light_rgb).astype(np.float32))
    else:
        img = img * shade[..., None] * light_rgb

    if rng.random() < 0.2:  # glasses: rims around both eyes, a bridge, optional dark lenses
        gl = np.zeros_like(seg)
        col = _col(rng.uniform(0, 120, 3))
        thick = max(1, int(round(rng.uniform(1.2, 3.0) * mm)))
        dark = rng.random() < 0.3
        for eye in (pts[36:42], pts[42:48]):
            c = eye.mean(0)
            w = np.linalg.norm(eye[3] - eye[0])
            ang = np.degrees(np.arctan2(*(eye[3] - eye[0])[::-1]))
            rim = _ellipse_pts(c + [0, 1.5 * mm], (w * 0.8 + 4 * mm, w * 0.5 + 3 * mm), ang)
            if dark:
                _poly(img, gl, rim, (20.0, 20.0, 25.0), 255)
            cv2.polylines(img, [_fx(rim)], True, col, thick, cv2.LINE_AA, _SHIFT)
            cv2.polylines(gl, [_fx(rim)], True, 255, thick, cv2.LINE_8, _SHIFT)
        cv2.line(
            img,
            _fx(pts[39] + [0, -2 * mm])[0, 0],
            _fx(pts[42] + [0, -2 * mm])[0, 0],
            col,
            thick,
            cv2.LINE_AA,
            _SHIFT,
        )
        seg[gl == 255] = SEG["glasses"]
    if rng.random() < 0.25:
        _occluder(rng, img, seg, face, skin)

    # camera: blur, noise, exposure
    k = rng.uniform(0.2, 0.9) * n / 128
    noise_seed, noise_sigma = int(rng.integers(2**31)), float(rng.uniform(1, 7))  # drawn with or without the step
    exposure = float(rng.uniform(0.75, 1.2))
    img = img.astype(np.float32)
    if "camera" in look:  # the camera step's own lens blur, tone, noise and compression
        return looks.camera(lr["camera"], img * np.float32(exposure), blur=k), seg
    img = cv2.GaussianBlur(img, (0, 0), k)
    noise = np.empty(img.shape, np.float32)
    cv2.setRNGSeed(noise_seed)  # cv2's own rng, reseeded per sample: deterministic and fast
    cv2.randn(noise.reshape(n, -1), 0.0, noise_sigma)  # one channel's view: a scalar sigma on 3 fills only red
    img = cv2.addWeighted(img, exposure, noise, 1.0, 0.0)
    return np.clip(img, 0, 255).astype(np.uint8), seg
