"""Label translation between landmark conventions: a fixed table, or a fitted ridge map on top of it.

The fixed map is declarative: each target point is a weighted sum of source points
(`FIXED_TABLES[(src, dst)][i] = ((j, w), ...)`, weights summing to 1). SYNTH70 -> IBUG68 keeps the
68 shared points and drops the two pupils; the x-ray jaw stays an x-ray jaw.

The learned translator closes the label gap the fixed map leaves (a jaw projected from 3D vs a
jaw drawn on the visible outline). Every face is first aligned to a reference shape by a
similarity (`align`), so the map sees pose-normalised shapes; a ridge regression predicts the
residual from the fixed map in those coordinates (strong regularisation falls back to the fixed
map), and the inverse similarity takes the prediction back to pixels. Fitting always adds the
mirrored pairs and the reference is made mirror-symmetric, so the ridge solution is exactly
flip-equivariant: translating a flipped face equals flipping the translated face.

    tr = fit(x_src, y_dst, SYNTH70, IBUG68)        # (N, 70, 2), (N, 68, 2) pixels
    y = tr(x)                                      # (N, 68, 2)
    tr.save("translator.npz"); tr = load("translator.npz"); tr.version  # "ridge-3f9a..."
    both = chain(tr, fit(model_pts, human_pts, IBUG68, IBUG68))   # stages applied in order, one artifact

A second, real-face stage is fitted from a synthetic-trained model's predictions on real faces by
`landmix.relabel.fit_translator` (`landmix fit-translator`) and chained after the first; this module
knows nothing of models or training.

A small MLP was not added: on the generator's paired conventions it measured worse overall than
the ridge map (it disturbs the inner points; docs/results/prepare.md).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:  # BLAS threads only hurt on these small matrices (and stall on a busy machine)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn (an mlflow dependency)
    from contextlib import nullcontext as threadpool_limits

from landmix.schemes import IBUG68, SYNTH70, Scheme, flip_points, get_scheme

# (source scheme, target scheme) -> {target point: ((source point, weight), ...)}; weights sum to 1.
FIXED_TABLES: dict[tuple[str, str], dict[int, tuple[tuple[int, float], ...]]] = {
    # FaceSynthetics' first 68 points are iBUG 68 in order; the pupils (68, 69) have no iBUG point.
    (SYNTH70.name, IBUG68.name): {i: ((i, 1.0),) for i in range(68)},
    (IBUG68.name, IBUG68.name): {i: ((i, 1.0),) for i in range(68)},
}

FORMAT_VERSION = 1  # bump when the .npz layout changes


def table_matrix(src: Scheme, dst: Scheme) -> np.ndarray:
    """The fixed map as a (K_dst, K_src) matrix: y = M @ x."""
    try:
        table = FIXED_TABLES[(src.name, dst.name)]
    except KeyError:
        raise ValueError(f"no fixed table {src.name} -> {dst.name}; known: {sorted(FIXED_TABLES)}") from None
    m = np.zeros((dst.num_points, src.num_points), np.float64)
    for i, row in table.items():
        for j, w in row:
            m[i, j] = w
    return m


def align(pts: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Similarities (no reflection) taking each face onto ref, least squares (Umeyama).

    pts: (N, K, 2), ref: (K, 2). Returns a (N, 2, 2) = scale * rotation and t (N, 2): a @ p + t ~ ref.
    """
    pts = np.asarray(pts, np.float64)
    mu, mu_ref = pts.mean(1), ref.mean(0)
    p, q = pts - mu[:, None], ref - mu_ref
    # For 2D similarity: a = [[c, -s], [s, c]] with (c, s) = (sum p.q, sum p x q) / sum |p|^2.
    denom = (p**2).sum((1, 2))
    c = (p * q).sum((1, 2)) / denom
    s = (p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]).sum(1) / denom
    a = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    t = mu_ref - np.einsum("nij,nj->ni", a, mu)
    return a, t


def mean_shape(pts: np.ndarray, scheme: Scheme, iters: int = 4) -> np.ndarray:
    """Generalised Procrustes mean of pts (N, K, 2), upright (eye line along +x), centred, unit RMS."""
    ref = pts[0] - pts[0].mean(0)
    for _ in range(iters):
        a, t = align(pts, ref)
        ref = (np.einsum("nij,nkj->nki", a, pts) + t[:, None]).mean(0)
        ref = ref - ref.mean(0)
        ref = ref / np.sqrt((ref**2).sum(1).mean())
    eye_l = ref[list(scheme.groups["eye_image_left"])].mean(0)
    eye_r = ref[list(scheme.groups["eye_image_right"])].mean(0)
    ang = np.arctan2(*(eye_r - eye_l)[::-1])
    rot = np.array([[np.cos(-ang), -np.sin(-ang)], [np.sin(-ang), np.cos(-ang)]])
    return ref @ rot.T


def _mirror(pts: np.ndarray, scheme: Scheme) -> np.ndarray:
    """Reflect about x = 0 and permute indices: the mirror image in normalised coordinates."""
    return flip_points(pts, 1.0, scheme)  # x -> 1 - 1 - x = -x


@dataclass(frozen=True, eq=False)
class Translator:
    """A translation src -> dst. base: (K_dst, K_src) fixed table; for a fitted map also ref (K_src, 2)
    the symmetric reference shape, weight (2 K_src, 2 K_dst) and bias (2 K_dst,) of the residual ridge
    map in reference coordinates, and alpha, the ridge penalty chosen by cross-validation."""

    src: Scheme
    dst: Scheme
    base: np.ndarray
    ref: np.ndarray | None = None
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    alpha: float = 0.0

    @property
    def kind(self) -> str:
        return "fixed" if self.weight is None else "ridge"

    @property
    def version(self) -> str:
        """kind-hash of the parameters: two translators with the same version translate identically."""
        h = hashlib.sha256(f"{FORMAT_VERSION}:{self.src.name}:{self.dst.name}".encode())
        for arr in (self.base, self.ref, self.weight, self.bias):
            if arr is not None:
                h.update(np.ascontiguousarray(arr, np.float64).tobytes())
        return f"{self.kind}-{h.hexdigest()[:12]}"

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        """Translate pts (K_src, 2) or (N, K_src, 2) pixels into (…, K_dst, 2) float32 pixels."""
        pts = np.asarray(pts, np.float64)
        single = pts.ndim == 2
        pts = pts[None] if single else pts
        self.src.validate(pts)
        if self.weight is None:
            out = np.einsum("ij,njk->nik", self.base, pts)
        else:
            a, t = align(pts, self.ref)
            xn = np.einsum("nij,nkj->nki", a, pts) + t[:, None]
            yn = np.einsum("ij,njk->nik", self.base, xn)
            yn = yn + (xn.reshape(len(xn), -1) @ self.weight + self.bias).reshape(yn.shape)
            out = np.einsum("nij,nkj->nki", np.linalg.inv(a), yn - t[:, None])
        out = out.astype(np.float32)
        return out[0] if single else out

    def _arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in ("base", "ref", "weight", "bias") if getattr(self, k) is not None}

    def _meta(self) -> dict:
        return {"format": FORMAT_VERSION, "src": self.src.name, "dst": self.dst.name, "alpha": self.alpha,
                "version": self.version}  # fmt: skip

    def save(self, path) -> Path:
        """Write the versioned .npz artifact (log it with landmix.tracking); returns the path."""
        return _write_npz(path, self._meta(), self._arrays())

    @classmethod
    def _from(cls, meta: dict, arrays: dict, path) -> Translator:
        tr = cls(get_scheme(meta["src"]), get_scheme(meta["dst"]), alpha=meta["alpha"], **arrays)
        if tr.version != meta["version"]:
            raise ValueError(f"{path}: parameters do not match version {meta['version']}; the file is damaged")
        return tr

    @classmethod
    def load(cls, path) -> Translator:
        """Read a single-stage artifact written by `save` (`landmix.translate.load` reads chains too)."""
        tr = load(path)
        if not isinstance(tr, cls):
            raise ValueError(f"{path} holds a chain of {len(tr.stages)} translators; read it with translate.load")
        return tr


def fixed(src: Scheme = SYNTH70, dst: Scheme = IBUG68) -> Translator:
    """The fixed-table translator src -> dst."""
    return Translator(src, dst, table_matrix(src, dst))


def _ridge_path(x: np.ndarray, r: np.ndarray, alphas) -> list[tuple[np.ndarray, np.ndarray]]:
    """Ridge fits r ~ x @ w + b (intercept unpenalised) for every alpha from one eigendecomposition.

    x: (N, D), r: (N, E). Returns [(w (D, E), b (E,)), ...], one per alpha.
    """
    mx, mr = x.mean(0), r.mean(0)
    xc = x - mx
    with threadpool_limits(1):
        s, v = np.linalg.eigh(xc.T @ xc)
        proj = v.T @ (xc.T @ (r - mr))  # (D, E)
        out = []
        for alpha in alphas:
            w = v @ (proj / (np.maximum(s, 0.0) + alpha)[:, None])
            out.append((w, mr - mx @ w))
    return out


RIDGE_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)  # the ridge penalties `fit` chooses among by cross-validation
OFFSET_ONLY = (math.inf,)  # as `alphas`: an infinite penalty leaves the per-point offset alone


def fit(
    x_src: np.ndarray,
    y_dst: np.ndarray,
    src: Scheme = SYNTH70,
    dst: Scheme = IBUG68,
    alphas: tuple[float, ...] = RIDGE_ALPHAS,
    folds: int = 5,
    seed: int = 0,
    modes: int = 0,
) -> Translator:
    """Fit the ridge translator on paired faces x_src (N, K_src, 2) -> y_dst (N, K_dst, 2), pixels.

    The penalty is chosen by `folds`-fold cross-validation over `alphas` (error in reference units).
    modes > 0: the map reads only the source shapes' first `modes` principal components (of the pose-normalised
    shapes and their mirror images: head pose, mouth opening, ..), not every coordinate: the residual is the
    per-point offset plus a linear function of those few numbers. Stored as the same full map.
    """
    x, y = np.asarray(x_src, np.float64), np.asarray(y_dst, np.float64)
    src.validate(x)
    dst.validate(y)
    if len(x) != len(y) or len(x) < folds:
        raise ValueError(f"need as many source as target faces, at least {folds}; got {len(x)} and {len(y)}")
    base = table_matrix(src, dst)
    ref = mean_shape(np.concatenate([x, flip_points(x, 0.0, src)]), src)
    ref = (ref + _mirror(ref, src)) / 2  # exactly symmetric: the fit is flip-equivariant
    a, t = align(x, ref)
    xn = np.einsum("nij,nkj->nki", a, x) + t[:, None]
    yn = np.einsum("nij,nkj->nki", a, y) + t[:, None]
    # Mirrored pairs: a face and its mirror image carry the same label convention.
    xn = np.concatenate([xn, _mirror(xn, src)])
    yn = np.concatenate([yn, _mirror(yn, dst)])
    feats = xn.reshape(len(xn), -1)
    resid = (yn - np.einsum("ij,njk->nik", base, xn)).reshape(len(yn), -1)
    if modes:  # the ridge reads (feats - mean) @ project: the first `modes` principal components, (D, modes)
        if not 0 < modes < feats.shape[1]:
            raise ValueError(f"modes={modes}: use 1 .. {feats.shape[1] - 1} principal components of the source shapes")
        mean = feats.mean(0)
        project = np.linalg.svd(feats - mean, full_matrices=False)[2][:modes].T
        feats = (feats - mean) @ project

    n = len(x)
    fold = np.random.default_rng(seed).permutation(n) % folds
    fold = np.concatenate([fold, fold])  # a mirrored pair stays in one fold
    errors = np.zeros(len(alphas))
    for k in range(folds):
        for j, (w, b) in enumerate(_ridge_path(feats[fold != k], resid[fold != k], alphas)):
            errors[j] += ((feats[fold == k] @ w + b - resid[fold == k]) ** 2).sum()
    alpha = float(alphas[int(np.argmin(errors))])
    ((w, b),) = _ridge_path(feats, resid, [alpha])
    if modes:  # back to a map of the coordinates: (x - mean) @ project @ w + b
        w = project @ w
        b = b - mean @ w
    return Translator(src, dst, base, ref=ref, weight=w, bias=b, alpha=alpha)


@dataclass(frozen=True, eq=False)
class Chain:
    """Translators applied one after another (src of each = dst of the one before), saved as one artifact.

    The label gap is closed in stages: x-ray -> annotator convention fitted on the generator's pairs, then
    "as a synthetic-trained model places the points" -> "as the 300-W annotators did" fitted on real faces.
    """

    stages: tuple[Translator, ...]

    def __post_init__(self):
        if not self.stages:
            raise ValueError("a translator chain needs at least one stage")
        for a, b in zip(self.stages, self.stages[1:]):
            if a.dst != b.src:
                raise ValueError(f"cannot chain {a.src.name} -> {a.dst.name} with {b.src.name} -> {b.dst.name}")

    src = property(lambda self: self.stages[0].src)
    dst = property(lambda self: self.stages[-1].dst)
    kind = "chain"

    @property
    def version(self) -> str:
        h = hashlib.sha256("+".join(s.version for s in self.stages).encode())
        return f"chain-{h.hexdigest()[:12]}"

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        for stage in self.stages:
            pts = stage(pts)
        return pts

    def save(self, path) -> Path:
        """One .npz holding every stage (arrays prefixed s0_, s1_, ...); `load` reads it back."""
        arrays, metas = {}, []
        for i, stage in enumerate(self.stages):
            metas.append(stage._meta())
            arrays |= {f"s{i}_{k}": v for k, v in stage._arrays().items()}
        meta = {"format": FORMAT_VERSION, "kind": self.kind, "src": self.src.name, "dst": self.dst.name,
                "stages": metas, "version": self.version}  # fmt: skip
        return _write_npz(path, meta, arrays)


def chain(*translators: Translator | Chain) -> Translator | Chain:
    """Compose translators in the order given (nested chains are flattened); one stage is returned as is."""
    stages = tuple(s for t in translators for s in (t.stages if isinstance(t, Chain) else (t,)))
    return stages[0] if len(stages) == 1 else Chain(stages)


def in_words(tr: Translator | Chain) -> str:
    """A translator's stages for a report: "ridge synth70 -> ibug68, then 2 ibug68 -> ibug68 maps (ridge)". The
    stages that keep the scheme are the ones fitted on real faces, one per re-labelling round."""
    stages = tr.stages if isinstance(tr, Chain) else (tr,)
    first = [s for s in stages if s.src != s.dst]
    same = [s for s in stages if s.src == s.dst]
    words = [f"{s.kind} {s.src.name} -> {s.dst.name}" for s in first]
    if same:
        n, kinds = len(same), "/".join(sorted({s.kind for s in same}))
        words.append(f"{n} {same[0].src.name} -> {same[0].dst.name} map{'s' if n > 1 else ''} ({kinds})")
    return ", then ".join(words)


def load(path) -> Translator | Chain:
    """Read a translator or a chain written by `save`; refuses damaged files and unknown formats."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        arrays = {k: z[k] for k in z.files if k != "meta"}
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: translator format {meta.get('format')}, this code reads {FORMAT_VERSION}")
    if meta.get("kind") == Chain.kind:
        stages = []
        for i, m in enumerate(meta["stages"]):
            part = {k.removeprefix(f"s{i}_"): v for k, v in arrays.items() if k.startswith(f"s{i}_")}
            stages.append(Translator._from(m, part, path))
        tr = Chain(tuple(stages))
        if tr.version != meta["version"]:
            raise ValueError(f"{path}: stages do not match version {meta['version']}; the file is damaged")
        return tr
    return Translator._from(meta, arrays, path)


def _write_npz(path, meta: dict, arrays: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:  # a file object: np.savez would append ".npz" to a bare name
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
    return path


def load_or_fixed(paths, src: Scheme = SYNTH70, dst: Scheme = IBUG68) -> Translator | Chain:
    """The translator saved at `paths` (one path, or several applied in order as a chain), or the fixed
    table when empty."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths or ())
    paths = [p for p in paths if p]
    if not paths:
        return fixed(src, dst)
    tr = chain(*(load(p) for p in paths))
    if (tr.src, tr.dst) != (src, dst):
        raise ValueError(
            f"{' then '.join(map(str, paths))} translates {tr.src.name} -> {tr.dst.name}; "
            f"this job needs {src.name} -> {dst.name}"
        )
    return tr
