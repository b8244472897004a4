"""How the face's parts are drawn through their labels: flat polygons, or round (the features step).

`FaceStyle` is the flat drawing's: the skin outline, brows, eyes and lips as polygons through their points,
the neck a shade darker than the skin, a block of teeth in wide-open mouths. The features step
(landmix.generate.look) draws with `RoundStyle` instead: the outline, lids, lips and brows as centripetal
Catmull-Rom curves through the same points (`rounded`, `rounded_path`, `rounded_between_corners`: the labels
stay on the drawn edges, sharp only at the eyes' and the mouth's corners), lips nearer the skin's colour, the
neck in the face's skin, teeth in every open mouth (`teeth`); and it darkens the folds the flat drawing lacks
(`feature_lines`).
"""

from __future__ import annotations

import cv2
import numpy as np

from landmix.generate.draw import box, fill


class FaceStyle:
    """The flat drawing's parts: polygons through the labels, the flat colours."""

    def outline(self, outline: np.ndarray) -> np.ndarray:
        """The skin's polygon (M, 2) through the visible outline's points (M, 2)."""
        return outline

    def brow(self, brow: np.ndarray, thick: float) -> np.ndarray:
        """The polygon of a brow of `thick` px whose points (5, 2) lie on its upper edge."""
        poly = np.vstack([brow + [0, -thick * 0.1], (brow + [0, thick * 1.2])[::-1]])
        poly[[0, -1]] = brow[0]
        return poly

    def eye(self, eye: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(the eyelids' polygon, the upper lid's line or None: the polygon's first four points) of an eye (6, 2)."""
        return eye, None

    def neck_rgb(self, skin: np.ndarray) -> np.ndarray:
        return skin * 0.8

    def lip_rgb(self, skin: np.ndarray, drawn: np.ndarray) -> np.ndarray:
        """The lips' colour, from the skin's and the colour drawn for them (the rng's draw, made either way)."""
        return drawn

    def lips(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(the mouth's opening, the upper lip, the lower lip) polygons from the face's points (70, 2)."""
        mouth = pts[60:68]
        upper_lip = np.vstack([pts[48:55], pts[[64, 63, 62, 61, 60]]])
        lower_lip = np.vstack([pts[[54, 55, 56, 57, 58, 59, 48]], pts[[60, 67, 66, 65, 64]]])
        return mouth, upper_lip, lower_lip

    def teeth(self, img: np.ndarray, face, lips_closed: bool) -> None:
        """Teeth in the mouth of `face` (a face3d.Face), in the image img (n, n, 3) only: a light block under the
        upper inner lip of a wide-open mouth."""
        if face.mouth_open > 0.3:
            p = face.xray
            fill(
                img,
                None,
                np.vstack([p[60:65], (p[60:65] + [0, 3 * face.px_per_mm])[::-1]]),
                (225.0, 220.0, 205.0),
            )


class RoundStyle(FaceStyle):
    """The features step's parts: round through the labels, lips nearer the skin's colour, the neck in the face's
    skin (the step lights it as the face), teeth in every open mouth (drawn from the step's rng)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def outline(self, outline):
        return rounded(outline)  # through the same points: the labels on it

    def brow(self, brow, thick):  # a polygon would draw a corner at every label
        poly = np.vstack(
            [rounded_path(brow + [0, -thick * 0.1]), rounded_path((brow + [0, thick * 1.2])[::-1])]
        )
        poly[[0, -1]] = brow[0]
        return poly

    def eye(self, eye):  # the lids round between the eye's corners, through the labels
        lid = rounded_path(eye[[0, 1, 2, 3]])
        return rounded_between_corners(eye, (0, 3)), lid

    def neck_rgb(self, skin):
        return skin

    def lip_rgb(self, skin, drawn):  # photographed lips are nearer the skin's colour than the flat drawing's
        return skin * np.array([0.97, 0.74, 0.76]) * (0.85 + 0.3 * (drawn[0] / skin[0] - 0.7))

    def lips(self, pts):  # round between the mouth's corners, through the labels
        mouth = rounded_between_corners(pts[60:68], (0, 4))
        upper_lip = np.vstack([rounded_path(pts[48:55]), rounded_path(pts[[64, 63, 62, 61, 60]])])
        lower_lip = np.vstack(
            [rounded_path(pts[[54, 55, 56, 57, 58, 59, 48]]), rounded_path(pts[[60, 67, 66, 65, 64]])]
        )
        return mouth, upper_lip, lower_lip

    def teeth(self, img, face, lips_closed):  # as smiles show them
        if not lips_closed:
            teeth(self.rng, img, face.xray, face.down, face.px_per_mm)


def feature_lines(rng: np.random.Generator, face, lips_closed: bool) -> np.ndarray:
    """(n, n) float32 in [0, 1): how much each pixel darkens (img * (1 - lines)): soft lines where photos show
    the features' folds and the flat drawing draws none: where closed lips meet and the mouth's corners, the nose
    wings' creases, the upper lid's crease and the lower lid, faint nasolabial folds. Drawn from face.xray."""
    n, mm, p = face.size, face.px_per_mm, face.xray
    up = -np.asarray(face.down, np.float64)
    field = np.zeros((n, n), np.float32)

    def line(pts, strength, width_mm=1.0):
        pts = np.asarray(pts, np.float64)
        cv2.polylines(
            field,
            [np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)],
            False,
            float(strength),
            max(1, int(round(width_mm * mm))),
            cv2.LINE_AA,
            4,
        )

    if lips_closed:  # the lips' meeting line: half-way between the inner contours
        line((p[[60, 61, 62, 63, 64]] + p[[60, 67, 66, 65, 64]]) / 2, rng.uniform(0.45, 0.75))
    for corner, inner in ((48, 60), (54, 64)):  # the mouth's corners, a short dark notch
        line([p[corner] + (p[corner] - p[inner]) * 0.3, p[inner]], rng.uniform(0.3, 0.6))
    wing = rng.uniform(0.25, 0.5)
    for base in (31, 35):  # the nose wing's crease: round the wing from its base up towards the bridge
        out = p[base] - p[33]
        line(
            [
                p[base] + out * 0.05 + up * 0.5 * mm,
                p[base] + out * 0.45 + up * 2.5 * mm,
                p[base] + out * 0.35 + up * 5.5 * mm,
                p[base] + out * 0.05 + up * 7.5 * mm,
            ],
            wing,
        )
    fold = rng.uniform(0.0, 0.3)
    for base, corner in ((31, 48), (35, 54)):  # nasolabial folds, faint on most faces
        out = p[base] - p[33]
        line(
            [p[base] + out * 0.7 + up * 3 * mm, p[corner] + (p[corner] - p[[51, 57]].mean(0)) * 0.35],
            fold,
            1.5,
        )
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
    cv2.fillPoly(
        rows,
        [np.round(np.vstack([upper, (upper + reach[:, None] * down)[::-1]]) * 16).astype(np.int32)],
        1.0,
        cv2.LINE_AA,
        4,
    )
    if rng.random() < 0.5:  # the lower row
        lower = p[[64, 65, 66, 67, 60]] - off
        reach = rng.uniform(2, 6) * mm * np.array([0.2, 0.8, 1.0, 0.8, 0.2])
        cv2.fillPoly(
            rows,
            [np.round(np.vstack([lower, (lower - reach[:, None] * down)[::-1]]) * 16).astype(np.int32)],
            1.0,
            cv2.LINE_AA,
            4,
        )
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
    # (M, per_edge), from p1 to p2
    t = t1[:, None] + (t2 - t1)[:, None] * (np.arange(per_edge) / per_edge)[None]
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
