"""The light on a generated face: the flat drawing's dome and occlusion, and the shading step's relief.

The flat drawing lights the face as a dome (`dome`: normals from the blurred face mask, Lambert with one
light) darkened in the eye sockets, under the nose and under the lower lip (`occlusion`). The shading step
(landmix.generate.look) replaces the dome with the relief of a height map from the landmarks (`height_map`)
lit by a key light, a fill light and ambient with highlights on the skin (`shade`), its softness fitted on
real photos (`look.light_ranges`). The features step lights the eyeballs and the neck as the face is lit, with
the chin's shadow on the neck (`as_the_face`, `neck_shadow`).
"""

from __future__ import annotations

import cv2
import numpy as np

from landmix.generate.draw import SEG, blobs, ellipse, fill, of_class, splat
from landmix.generate.look import light_ranges


def occlusion(pts: np.ndarray, face_mask: np.ndarray, mm: float) -> np.ndarray:
    """(n, n) float32 ambient occlusion 0..1 of the face with points pts (70, 2): the eye sockets, under the nose
    and the lower lip, soft-edged, inside the face mask (n, n) uint8 only."""
    n = face_mask.shape[0]
    occl = np.zeros((n, n), np.float32)
    for eye, brow in ((pts[36:42], pts[17:22]), (pts[42:48], pts[22:27])):
        c = (eye.mean(0) * 2 + brow.mean(0)) / 3
        w = np.linalg.norm(eye[3] - eye[0])
        ang = np.degrees(np.arctan2(*(eye[3] - eye[0])[::-1]))
        fill(occl, None, ellipse(c, (w * 0.75, max(1.0, np.linalg.norm(c - brow.mean(0)) * 1.1)), ang), 1.0)
    fill(occl, None, np.vstack([pts[31:36], pts[[54, 48]] * 0.3 + pts[[35, 31]] * 0.7]), 0.8)
    fill(occl, None, np.vstack([pts[55:60], pts[[7, 9]] * 0.35 + pts[[57, 57]] * 0.65]), 0.7)
    return cv2.GaussianBlur(occl, (0, 0), max(0.6, 3.5 * mm)) * (face_mask.astype(np.float32) / 255)


def dome(face_mask: np.ndarray, outline: np.ndarray, light: np.ndarray, lo, hi) -> np.ndarray:
    """(n, n) float32 light factor lo + hi * Lambert: a smooth dome normal from the face mask (n, n) uint8 blurred
    at 0.12 of the outline's (M, 2) width, lit from the unit direction `light` (3,)."""
    sig = max(1.0, 0.12 * np.ptp(outline[:, 0]))
    height = cv2.GaussianBlur(face_mask.astype(np.float32) / 255, (0, 0), sig)
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) * sig * 1.5
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) * sig * 1.5
    lam = np.clip((-gx * light[0] - gy * light[1] + light[2]) / np.sqrt(gx * gx + gy * gy + 1), 0, 1)
    return lo + hi * lam


def height_map(face, face_mask: np.ndarray) -> np.ndarray:
    """(n, n) float32 height towards the camera, in pixels: the 70 posed 3D points' heights interpolated over the
    face (normalised convolution), falling off to the visible outline, plus the relief the 70 points are too sparse
    to carry (nose ridge and wings, brow ridge, cheekbones, lips, chin up; eye sockets and under the nose down)."""
    n, mm, p = face.size, face.px_per_mm, face.xray
    width = max(np.ptp(face.outline[:, 0]), 2.0)
    heights = (face.depth.max() + 20.0 - face.depth) * mm  # the farthest point 20 mm above the outline
    sigma = max(1.0, 0.12 * width)
    num, den = np.zeros((n, n), np.float32), np.zeros((n, n), np.float32)
    splat(num, p, heights)
    splat(den, p, 1.0)
    base = cv2.GaussianBlur(num, (0, 0), sigma) / (cv2.GaussianBlur(den, (0, 0), sigma) + 1e-6)
    inside = face_mask.astype(np.float32) / 255
    falloff = cv2.GaussianBlur(inside, (0, 0), max(1.0, 0.08 * width))
    nose_ridge = np.linspace(p[27], p[30], 12)  # close enough for a smooth ridge (6 bumps drew a dotted one)
    cheeks = np.stack(
        [(p[1] + p[2] + p[31] * 2) / 4 - [0, 4 * mm], (p[15] + p[14] + p[35] * 2) / 4 - [0, 4 * mm]]
    )
    relief = blobs(
        n,
        [
            (nose_ridge, 3.0 * mm, 1.2 * mm),
            (p[[30]], 4.0 * mm, 3.0 * mm),
            (p[[31, 35]], 3.0 * mm, 2.0 * mm),
            (p[17:27], 4.5 * mm, 2.5 * mm),
            (cheeks, 9.0 * mm, 5.0 * mm),
            (p[[51, 57]], 4.0 * mm, 2.0 * mm),
            ((p[[8]] + p[[57]]) / 2, 6.0 * mm, 3.0 * mm),
            (np.stack([p[36:42].mean(0), p[42:48].mean(0)]) - [0, 2 * mm], 6.0 * mm, -6.0 * mm),
            (p[[33]] + [0, 2.5 * mm], 2.5 * mm, -2.5 * mm),
        ],
    )
    return (base * falloff + relief * inside).astype(np.float32)


def shade(
    rng: np.random.Generator, height: np.ndarray, skin: np.ndarray, softness: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
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


def as_the_face(
    rng: np.random.Generator, shade: np.ndarray, seg: np.ndarray, face_mask: np.ndarray, mm: float
) -> np.ndarray:
    """The light factor shade (n, n) float32 with the eyeballs lit as the brighter skin is (not as the socket round
    them) and the neck lit as the face is, a little less, with the chin's shadow on it (`neck_shadow`)."""
    eyes = of_class(seg, "eye_l", "eye_r")
    lit = of_class(seg, "skin", "nose")
    if eyes.any() and lit.any():
        shade[eyes] = np.maximum(shade[eyes], 0.95 * np.percentile(shade[lit], 75))
    neck = seg == SEG["neck"]
    # the neck turns down, away from the light; the face's relief, falling off past
    if neck.any() and lit.any():
        # the outline, shaded it darker than photos show
        shade[neck] = np.median(shade[lit]) * np.float32(rng.uniform(0.75, 1.0))
    return shade * neck_shadow(rng, face_mask, neck, mm)
