"""`landmix audit`: which real labels to distrust, judged by models that never saw them.

This module holds the judgement: given, for every labelled face, a model's out-of-fold points (the mean of its
views: the crop shifted, scaled and mirrored) and how much those views disagree, which labels disagree with
what the face shows more than the model's own doubt and the point's ambiguity explain, and what kind of error
each looks like. It is numpy and `detect.match` (the detector's box overlap); the out-of-fold predictions
come from k-fold fine-tunes grouped by photo.

The unit of evidence is a point's standardised residual. For face i and point j, r_ij = |label - model| in
inter-ocular distances (the label's own). The point's ambiguity a_j is the robust spread of r_.j over all the
faces (the median of a 2-D error is 1.1774 sigma for an isotropic Gaussian), so contour points, which people
place differently, weigh less than eye corners; the model's doubt u_ij is the RMS spread of its views at that
point (scaled by `doubt_scale`: the views of one model disagree less than it errs), so a profile, an
occluded or a shadowed face, where the model is unsure, is not a suspect merely for being hard.
z_ij^2 = r_ij^2 / (a_j^2 + u_ij^2) would then be about chi-square with 2 degrees of freedom on a right label.

Each kind of error is an explanation of the residuals with a few free parameters, and its evidence is how much
it lowers sum(z^2), less what that many parameters would buy on a right label, over that quantity's spread
(a likelihood-ratio statistic in standard deviations):

- `swap`: left and right exchanged (the labels permuted by the scheme's flip permutation; no parameters);
- `contour`: the jaw (the 17 contour points) displaced as a whole (a shift: 2 parameters);
- `offset`: the whole label moved or scaled (a similarity: 4 parameters);
- `points`: one to `MAX_POINTS` single points misplaced: the worst points beyond what any right point
  reaches, freed, against the null of as many worst points of a right label;
- `no_face`: the label's box overlaps none of the faces a detector found on the photo (when it found one);
  such a face ranks above every statistical suspect of the set.

Those statistics would be standard deviations if the points' errors were independent; on real faces they are
not (a model that is off on a hard face is off at many points together, and people's conventions move whole
groups), so on the 1,207 shared 300-W faces the raw `offset` statistic has a median of 6.7 and a 95th
percentile of 34, and a threshold on the raw statistics made 933 of them suspects. `judge` therefore measures
each kind against the set's own faces, most of whose labels are right: a kind's evidence is (raw - the set's
median) / the set's upper spread ((75th percentile - median) / 0.6745: the spread of a Gaussian with that
upper quartile, robust to the long right tail the wrong labels make), given at least `MIN_CALIBRATION_FACES`
faces (fewer: the raw statistics); `swap` keeps its raw statistic (see `calibration`). A face's `suspicion`
is its largest calibrated evidence (how far out of this set it is on any kind); its kind is the explanation
whose raw statistic is largest (the one that explains its residuals best: the raw statistics share one
scale), and the points judged wrong and the suggestion are that explanation's. A face is a suspect when its
suspicion is over `SUSPECT`, the one threshold the figures, the docs and the tests use.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from landmix import detect
from landmix.schemes import IBUG68, Scheme, interocular

SUSPECT = 6.0  # suspicion (the set's upper spreads of evidence over its median) over which a face is suspect
MIN_CALIBRATION_FACES = 20  # the fewest faces whose evidence calibrates a kind (judge)
KINDS = ("swap", "contour", "offset", "points", "no_face")
MAX_POINTS = 4  # the most single points the `points` explanation frees
RAYLEIGH_MEDIAN = 1.1774  # the median of |e| for a 2-D isotropic Gaussian e, in units of its sigma
NO_FACE_IOU = detect.MIN_IOU  # a label box overlapping no detected face by this much is away from every face


@dataclass
class Verdict:
    """One face's judgement."""

    suspicion: float  # the largest calibrated evidence (judge), in the set's upper spreads
    kind: str  # its name (KINDS), or "" where nothing is explained better than noise
    points: list[int]  # the points that explanation judges wrong (0-based)
    evidence: dict[str, float]  # every kind's calibrated evidence
    suggestion: np.ndarray  # (K, 2) the label with the judged points replaced by the model's


def point_ambiguity(labels: np.ndarray, predictions: np.ndarray, scheme: Scheme = IBUG68) -> np.ndarray:
    """(K,) each point's robust spread sigma_j, in inter-ocular distances: the median over faces of
    |label - model| / 1.1774. Medians, so a few wrong labels do not make their points look ambiguous."""
    r = residuals(labels, predictions, scheme)
    return np.maximum(np.nanmedian(r, axis=0) / RAYLEIGH_MEDIAN, 1e-4)


def doubt_scale(
    labels: np.ndarray, predictions: np.ndarray, doubts: np.ndarray, scheme: Scheme = IBUG68
) -> float:
    """How much the model's doubt (its views' spread) understates its error on these faces: the median
    residual over the median doubt, at least 1 (2.1 on the shared 300-W faces' out-of-fold predictions). The
    views of one model share its blind spots, so they disagree less than the model errs."""
    doubts = np.asarray(doubts, np.float64)
    typical = float(np.nanmedian(doubts)) if doubts.size else 0.0
    if typical <= 0:
        return 1.0
    return max(float(np.nanmedian(residuals(labels, predictions, scheme))) / typical, 1.0)


def residuals(labels: np.ndarray, predictions: np.ndarray, scheme: Scheme = IBUG68) -> np.ndarray:
    """(N, K) |label - model| per point, in the label's inter-ocular distances."""
    iod = np.maximum(interocular(labels, scheme), 1e-6)
    return np.linalg.norm(labels - predictions, axis=-1) / iod[:, None]


def _similarity(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> np.ndarray:
    """src moved by the weighted least-squares similarity (scale, rotation, shift) that brings it nearest dst."""
    w = w / w.sum()
    ms, md = (w[:, None] * src).sum(0), (w[:, None] * dst).sum(0)
    a, b = src - ms, dst - md
    # complex form: dst ~ c * src, c = sum(w conj(a) b) / sum(w |a|^2)
    za, zb = a[:, 0] + 1j * a[:, 1], b[:, 0] + 1j * b[:, 1]
    c = (w * np.conj(za) * zb).sum() / max((w * np.abs(za) ** 2).sum(), 1e-12)
    moved = c * za
    return np.stack([moved.real, moved.imag], -1) + md


@functools.cache
def _worst_points_null(k: int) -> np.ndarray:
    """(MAX_POINTS, 2): mean and spread of the sum of the m largest of k chi-square(2) values, m = 1..MAX_POINTS:
    what freeing the m worst points of a right label buys (they are chosen for being worst). Fixed draws."""
    draws = np.sort(np.random.default_rng(0).chisquare(2, size=(20_000, k)), axis=1)[:, ::-1]
    sums = np.cumsum(draws[:, :MAX_POINTS], axis=1)
    return np.stack([sums.mean(0), sums.std(0)], -1)


def _evidence(drop: float, params: int) -> float:
    """How far a fall of `drop` in sum(z^2) exceeds what `params` free parameters buy on a right label
    (chi-square with `params` degrees of freedom: mean params, spread sqrt(2 params)), in its spreads."""
    params = max(params, 1)
    return float((drop - params) / np.sqrt(2 * params))


@dataclass
class Explanations:
    """One face's explanations of its residuals, before calibration: each statistical kind's raw statistic,
    whether the label is away from every detected face, and per kind the points it judges wrong and the label
    it would correct to."""

    label: np.ndarray  # (K, 2) as given
    raw: dict[str, float]  # the statistical kinds (not no_face)
    away: bool  # no_face: a fact about the photo, not a statistic
    points: dict[str, list[int]]
    fixed: dict[str, np.ndarray]


def explain(
    label: np.ndarray,
    prediction: np.ndarray,
    doubt: np.ndarray,
    ambiguity: np.ndarray,
    scheme: Scheme = IBUG68,
    detected_boxes: np.ndarray | None = None,
) -> Explanations:
    """One face: label (K, 2) and the model's points (K, 2) in image pixels, the model's doubt (K,) and the
    points' ambiguity (K,) in inter-ocular distances; detected_boxes (M, 4) x0, y0, x1, y1 of the faces a
    detector found on the photo (None: not looked for). Every kind's raw likelihood-ratio statistic."""
    label, prediction = np.asarray(label, np.float64), np.asarray(prediction, np.float64)
    iod = max(float(interocular(label, scheme)), 1e-6)
    var = (ambiguity**2 + np.asarray(doubt, np.float64) ** 2) * iod**2  # (K,) in pixels^2

    def z2(lab: np.ndarray) -> np.ndarray:
        return ((lab - prediction) ** 2).sum(-1) / var

    base = z2(label)
    total = float(base.sum())
    evidence: dict[str, float] = {}
    judged: dict[str, list[int]] = {}
    fixed: dict[str, np.ndarray] = {}

    flip = np.asarray(scheme.flip_perm)
    swapped = label[flip]
    moved = np.flatnonzero(flip != np.arange(len(flip)))
    evidence["swap"] = _evidence(total - float(z2(swapped).sum()), 0) if len(moved) else -np.inf
    judged["swap"], fixed["swap"] = moved.tolist(), swapped

    jaw = np.asarray(scheme.groups.get("jaw", ()), int)
    if len(jaw):
        w = 1.0 / var[jaw]
        shift = ((prediction[jaw] - label[jaw]) * w[:, None]).sum(0) / w.sum()
        lab = label.copy()
        lab[jaw] += shift
        evidence["contour"] = _evidence(total - float(z2(lab).sum()), 2)
        judged["contour"], fixed["contour"] = jaw.tolist(), lab
    else:
        evidence["contour"] = -np.inf

    lab = _similarity(label, prediction, 1.0 / var)
    evidence["offset"] = _evidence(total - float(z2(lab).sum()), 4)
    judged["offset"], fixed["offset"] = list(range(len(label))), lab

    order = np.argsort(-base)
    # the points judged wrong: the worst ones beyond what any of K right points reaches (chi-square(2) at
    # 1 - 1 % / K), at least the worst, at most MAX_POINTS; the evidence is their sum against the null of
    # the same number of worst points of a right label
    beyond = 2.0 * np.log(100.0 * len(label))
    best_m = int(np.clip((base[order[:MAX_POINTS]] > beyond).sum(), 1, MAX_POINTS))
    mean, spread = _worst_points_null(len(label))[best_m - 1]
    evidence["points"] = (float(base[order[:best_m]].sum()) - mean) / spread
    lab = label.copy()
    lab[order[:best_m]] = prediction[order[:best_m]]
    judged["points"], fixed["points"] = sorted(order[:best_m].tolist()), lab

    away = detected_boxes is not None and len(detected_boxes) > 0
    away = away and detect.match(detected_boxes, label, NO_FACE_IOU)[0] < 0
    judged["no_face"], fixed["no_face"] = list(range(len(label))), prediction.copy()
    return Explanations(label, evidence, away, judged, fixed)


def calibration(explained: list[Explanations]) -> dict[str, tuple[float, float]]:
    """Per statistical kind (not no_face), the set's (median, upper spread) of its raw statistic; (0, 1) for
    every kind when there are fewer than MIN_CALIBRATION_FACES faces, and for `swap` always: it frees no
    parameter, so it is negative on every label that fits better than its mirror (far below zero on an easy
    face, near it where the model doubts everything) and positive only where the swapped label fits better;
    a set's spread of it measures how hard its faces are, not how wrong."""
    kinds = [k for k in KINDS if k != "no_face"]
    if len(explained) < MIN_CALIBRATION_FACES:
        return {k: (0.0, 1.0) for k in kinds}
    out = {"swap": (0.0, 1.0)}
    for k in kinds[1:]:
        raw = np.array([e.raw[k] for e in explained])
        raw = raw[np.isfinite(raw)]
        if len(raw) < MIN_CALIBRATION_FACES:
            out[k] = (0.0, 1.0)
            continue
        median = float(np.median(raw))
        out[k] = (median, max((float(np.percentile(raw, 75)) - median) / 0.6745, 1e-6))
    return out


def calibrated_evidence(e: Explanations, calibrated: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Each statistical kind's evidence of one face, in the set's spreads (`calibration`)."""
    return {k: (e.raw[k] - m) / s if np.isfinite(e.raw[k]) else -np.inf for k, (m, s) in calibrated.items()}


def verdict(e: Explanations, evidence: dict[str, float], away_suspicion: float) -> Verdict:
    """One face's judgement from its calibrated evidence; a label away from every face is that, whatever its
    residuals look like, with `away_suspicion`."""
    evidence = evidence | {"no_face": away_suspicion if e.away else -np.inf}
    # the kind: the explanation that explains the residuals best (the raw statistics share one scale); the
    # suspicion: how far out of this set the face is on any kind
    kind = "no_face" if e.away else max(e.raw, key=e.raw.get)
    suspicion = away_suspicion if e.away else max(evidence.values())
    return Verdict(
        suspicion=float(suspicion),
        kind=kind if suspicion > 0 else "",
        points=e.points[kind] if suspicion > 0 else [],
        evidence={k: float(v) for k, v in evidence.items()},
        suggestion=(e.fixed[kind] if suspicion > 0 else e.label).astype(np.float32),
    )


def judge(
    labels: np.ndarray,
    predictions: np.ndarray,
    doubts: np.ndarray,
    scheme: Scheme = IBUG68,
    detected: list[np.ndarray | None] | None = None,
) -> tuple[list[Verdict], np.ndarray]:
    """Every face: labels and predictions (N, K, 2), doubts (N, K) in inter-ocular distances; detected: per
    face the detector's boxes on its photo (or None). Returns each face's verdict, in the input's order, its
    evidence calibrated on these faces (see the module docstring), and the points' ambiguity (K,)."""
    labels, predictions = np.asarray(labels, np.float64), np.asarray(predictions, np.float64)
    if labels.shape != predictions.shape or labels.shape[:1] != np.shape(doubts)[:1]:
        raise ValueError(
            f"labels {labels.shape}, predictions {predictions.shape} and doubts {np.shape(doubts)} must "
            "describe the same faces"
        )
    ambiguity = point_ambiguity(labels, predictions, scheme)
    doubts = np.asarray(doubts, np.float64) * doubt_scale(labels, predictions, doubts, scheme)
    detected = detected if detected is not None else [None] * len(labels)
    explained = [
        explain(lab, pred, doubt, ambiguity, scheme, boxes)
        for lab, pred, doubt, boxes in zip(labels, predictions, doubts, detected)
    ]
    calibrated = calibration(explained)
    evidence = [calibrated_evidence(e, calibrated) for e in explained]
    # a label away from every detected face is a fact about the photo, not a statistic: it ranks above every
    # statistical suspect of the set (its model looked where the label is, so its residuals can be small)
    top = max((max(ev.values()) for e, ev in zip(explained, evidence) if not e.away), default=SUSPECT)
    away_suspicion = max(top, SUSPECT) + 1.0
    return [verdict(e, ev, away_suspicion) for e, ev in zip(explained, evidence)], ambiguity


# ------------------------------------------------------------------------------------------ planted errors
def plant(label: np.ndarray, kind: str, rng: np.random.Generator, scheme: Scheme = IBUG68) -> np.ndarray:
    """A copy of one face's label (K, 2) with an error of `kind` planted, of a size a careless annotator or a
    broken conversion makes: a left/right swap; the jaw shifted by 0.15-0.3 inter-ocular distances; the whole
    label shifted by 0.15-0.3 and scaled by 0.85-1.15; 1-3 points moved by 0.3-0.6; the label moved a face width
    or more away (no_face)."""
    lab = np.array(label, np.float64, copy=True)
    iod = float(interocular(lab, scheme))
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction)
    if kind == "swap":
        return lab[list(scheme.flip_perm)]
    if kind == "contour":
        jaw = list(scheme.groups["jaw"])
        lab[jaw] += direction * rng.uniform(0.15, 0.3) * iod
        return lab
    if kind == "offset":
        centre = lab.mean(0)
        return (lab - centre) * rng.uniform(0.85, 1.15) + centre + direction * rng.uniform(0.15, 0.3) * iod
    if kind == "points":
        for j in rng.choice(len(lab), size=int(rng.integers(1, 4)), replace=False):
            d = rng.normal(size=2)
            lab[j] += d / np.linalg.norm(d) * rng.uniform(0.3, 0.6) * iod
        return lab
    if kind == "no_face":
        width = float(np.ptp(lab[:, 0]))
        return lab + direction * 1.5 * width
    raise ValueError(f"unknown kind of error {kind!r}; known: {KINDS}")


def precision_recall_at_k(suspicion: np.ndarray, planted: np.ndarray) -> tuple[float, float]:
    """Precision and recall of the k most suspicious faces, k = the number planted (then they are equal)."""
    planted = np.asarray(planted, bool)
    k = int(planted.sum())
    if not k:
        return float("nan"), float("nan")
    top = np.argsort(-np.asarray(suspicion), kind="stable")[:k]
    hits = int(planted[top].sum())
    return hits / k, hits / k
