"""Label translators as data: a fixed table, a fitted map on top of it, or a chain of them; applied, saved as a
versioned .npz and read back.

The fixed map is declarative: each target point is a weighted sum of source points
(`FIXED_TABLES[(src, dst)][i] = ((j, w), ...)`, weights summing to 1). SYNTH70 -> IBUG68 keeps the
68 shared points and drops the two pupils; the x-ray jaw stays an x-ray jaw. A fitted `Translator` (fitted by
landmix.translate.ridge) adds a ridge map of the residual in pose-normalised coordinates
(landmix.translate.procrustes); a `Chain` applies translators one after another, saved as one artifact.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landmix.schemes import IBUG68, SYNTH70, Scheme, get_scheme
from landmix.translate.procrustes import align

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
        return {
            k: getattr(self, k) for k in ("base", "ref", "weight", "bias") if getattr(self, k) is not None
        }

    def _meta(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "src": self.src.name,
            "dst": self.dst.name,
            "alpha": self.alpha,
            "version": self.version,
        }

    def save(self, path) -> Path:
        """Write the versioned .npz artifact (log it with landmix.tracking); returns the path."""
        return _write_npz(path, self._meta(), self._arrays())

    @classmethod
    def _from(cls, meta: dict, arrays: dict, path) -> Translator:
        tr = cls(get_scheme(meta["src"]), get_scheme(meta["dst"]), alpha=meta["alpha"], **arrays)
        if tr.version != meta["version"]:
            raise ValueError(
                f"{path}: parameters do not match version {meta['version']}; the file is damaged"
            )
        return tr

    @classmethod
    def load(cls, path) -> Translator:
        """Read a single-stage artifact written by `save` (`landmix.translate.load` reads chains too)."""
        tr = load(path)
        if not isinstance(tr, cls):
            raise ValueError(
                f"{path} holds a chain of {len(tr.stages)} translators; read it with translate.load"
            )
        return tr


def fixed(src: Scheme = SYNTH70, dst: Scheme = IBUG68) -> Translator:
    """The fixed-table translator src -> dst."""
    return Translator(src, dst, table_matrix(src, dst))


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
                raise ValueError(
                    f"cannot chain {a.src.name} -> {a.dst.name} with {b.src.name} -> {b.dst.name}"
                )

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
        meta = {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "src": self.src.name,
            "dst": self.dst.name,
            "stages": metas,
            "version": self.version,
        }
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
