"""Rankings of annotation-budget selection: the order in which each method (`config.SELECTIONS`) picks the
photos of a pool (`candidates.Candidates`). Each ranking's prefixes are the picks for every budget (nested, as
the study's random n_real order is):
  - random: a seeded shuffle of every photo (the baseline);
  - coverage: k-center greedy on the embeddings (each pick the face farthest from every earlier pick);
  - uncertainty: the largest disagreement first;
  - hybrid: k-center greedy with each distance weighted by the face's disagreement rank (0.5-1): spread
    out over the pool, leaning towards faces the model is unsure of.
Photos where no face was found cannot be ranked by the model: they follow the ranked ones (a seeded shuffle).
"""

from __future__ import annotations

import hashlib

import numpy as np

from landmix import config as C
from landmix.candidates import Candidates

METHODS = C.SELECTIONS


def _shuffle(names: list[str], seed: int) -> list[int]:
    """A seeded order of names that does not depend on their listing order."""
    key = [hashlib.sha1(f"select:{seed}:{n}".encode()).hexdigest() for n in names]
    return sorted(range(len(names)), key=key.__getitem__)


def k_center(features: np.ndarray, count: int, weight: np.ndarray | None = None) -> list[int]:
    """Greedy k-center: start from the face nearest the mean (the most typical), then repeatedly the face
    farthest from every face picked so far (its distance times `weight` where given). Returns count indices."""
    x = np.asarray(features, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    w = np.ones(len(x)) if weight is None else np.asarray(weight, np.float64)
    dist = np.linalg.norm(x - x.mean(0), axis=1)
    picks = [int(np.argmin(dist))]
    nearest = np.linalg.norm(x - x[picks[0]], axis=1)
    for _ in range(min(count, len(x)) - 1):
        score = nearest * w
        score[picks] = -1.0
        picks.append(int(np.argmax(score)))
        nearest = np.minimum(nearest, np.linalg.norm(x - x[picks[-1]], axis=1))
    return picks


def rank(cands: Candidates, method: str, count: int | None = None, seed: int = 0) -> list[int]:
    """The first `count` photos (all by default) in the order `method` picks them (indices into cands)."""
    if method not in METHODS:
        raise ValueError(f"--method {method!r}; choose one of {list(METHODS)}")
    n = len(cands.names)
    count = n if count is None else min(count, n)
    if method == "random":
        return _shuffle(cands.names, seed)[:count]
    ranked = np.flatnonzero(cands.found)
    if method == "uncertainty":
        order = sorted(ranked, key=lambda i: (-cands.disagreement[i], cands.names[i]))
    else:
        weight = None
        if method == "hybrid":  # 0.5 for the surest face of the pool, 1 for the least sure
            r = np.argsort(np.argsort(cands.disagreement[ranked]))
            weight = 0.5 + 0.5 * r / max(len(ranked) - 1, 1)
        order = [ranked[j] for j in k_center(cands.embedding[ranked], min(count, len(ranked)), weight)]
    order = [int(i) for i in order][:count]
    unfound = [i for i in _shuffle(cands.names, seed) if not cands.found[i]]
    return (order + unfound)[:count]
