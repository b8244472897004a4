"""The photographic look of a generated face: the steps the renderer adds on top of its flat drawing.

Each step is one function the renderer calls at its place in the drawing; `FaceConfig.look` names the steps
a sample gets, so the ablation (bench/generator_ablation.py) can switch them on one at a time. Each step draws
from its own rng (`step_rngs`), spawned from the sample's without drawing from it: with no step on, a sample
is the same bytes as before the steps existed, and switching one step on does not change what the others draw.

- background: a natural-image spectrum (1/f^beta noise in muted colours) with soft out-of-focus shapes, in
  place of saturated flat shapes and lines.
- shading: a height map of the face from its landmarks (head dome, brow ridge, nose, cheekbones, lips, chin,
  eye sockets), its normals lit by a key light drawn from above-front, a fill light and ambient, with
  Blinn-Phong highlights on the skin. How soft the light is (ambient against key, `light_ranges`) is fitted on
  real photos (landmix.generate.light_prior): hard key light drew faces far more contrasted than the photos.
- skin: texture at several scales (pores, mottling), redness on cheeks and nose, freckles, blemishes,
  make-up on some faces.
- eyes: a radial iris texture with a dark limbal ring, the upper lid's shadow on the sclera, lashes.
- hair: strands, as noise streaked along the hair's fall, on hair, beard and brows.
- camera: white balance, vignetting, signal-dependent sensor noise, a lower sensor resolution, JPEG.
- features: what photos show of the features and the flat drawing lacks: the dark line where closed lips meet
  and the mouth's corners, lips nearer the skin's colour, the nose wings' creases, the upper lid's crease and
  the lower lid, faint nasolabial folds (soft lines darkening the skin), lit sclera (the eyeball catches light
  the socket around it does not), teeth in every open mouth, the neck in the face's skin and lit as the face is
  with the chin's soft shadow on it, the face filled round through its outline's points (`rounded`), and the
  lids, lips and brows drawn round through their labels, sharp only at the eyes' and the mouth's corners
  (`rounded_path`, `rounded_between_corners`).
"""

from __future__ import annotations

import cv2
import numpy as np

STEPS = ("background", "shading", "skin", "eyes", "hair", "camera", "features")  # the ablation's order


def step_rngs(rng: np.random.Generator) -> dict[str, np.random.Generator]:
    """One rng per step, spawned from the sample's seed sequence (the sample's own stream is not advanced); a step
    added at the end of STEPS gets a new child and leaves the others' as they were."""
    return {s: np.random.default_rng(c) for s, c in zip(STEPS, rng.bit_generator.seed_seq.spawn(len(STEPS)))}


def box(pts: np.ndarray, shape: tuple, before: float, after: float) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the whole-pixel box round `pts` (N, 2), `before` px above and left of them and `after` px
    below and right, clipped to an image of `shape`; empty when x1 <= x0 or y1 <= y0."""
    x0, y0 = np.floor(pts.min(0) - before).astype(int)
    x1, y1 = np.ceil(pts.max(0) + after).astype(int)
    h, w = shape[:2]
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def _splat(field: np.ndarray, pts: np.ndarray, amp) -> None:
    """Add amp at sub-pixel points (bilinear), in place; points outside are dropped."""
    h, w = field.shape
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    amp = np.broadcast_to(np.asarray(amp, np.float64), (len(pts),))
    x0, y0 = np.floor(pts[:, 0]).astype(int), np.floor(pts[:, 1]).astype(int)
    fx, fy = pts[:, 0] - x0, pts[:, 1] - y0
    for dx, dy, wt in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        x, y = x0 + dx, y0 + dy
        ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        np.add.at(field, (y[ok], x[ok]), (amp * wt)[ok])


def _blobs(n: int, groups: list[tuple[np.ndarray, float, float]]) -> np.ndarray:
    """Sum of Gaussian bumps: groups of (points (K, 2), sigma px, height px at the peak), each stamped into its
    own +-3 sigma window (a blur of the whole image per group cost more than the rest of the step); a group's
    windows are computed at once, into the image padded by the widest window, so none is clipped."""
    pad = 2 * max(int(np.ceil(3 * max(float(sigma), 0.3))) for _, sigma, _ in groups)  # a window's centre
    out = np.zeros((n + 2 * pad, n + 2 * pad), np.float32)
    for pts, sigma, height in groups:
        sigma = max(float(sigma), 0.3)
        r = int(np.ceil(3 * sigma))
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        centre = np.round(pts).astype(int)
        keep = np.all((centre > -r - 1) & (centre < n + r), axis=1)  # a window overlapping the image
        pts, centre = pts[keep], centre[keep]
        offsets = np.arange(-r, r + 1)
        g = np.exp(-((centre[:, :, None] + offsets - pts[:, :, None]) ** 2) / (2 * sigma * sigma))  # (K, 2, W)
        tiles = (height * g[:, 1, :, None] * g[:, 0, None, :]).astype(np.float32)
        for (x, y), tile in zip(centre + pad - r, tiles):
            out[y : y + 2 * r + 1, x : x + 2 * r + 1] += tile
    return out[pad : pad + n, pad : pad + n]


def natural_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float32: 1/f^beta noise (beta 1.6-2.6; a pyramid of noise octaves, each octave's
    amplitude scaled by (size / cells)^(beta / 2 - 1)) in a muted palette, and blurred shapes."""
    beta = rng.uniform(1.6, 2.6)
    lum, cells = np.zeros((1, 1), np.float32), 1
    while cells < size:  # coarse to fine: upsample what is there, add this octave's noise
        cells = min(2 * cells, size)
        octave = rng.standard_normal((cells, cells), dtype=np.float32) * np.float32((size / cells) ** (beta / 2 - 1))
        lum = cv2.resize(lum, (cells, cells), interpolation=cv2.INTER_CUBIC) + octave
    lum = (lum - lum.mean()) / (lum.std() + 1e-6)
    base = rng.uniform(40, 200)
    tint = rng.normal(0, 0.12, 3).astype(np.float32)
    img = base * (1 + tint) + lum[..., None] * (rng.uniform(15, 50) * (1 + rng.normal(0, 0.15, 3))).astype(
        np.float32
    )
    for _ in range(int(rng.integers(0, 6))):  # out-of-focus objects: soft ellipses in muted colours
        c, ax = rng.uniform(-0.1, 1.1, 2) * size, rng.uniform(0.05, 0.5, 2) * size
        angle, sigma = rng.uniform(0, 180), rng.uniform(1, 6) * size / 128
        col = (base * (1 + rng.normal(0, 0.35, 3)) * rng.uniform(0.5, 1.5)).astype(np.float32)
        # blended only in the box the blurred ellipse can reach (its axes + the blur kernel's radius)
        reach = int(max(ax)) + int(np.ceil(4 * sigma)) + 2
        x0, y0 = max(int(c[0]) - reach, 0), max(int(c[1]) - reach, 0)
        x1, y1 = min(int(c[0]) + reach + 1, size), min(int(c[1]) + reach + 1, size)
        if x1 <= x0 or y1 <= y0:
            continue
        layer = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.ellipse(layer, (int(c[0]) - x0, int(c[1]) - y0), (int(ax[0]), int(ax[1])), angle, 0, 360, 1.0, -1)
        layer = cv2.GaussianBlur(layer, (0, 0), sigma)[..., None]
        roi = img[y0:y1, x0:x1]
        roi[:] = roi * (1 - layer) + col * layer
    return np.clip(img, 0, 255).astype(np.float32)


def height_map(face, face_mask: np.ndarray) -> np.ndarray:
    """(n, n) float32 height towards the camera, in pixels: the 70 posed 3D points' heights interpolated over the
    face (normalised convolution), falling off to the visible outline, plus the relief the 70 points are too sparse
    to carry (nose ridge and wings, brow ridge, cheekbones, lips, chin up; eye sockets and under the nose down)."""
    n, mm, p = face.size, face.px_per_mm, face.xray
    width = max(np.ptp(face.outline[:, 0]), 2.0)
    heights = (face.depth.max() + 20.0 - face.depth) * mm  # the farthest point 20 mm above the outline
    sigma = max(1.0, 0.12 * width)
    num, den = np.zeros((n, n), np.float32), np.zeros((n, n), np.float32)
    _splat(num, p, heights)
    _splat(den, p, 1.0)
    base = cv2.GaussianBlur(num, (0, 0), sigma) / (cv2.GaussianBlur(den, (0, 0), sigma) + 1e-6)
    inside = face_mask.astype(np.float32) / 255
    falloff = cv2.GaussianBlur(inside, (0, 0), max(1.0, 0.08 * width))
    nose_ridge = np.linspace(p[27], p[30], 12)  # close enough for a smooth ridge (6 bumps drew a dotted one)
    cheeks = np.stack(
        [(p[1] + p[2] + p[31] * 2) / 4 - [0, 4 * mm], (p[15] + p[14] + p[35] * 2) / 4 - [0, 4 * mm]]
    )
    relief = _blobs(n, [
        (nose_ridge, 3.0 * mm, 1.2 * mm), (p[[30]], 4.0 * mm, 3.0 * mm), (p[[31, 35]], 3.0 * mm, 2.0 * mm),
        (p[17:27], 4.5 * mm, 2.5 * mm), (cheeks, 9.0 * mm, 5.0 * mm),
        (p[[51, 57]], 4.0 * mm, 2.0 * mm), ((p[[8]] + p[[57]]) / 2, 6.0 * mm, 3.0 * mm),
        (np.stack([p[36:42].mean(0), p[42:48].mean(0)]) - [0, 2 * mm], 6.0 * mm, -6.0 * mm),
        (p[[33]] + [0, 2.5 * mm], 2.5 * mm, -2.5 * mm),
    ])  # fmt: skip
    return (base * falloff + relief * inside).astype(np.float32)


def light_ranges(softness: float) -> dict[str, tuple[float, float]]:
    """The uniform ranges the shading draws its ambient, key and fill strengths from, at `softness` in [0, 1]:
    0 = the hard key light the look was first drawn with (ambient 0.25-0.45, key 0.6-0.9, fill 0-0.25), 1 = mostly
    ambient (0.65-0.85, key 0.15-0.4, fill 0.1-0.3). The generator draws at the softness fitted on real photos
    (FaceConfig.light_softness, landmix.generate.light_prior)."""
    s = float(softness)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"light_softness={softness}: use 0 (hard key light) .. 1 (mostly ambient)")
    return {"ambient": (0.25 + 0.4 * s, 0.45 + 0.4 * s), "key": (0.6 - 0.45 * s, 0.9 - 0.5 * s),
            "fill": (0.1 * s, 0.25 + 0.05 * s)}  # fmt: skip


def shade(rng: np.random.Generator, height: np.ndarray, skin: np.ndarray,
          softness: float = 0.0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Diffuse (n, n) and specular (n, n) light of a height map: key light from above-front (its direction
    drawn per sample), fill from the other side, ambient, their strengths drawn from `light_ranges(softness)`;
    Blinn-Phong highlights where skin (n, n) > 0."""
    gy, gx = np.gradient(height)
    norm = np.sqrt(gx * gx + gy * gy + 1)
    nx, ny, nz = -gx / norm, -gy / norm, 1 / norm
    az, el = rng.normal(0, 0.7), rng.uniform(-0.1, 0.9)  # radians: azimuth from the front, elevation
    key = np.array([np.sin(az) * np.cos(el), -np.sin(el), np.cos(az) * np.cos(el)])
    fill = np.array([-key[0], 0.2, 0.9])
    fill /= np.linalg.norm(fill)
    lam = lambda v: np.clip(nx * v[0] + ny * v[1] + nz * v[2], 0, 1)  # noqa: E731
    ranges = light_ranges(softness)
    ambient, k_key, k_fill = (rng.uniform(*ranges[k]) for k in ("ambient", "key", "fill"))
    diffuse = (ambient + k_key * lam(key) + k_fill * lam(fill)).astype(np.float32)
    half = key + [0, 0, 1]
    half /= np.linalg.norm(half)
    spec = lam(half) ** rng.uniform(8, 40) * rng.uniform(0.05, 0.3) * (skin > 0)
    return diffuse, spec.astype(np.float32)


def skin_texture(rng: np.random.Generator, face, skin_mask: np.ndarray) -> np.ndarray:
    """(n, n, 3) float32 multiplicative skin texture around 1: pores, mottling, redness, freckles, blemishes."""
    n, mm, p = face.size, face.px_per_mm, face.xray
    pores = cv2.GaussianBlur(rng.standard_normal((n, n), dtype=np.float32), (0, 0), max(0.4, 0.4 * mm))
    cells = int(rng.integers(4, 12))
    mottle = cv2.resize(
        rng.normal(0, 1, (cells, cells)).astype(np.float32), (n, n), interpolation=cv2.INTER_CUBIC
    )
    grain = 1 + pores * np.float32(rng.uniform(0.008, 0.03)) + mottle * np.float32(rng.uniform(0.01, 0.05))
    red = _blobs(n, [(np.stack([(p[2] + p[31]) / 2, (p[14] + p[35]) / 2, p[30]]), 9 * mm, 1.0)])
    redness = red * np.float32(rng.uniform(0, 0.12))
    spots = np.zeros((n, n), np.float32)
    if rng.random() < 0.25:  # freckles over the nose and cheeks
        k = int(rng.integers(20, 150))
        centre = np.stack([(p[2] + p[31]) / 2, (p[14] + p[35]) / 2, p[29]])[rng.integers(3, size=k)]
        _splat(spots, centre + rng.normal(0, 10 * mm, (k, 2)), rng.uniform(0.3, 1.0, k))
    if rng.random() < 0.4:  # a few blemishes anywhere on the face
        k = int(rng.integers(1, 6))
        _splat(spots, p[rng.integers(68, size=k)] + rng.normal(0, 8 * mm, (k, 2)), rng.uniform(0.5, 1.2, k))
    spots = cv2.GaussianBlur(spots, (0, 0), max(0.5, 0.6 * mm))
    off = skin_mask == 0
    channels = []  # one 2D field per channel: numpy is slow on a trailing axis of 3
    for red_k, spot_k in ((0.3, 0.35), (-0.5, 0.5), (-0.4, 0.55)):
        c = grain * (1 + redness * np.float32(red_k)) * (1 - spots * np.float32(spot_k))
        c[off] = 1
        channels.append(c)
    return cv2.merge(channels)


def makeup(rng: np.random.Generator, img: np.ndarray, lips: np.ndarray, lids: np.ndarray) -> None:
    """On about a third of faces: coloured lips and darkened upper lids (masks (n, n) bool), in place."""
    if rng.random() < 0.3:
        img[lips] = img[lips] * 0.55 + np.array([rng.uniform(120, 200), rng.uniform(20, 70), rng.uniform(40, 90)],
                                                np.float32) * 0.45  # fmt: skip
    if rng.random() < 0.3:
        img[lids] *= np.float32(rng.uniform(0.6, 0.85)) * (1 + rng.normal(0, 0.08, 3)).astype(np.float32)


def eye_detail(rng: np.random.Generator, img: np.ndarray, eye: np.ndarray, pupil: np.ndarray, iris_r: float,
               mm: float) -> None:  # fmt: skip
    """Iris streaks and a dark limbal ring, the upper lid's shadow, lashes; clipped to the eye, in place."""
    x0, y0, x1, y1 = box(eye, img.shape, 4 * mm + 2, 3)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(inside, [np.round((eye - [x0, y0]) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    r = np.hypot(xx - pupil[0], yy - pupil[1])
    ang = np.arctan2(yy - pupil[1], xx - pupil[0])
    streak = 1 + 0.18 * np.sin(ang * rng.integers(9, 17) + rng.uniform(0, 6)) * (r < iris_r)
    ring = 1 - 0.45 * np.exp(-(((r - iris_r) / max(0.35, 0.12 * iris_r)) ** 2))
    top = eye[[1, 2]].mean(0)[1]
    lid = 1 - 0.35 * np.clip(1 - (yy - top) / max(1.0, 0.5 * np.ptp(eye[:, 1]) + 1), 0, 1)
    f = (streak * ring * lid)[..., None].astype(np.float32)
    roi = img[y0:y1, x0:x1]
    roi[:] = np.where(inside[..., None] > 0, roi * f, roi)
    lash = (float(rng.uniform(10, 40)),) * 3
    t = np.linspace(0, 1, 4, endpoint=False)[None, :, None]
    roots = (eye[[0, 1, 2], None] + (eye[[1, 2, 3]] - eye[[0, 1, 2]])[:, None] * t).reshape(-1, 2)  # 4 per segment
    tips = roots + np.stack([rng.normal(0, 0.6, len(roots)), -rng.uniform(1.2, 2.2, len(roots))], 1) * mm
    lashes = np.round(np.stack([roots, tips], 1) * 16).astype(np.int32)  # (12, 2, 2) segments, 4 fractional bits
    cv2.polylines(img, list(lashes), False, lash, 1, cv2.LINE_AA, 4)


def hair_strands(
    rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, down: np.ndarray, mm: float
) -> None:
    """Streaked noise along the hair's fall (the head's down axis, perturbed) on mask (n, n) bool, in place."""
    if not mask.any():
        return
    n = mask.shape[0]
    k = max(3, int(round(12 * mm)) | 1)
    kernel = np.zeros((k, k), np.float32)
    d = down + rng.normal(0, 0.3, 2)
    d /= np.linalg.norm(d) + 1e-6
    c = k // 2
    cv2.line(kernel, (int(c - d[0] * c), int(c - d[1] * c)), (int(c + d[0] * c), int(c + d[1] * c)), 1.0, 1)
    kernel /= kernel.sum()
    streak = cv2.filter2D(rng.standard_normal((n, n), dtype=np.float32), -1, kernel)
    streak /= streak.std() + 1e-6
    amp = np.float32(rng.uniform(0.15, 0.35))
    img[mask] *= np.clip(1 + amp * streak[mask], 0.3, 2.0)[:, None]


def times(img: np.ndarray, field: np.ndarray) -> np.ndarray:
    """img (n, n, 3) float32 times field (n, n) float32 in every channel (OpenCV: 4x numpy's broadcast)."""
    return cv2.multiply(img, cv2.merge([field, field, field]))


def _towards_grey(keep: float) -> np.ndarray:
    """(3, 3) colour matrix keeping `keep` of each pixel's colour about its channel mean (1 = unchanged)."""
    return keep * np.eye(3) + (1 - keep) / 3


def camera(rng: np.random.Generator, img: np.ndarray, blur: float) -> np.ndarray:
    """The camera, on the scene (n, n, 3) float32: lens blur (up to `blur` px), white balance (warm on average,
    as the real photos' crops are), vignetting, a lower sensor resolution on some faces, a tone curve, the
    camera's sharpening, signal-dependent sensor noise and JPEG. Returns uint8 RGB."""
    n = img.shape[0]
    img = cv2.GaussianBlur(img, (0, 0), max(0.1, blur * rng.uniform(0.2, 0.8)))
    balance = np.diag(np.array([1.12, 1.0, 0.97]) * (1 + rng.normal(0, 0.05, 3)))  # white balance
    img = cv2.transform(img, (_towards_grey(rng.uniform(0.6, 1.0)) @ balance).astype(np.float32))  # muted colour
    t = np.linspace(-0.5, 0.5, n, dtype=np.float32) ** 2
    img = times(img, 1 - np.float32(rng.uniform(0, 0.35) * 2) * (t[:, None] + t[None, :]))  # vignetting
    if rng.random() < 0.3:  # a sensor with fewer pixels than the image: down then up
        small = max(16, int(n / rng.uniform(1.2, 2.0)))
        img = cv2.resize(cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA), (n, n))
    lin = np.clip(img, 0, 255) / 255
    mid = lin.mean()
    lin = np.clip(mid + (lin - mid) * rng.uniform(1.0, 1.35), 0, 1)  # contrast of the tone curve
    if rng.random() < 0.4:  # in-camera sharpening (unsharp mask)
        lin = np.clip(lin + rng.uniform(0.2, 0.8) * (lin - cv2.GaussianBlur(lin, (0, 0), 1.0)), 0, 1)
    sigma = np.sqrt(rng.uniform(1e-4, 1.2e-3) * lin + rng.uniform(1e-5, 1e-4))  # shot + read noise
    noise = np.empty(img.shape, np.float32)
    cv2.setRNGSeed(int(rng.integers(2**31)))  # OpenCV's normal draws, reseeded per sample: 3x numpy's speed
    cv2.randn(noise.reshape(n, -1), 0.0, 1.0)  # one channel: a scalar sigma on 3 channels is (sigma, 0, 0)
    own = rng.uniform(0.2, 0.8)  # the part of the noise each channel draws on its own (chroma noise)
    noise = cv2.transform(noise, (own * np.eye(3) + (1 - own) * np.sqrt(3) / 3).astype(np.float32))  # + luma
    img = np.clip((lin + sigma * noise) * 255, 0, 255).astype(np.uint8)
    if rng.random() < 0.8:
        q = int(rng.integers(40, 96))
        ok, enc = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        img = cv2.imdecode(enc, cv2.IMREAD_COLOR)[:, :, ::-1]
    return np.ascontiguousarray(img)


def feature_lines(rng: np.random.Generator, face, lips_closed: bool) -> np.ndarray:
    """(n, n) float32 in [0, 1): how much each pixel darkens (img * (1 - lines)): soft lines where photos show
    the features' folds and the flat drawing draws none: where closed lips meet and the mouth's corners, the nose
    wings' creases, the upper lid's crease and the lower lid, faint nasolabial folds. Drawn from face.xray."""
    n, mm, p = face.size, face.px_per_mm, face.xray
    up = -np.asarray(face.down, np.float64)
    field = np.zeros((n, n), np.float32)

    def line(pts, strength, width_mm=1.0):
        pts = np.asarray(pts, np.float64)
        cv2.polylines(field, [np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)], False, float(strength),
                      max(1, int(round(width_mm * mm))), cv2.LINE_AA, 4)  # fmt: skip

    if lips_closed:  # the lips' meeting line: half-way between the inner contours
        line((p[[60, 61, 62, 63, 64]] + p[[60, 67, 66, 65, 64]]) / 2, rng.uniform(0.45, 0.75))
    for corner, inner in ((48, 60), (54, 64)):  # the mouth's corners, a short dark notch
        line([p[corner] + (p[corner] - p[inner]) * 0.3, p[inner]], rng.uniform(0.3, 0.6))
    wing = rng.uniform(0.25, 0.5)
    for base in (31, 35):  # the nose wing's crease: round the wing from its base up towards the bridge
        out = p[base] - p[33]
        line([p[base] + out * 0.05 + up * 0.5 * mm, p[base] + out * 0.45 + up * 2.5 * mm,
              p[base] + out * 0.35 + up * 5.5 * mm, p[base] + out * 0.05 + up * 7.5 * mm], wing)  # fmt: skip
    fold = rng.uniform(0.0, 0.3)
    for base, corner in ((31, 48), (35, 54)):  # nasolabial folds, faint on most faces
        out = p[base] - p[33]
        line([p[base] + out * 0.7 + up * 3 * mm, p[corner] + (p[corner] - p[[51, 57]].mean(0)) * 0.35], fold, 1.5)
    crease = rng.uniform(0.15, 0.4)
    for eye in (p[36:42], p[42:48]):  # the upper lid's crease above the lid, the lower lid's edge
        rise = up * (np.ptp(eye[:, 1]) * 0.6 + rng.uniform(1.5, 3.5) * mm)
        line(np.vstack([eye[0], eye[[1, 2]] + rise, eye[3]]), crease)
        line(eye[[3, 4, 5, 0]], crease * 0.6)
    return np.clip(cv2.GaussianBlur(field, (0, 0), max(0.4, 0.5 * mm)), 0, 0.9)


def teeth(rng: np.random.Generator, img: np.ndarray, p: np.ndarray, down: np.ndarray, mm: float) -> None:
    """The teeth inside the open mouth (the inner lips' polygon, points 60-67), in place: the upper teeth's row
    hangs from the upper inner lip (7-10 mm), the lower row stands on the lower lip on some faces, both darken
    towards the mouth's corners where they recede; the dark mouth shows between the rows and at the corners."""
    mouth = p[60:68]
    x0, y0, x1, y1 = box(mouth, img.shape, 1, 2)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    off = np.array([x0, y0], np.float64)
    inside = np.zeros((y1 - y0, x1 - x0), np.float32)
    cv2.fillPoly(inside, [np.round((mouth - off) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
    down = np.asarray(down, np.float64)
    rows = np.zeros_like(inside)
    upper = p[[60, 61, 62, 63, 64]] - off
    reach = rng.uniform(7, 10) * mm * np.array([0.3, 0.8, 1.0, 0.8, 0.3])  # shorter towards the corners
    cv2.fillPoly(rows, [np.round(np.vstack([upper, (upper + reach[:, None] * down)[::-1]]) * 16).astype(np.int32)],
                 1.0, cv2.LINE_AA, 4)  # fmt: skip
    if rng.random() < 0.5:  # the lower row
        lower = p[[64, 65, 66, 67, 60]] - off
        reach = rng.uniform(2, 6) * mm * np.array([0.2, 0.8, 1.0, 0.8, 0.2])
        cv2.fillPoly(rows, [np.round(np.vstack([lower, (lower - reach[:, None] * down)[::-1]]) * 16)
                            .astype(np.int32)], 1.0, cv2.LINE_AA, 4)  # fmt: skip
    xx = np.arange(x0, x1, dtype=np.float32)[None, :]
    centre, half = (p[60, 0] + p[64, 0]) / 2, max(abs(p[64, 0] - p[60, 0]) / 2, 1.0)
    recede = np.clip(1 - 0.6 * np.abs(xx - centre) / half, 0.3, 1)  # darker towards the corners
    colour = np.array([230, 222, 200], np.float32) * np.float32(rng.uniform(0.75, 1.0))
    alpha = (inside * rows)[..., None]
    roi = img[y0:y1, x0:x1]
    roi[:] = roi * (1 - alpha) + (colour * recede[..., None]) * alpha


def _catmull_rom(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, per_edge: int) -> np.ndarray:
    """(M, per_edge, 2): the centripetal Catmull-Rom segments from p1 to p2 (each (M, 2)), p1 kept, p2 not."""
    knot = lambda a, b: np.maximum(np.linalg.norm(b - a, axis=1), 1e-6) ** 0.5  # noqa: E731 (centripetal)
    t1 = knot(p0, p1)
    t2 = t1 + knot(p1, p2)
    t3 = t2 + knot(p2, p3)
    t = t1[:, None] + (t2 - t1)[:, None] * (np.arange(per_edge) / per_edge)[None]  # (M, per_edge), from p1 to p2
    t1, t2, t3 = t1[:, None, None], t2[:, None, None], t3[:, None, None]
    t, (p0, p1, p2, p3) = t[..., None], (q[:, None] for q in (p0, p1, p2, p3))
    a1 = (t1 - t) / t1 * p0 + t / t1 * p1
    a2 = (t2 - t) / (t2 - t1) * p1 + (t - t1) / (t2 - t1) * p2
    a3 = (t3 - t) / (t3 - t2) * p2 + (t - t2) / (t3 - t2) * p3
    b1 = (t2 - t) / t2 * a1 + t / t2 * a2
    b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
    return (t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2


def rounded(outline: np.ndarray, per_edge: int = 4) -> np.ndarray:
    """(M * per_edge, 2): the closed outline (M, 2) as a centripetal Catmull-Rom curve through its points (each
    point kept, `per_edge` - 1 points between two), so that the jaw is drawn round where photos show it round
    and the labels on the outline's points still sit on the drawn edge."""
    p = np.asarray(outline, np.float64)
    segments = _catmull_rom(np.roll(p, 1, 0), p, np.roll(p, -1, 0), np.roll(p, -2, 0), per_edge)
    return segments.reshape(-1, 2).astype(np.float32)


def rounded_path(points: np.ndarray, per_edge: int = 4) -> np.ndarray:
    """((N - 1) * per_edge + 1, 2): the open path (N, 2) as a centripetal Catmull-Rom curve through its points,
    both ends kept (the curve leaves each end towards its neighbour). A lid between the eye's corners, a lip
    between the mouth's: the labels stay on the drawn edge, with no corner drawn at the points between."""
    p = np.asarray(points, np.float64)
    padded = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    segments = _catmull_rom(padded[:-3], padded[1:-2], padded[2:-1], padded[3:], per_edge)
    return np.vstack([segments.reshape(-1, 2), p[-1:]]).astype(np.float32)


def rounded_between_corners(points: np.ndarray, corners: tuple[int, ...], per_edge: int = 4) -> np.ndarray:
    """The closed outline (N, 2) drawn round between its `corners` (indices, in order) and sharp at them: each
    run from one corner to the next as a `rounded_path` (an eye: corners 0 and 3; a mouth: its two corners)."""
    n = len(points)
    runs = []
    for a, b in zip(corners, (*corners[1:], corners[0] + n)):
        runs.append(rounded_path(np.asarray(points)[np.arange(a, b + 1) % n], per_edge)[:-1])
    return np.vstack(runs)


def neck_shadow(rng: np.random.Generator, face_mask: np.ndarray, neck: np.ndarray, mm: float) -> np.ndarray:
    """(n, n) float32 light factor: the chin's soft shadow on the neck (neck (n, n) bool), darkest under the jaw
    and fading with the distance from the face; 1 elsewhere."""
    out = np.ones(neck.shape, np.float32)
    if not neck.any():
        return out
    dist = cv2.distanceTransform((face_mask < 128).astype(np.uint8), cv2.DIST_L2, 3)
    depth, reach = rng.uniform(0.05, 0.35), rng.uniform(6, 16) * mm
    out[neck] = 1 - depth * np.exp(-dist[neck] / max(reach, 1.0))
    return out
