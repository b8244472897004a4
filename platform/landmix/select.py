"""`landmix select`: which unlabelled real photos to annotate, chosen with a synthetic-pretrained model.

    landmix select --checkpoint CKPT --pool photos/ --budget 50 --method hybrid --out picks.txt

The selector never reads a label. For each photo of the pool (image files, searched recursively; .pts files
beside them are ignored), dlib's detector finds the faces and the photo's candidate is its best-scoring face
(a photo is what an annotator opens); the model's crop comes from the detector box, refined by the model's own
predictions (`predict.landmarks`, as `landmix predict` does), never from labelled points. From that crop the
model gives:
  - an embedding: the backbone's last feature map, averaged over space (what the model "sees": pose,
    expression, appearance, lighting);
  - a disagreement: the spread of its 68 points over the crop shifted and scaled a little and mirrored
    (`VARIANTS` x 2 predictions), in inter-ocular distances: where the model is unsure;
  - shape descriptors of its predicted points (`descriptors`: yaw, pitch, roll, mouth and eye opening).
Methods (`config.SELECTIONS`), each a ranking whose prefixes are the picks for every budget (nested, as the
study's random n_real order is):
  - random: a seeded shuffle of every photo (the baseline);
  - coverage: k-center greedy on the embeddings (each pick the face farthest from every earlier pick);
  - uncertainty: the largest disagreement first;
  - hybrid: k-center greedy with each distance weighted by the face's disagreement rank (0.5-1): spread
    out over the pool, leaning towards faces the model is unsure of.
Photos where no face was found cannot be ranked by the model: they follow the ranked ones (a seeded shuffle),
and are listed. Writes: OUT (picks.txt: the chosen photos, relative to the pool, in order), and beside it
OUT.json (every photo's detection, disagreement, descriptors, rank; the no-face photos; the synthetic set's
coverage gaps), OUT-sheet.png (the picks' crops with their predicted points) and OUT-coverage.png (pool,
picks and synthetic faces in pose, expression and the model's appearance space).

Where the synthetic set lacks coverage (`coverage_gaps`): the pool's predicted shapes and the synthetic
faces' labels are binned by each descriptor; a bin holding at least 2 % of the pool and under 2 % (and under
half the pool's share) of the synthetic faces is a gap (the generator's to-do list), written to OUT.json and
printed. A model's predictions lean towards the mean shape, so the pool's tails are if anything under-counted:
a gap reported is there, some may be missed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landmix import config as C
from landmix import crops, detect
from landmix.schemes import IBUG68

METHODS = C.SELECTIONS
# The disagreement's crops: (dx, dy, scale) of the crop box, in crop sides; each also mirrored.
VARIANTS = ((0.0, 0.0, 1.0), (0.04, 0.0, 1.0), (-0.04, 0.0, 1.0), (0.0, 0.04, 1.0), (0.0, -0.04, 1.0),
            (0.0, 0.0, 0.92), (0.0, 0.0, 1.08))  # fmt: skip
DESCRIPTORS = ("yaw", "pitch", "roll", "mouth", "eyes")
# A coverage gap: a descriptor bin with >= GAP_MIN_SHARE of the pool that the generator rarely makes (under
# GAP_RARE of the synthetic faces, and under 1 / GAP_RATIO of the pool's share).
GAP_MIN_SHARE, GAP_RARE, GAP_RATIO = 0.02, 0.02, 2.0


@dataclass
class Candidates:
    """One candidate face per photo (its best detection), described by a model. N photos, `found` of them
    with a face; the arrays are NaN where none was found."""

    names: list[str]  # the photos, as the picks file names them
    found: np.ndarray  # (N,) bool: a face was found
    boxes: np.ndarray  # (N, 4) detector box x0, y0, x1, y1, image pixels
    scores: np.ndarray  # (N,) detector score
    crops: np.ndarray  # (N, 3) the last pass's model-input crop x0, y0, side
    points: np.ndarray  # (N, 68, 2) predicted points, image pixels
    embedding: np.ndarray  # (N, D) backbone features
    disagreement: np.ndarray  # (N,) RMS spread of the points over the VARIANTS, in inter-ocular distances
    descriptors: np.ndarray  # (N, len(DESCRIPTORS)) of the predicted points


# ------------------------------------------------------------------------------------------ describing
def descriptors(pts: np.ndarray) -> np.ndarray:
    """Pose and expression of IBUG68 shapes (N, 68, 2) -> (N, 5) yaw, pitch, roll, mouth, eyes, from inner
    points only (the jaw is where the synthetic and human conventions differ):
    yaw: where the nose tip sits between the outer eye corners, -1..1 (0 = frontal; the sign is the image side);
    pitch: how far down the nose tip sits between the eye line and the mouth, 0..1;
    roll: the eye line's angle, degrees; mouth: inner-lip gap / inter-ocular; eyes: eyelid gap / eye width."""
    p = np.asarray(pts, np.float64)
    le, re, nose = p[:, 36], p[:, 45], p[:, 30]
    dl, dr = np.linalg.norm(nose - le, axis=1), np.linalg.norm(nose - re, axis=1)
    iod = np.maximum(np.linalg.norm(re - le, axis=1), 1e-6)
    eye_mid, mouth_mid = (le + re) / 2, (p[:, 48] + p[:, 54]) / 2
    axis = mouth_mid - eye_mid
    depth = np.maximum(np.einsum("ij,ij->i", axis, axis), 1e-6)
    pitch = np.einsum("ij,ij->i", nose - eye_mid, axis) / depth
    roll = np.degrees(np.arctan2(re[:, 1] - le[:, 1], re[:, 0] - le[:, 0]))
    mouth = np.linalg.norm(p[:, 66] - p[:, 62], axis=1) / iod

    def opening(top, bottom, a, b):
        gap = sum(np.linalg.norm(p[:, t] - p[:, u], axis=1) for t, u in zip(top, bottom)) / 2
        return gap / np.maximum(np.linalg.norm(p[:, a] - p[:, b], axis=1), 1e-6)

    eyes = (opening((37, 38), (41, 40), 36, 39) + opening((43, 44), (47, 46), 42, 45)) / 2
    return np.column_stack([(dl - dr) / np.maximum(dl + dr, 1e-6), pitch, roll, mouth, eyes])


def _mirror_back(pts: np.ndarray, size: int) -> np.ndarray:
    out = pts[..., np.asarray(IBUG68.flip_perm), :].copy()  # (..., 68, 2)
    out[..., 0] = size - 1 - out[..., 0]
    return out


def embed(model, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """(N, S, S, 3) uint8 model-input crops -> (N, D) the backbone's last feature map averaged over space."""
    import torch

    net = getattr(model, "module", model).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch])).permute(0, 3, 1, 2).float() / 255.0
            out.append(net.features(x)[-1].mean((2, 3)).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def describe(model, image: np.ndarray, box, calibration: detect.BoxCalibration, passes: int = 3) -> dict:
    """One face of image (H, W, 3) uint8 RGB, found by the detector box (x0, y0, x1, y1): its points (68, 2)
    in image pixels, the crop they were predicted on, its embedding and its disagreement."""
    from landmix import checkpoint, predict

    size, scale = model.cfg.image_size, model.cfg.crop_scale
    pts = predict.landmarks(model, image, [calibration.model_box(box, scale)], passes)[0]
    x0, y0, side = crops.box_for(pts, scale)
    none = np.zeros((0, 2), np.float32)
    cx, cy = x0 + side / 2, y0 + side / 2  # each variant: the crop moved by (dx, dy) sides, scaled about its centre
    boxes = [(round(cx + (dx - k / 2) * side), round(cy + (dy - k / 2) * side), round(k * side))
             for dx, dy, k in VARIANTS]  # integers: crops.crop_image cuts whole pixels
    batch = np.stack([crops.crop_image(image, none, b, size)[0] for b in boxes])
    plain = checkpoint.predict(model, batch, flip=False)
    mirrored = np.stack([_mirror_back(p, size) for p in checkpoint.predict(model, batch[:, :, ::-1], flip=False)])
    views = [predict.uncrop(p, b, size) for b, p in zip(boxes + boxes, np.concatenate([plain, mirrored]))]
    views = np.stack(views)  # (2V, 68, 2) image pixels
    mean = views.mean(0)
    iod = max(float(np.linalg.norm(mean[45] - mean[36])), 1e-6)
    spread = float(np.sqrt(((views - mean) ** 2).sum(-1).mean()) / iod)
    return {"points": pts, "crop": (x0, y0, side), "embedding": embed(model, batch[:1])[0], "disagreement": spread}


def find_faces(photos: list[Path]) -> list[dict]:
    """The best-scoring detection of each photo: {"box": [x0, y0, x1, y1] or None, "score"} (or "error" where
    the photo cannot be read). Depends on the images only: a sweep computes it once for every seed."""
    from landmix import predict

    out = []
    for path in photos:
        try:
            image = predict.read_photo(path)
        except (ValueError, OSError) as e:
            out.append({"box": None, "score": None, "error": str(e)})
            continue
        boxes, scores = detect.detect_faces(image, scores=True)
        out.append({"box": boxes[0].tolist(), "score": float(scores[0])} if len(boxes) else {"box": None, "score": None})
    return out


def describe_pool(model, photos: list[Path], names: list[str], detections: list[dict],
                  calibration: detect.BoxCalibration | None = None) -> Candidates:  # fmt: skip
    """Every photo's candidate described by the model (NaN rows where no face was found)."""
    from landmix import predict

    calibration = calibration or detect.BoxCalibration.load()
    n, k = len(photos), model.cfg.num_points
    found = np.array([d["box"] is not None for d in detections], bool)
    boxes, pts = np.full((n, 4), np.nan), np.full((n, k, 2), np.nan, np.float32)
    crop, scores, dis = np.full((n, 3), np.nan), np.full(n, np.nan), np.full(n, np.nan)
    emb = None
    for i in np.flatnonzero(found):
        d = describe(model, predict.read_photo(photos[i]), detections[i]["box"], calibration)
        if emb is None:
            emb = np.full((n, len(d["embedding"])), np.nan, np.float32)
        boxes[i], scores[i], crop[i], pts[i] = detections[i]["box"], detections[i]["score"], d["crop"], d["points"]
        emb[i], dis[i] = d["embedding"], d["disagreement"]
    emb = np.full((n, 1), np.nan, np.float32) if emb is None else emb
    return Candidates(list(names), found, boxes, scores, crop, pts, emb, dis, descriptors(pts))


# --------------------------------------------------------------------------------------------- ranking
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


# ------------------------------------------------------------------------------------ coverage gaps
GAP_BINS = {"yaw": np.linspace(-1, 1, 11), "pitch": np.linspace(0, 1, 11), "roll": np.linspace(-45, 45, 10),
            "mouth": np.array([0, 0.05, 0.15, 0.3, 0.5, 0.8, 5.0]), "eyes": np.linspace(0, 0.6, 7)}  # fmt: skip


def coverage_gaps(pool: np.ndarray, synthetic: np.ndarray) -> list[dict]:
    """Descriptor bins the pool's faces fill and the synthetic faces barely do: (N, 5) and (M, 5) descriptors
    -> [{"descriptor", "bin": [lo, hi], "pool_share", "synthetic_share"}], largest ratio first."""
    pool, synthetic = np.asarray(pool, float), np.asarray(synthetic, float)
    pool = pool[~np.isnan(pool).any(1)]
    gaps = []
    for j, name in enumerate(DESCRIPTORS):
        edges = GAP_BINS[name]
        p = np.histogram(np.clip(pool[:, j], edges[0], edges[-1]), edges)[0] / max(len(pool), 1)
        s = np.histogram(np.clip(synthetic[:, j], edges[0], edges[-1]), edges)[0] / max(len(synthetic), 1)
        for b in np.flatnonzero((p >= GAP_MIN_SHARE) & (s < GAP_RARE) & (p > GAP_RATIO * s)):
            gaps.append({"descriptor": name, "bin": [round(float(edges[b]), 3), round(float(edges[b + 1]), 3)],
                         "pool_share": round(float(p[b]), 4), "synthetic_share": round(float(s[b]), 4)})  # fmt: skip
    return sorted(gaps, key=lambda g: -g["pool_share"] / max(g["synthetic_share"], 1e-4))


def synthetic_descriptors(shards: str) -> np.ndarray:
    """Descriptors of the labelled synthetic faces of a `landmix prepare` folder (labels only: no decoding)."""
    import pyarrow.parquet as pq

    from landmix.pool import rows_where_synthetic, shard_folder

    table = rows_where_synthetic(pq.read_table(shard_folder(shards), columns=["landmarks", "is_synthetic"]), True)
    pts = np.asarray(table.column("landmarks").to_pylist(), np.float64).reshape(len(table), -1, 2)[:, :68]
    return descriptors(pts)


# ---------------------------------------------------------------------------------------------- figures
def contact_sheet(photos: list[Path], cands: Candidates, picks: list[int], path, size: int = 112,
                  cols: int = 10) -> Path:  # fmt: skip
    """The picks' crops (the model's last crop) with their predicted points, captioned with rank and
    disagreement; a grey tile for a photo where no face was found."""
    import cv2

    from landmix import predict

    tiles = []
    for r, i in enumerate(picks):
        if cands.found[i]:
            image = predict.read_photo(photos[i])
            tile, p = crops.crop_image(image, cands.points[i], cands.crops[i], size)
            tile = np.ascontiguousarray(tile[:, :, ::-1])
            for x, y in p:
                cv2.circle(tile, (int(round(x)), int(round(y))), 1, (80, 255, 80), -1, cv2.LINE_AA)
            caption = f"{r + 1} d{cands.disagreement[i]:.3f}"
        else:
            tile, caption = np.full((size, size, 3), 64, np.uint8), f"{r + 1} no face"
        cv2.putText(tile, caption, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    cols = min(cols, max(len(tiles), 1))
    while len(tiles) % cols or not tiles:
        tiles.append(np.zeros((size, size, 3), np.uint8))
    cv2.imwrite(str(path), np.vstack([np.hstack(tiles[r : r + cols]) for r in range(0, len(tiles), cols)]))
    return Path(path)


def plot_coverage(cands: Candidates, picks: list[int], path, synthetic: np.ndarray | None = None,
                  title: str = "") -> Path:  # fmt: skip
    """Pool (grey), picks (red) and synthetic faces (blue) in pose (yaw x pitch), expression (mouth x eyes)
    and the model's appearance space (the embeddings' first two principal components)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = cands.found
    chosen = np.zeros(len(ok), bool)
    chosen[picks] = True
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.3))
    for ax, (a, b) in zip(axes[:2], ((0, 1), (3, 4))):
        if synthetic is not None and len(synthetic):
            show = synthetic[np.random.default_rng(0).permutation(len(synthetic))[:3000]]
            ax.scatter(show[:, a], show[:, b], s=3, c="tab:blue", alpha=0.15, label=f"synthetic ({len(synthetic)})")
        ax.scatter(cands.descriptors[ok & ~chosen, a], cands.descriptors[ok & ~chosen, b], s=6, c="0.5",
                   alpha=0.6, label=f"pool ({int(ok.sum())} faces)")  # fmt: skip
        ax.scatter(cands.descriptors[ok & chosen, a], cands.descriptors[ok & chosen, b], s=14, c="tab:red",
                   label=f"picks ({int((ok & chosen).sum())})")  # fmt: skip
        ax.set_xlabel(DESCRIPTORS[a])
        ax.set_ylabel(DESCRIPTORS[b])
    axes[0].set_title("pose (from the predicted points)", fontsize=9)
    axes[1].set_title("expression", fontsize=9)
    axes[1].set_xlim(-0.05, 1.0)
    axes[1].set_ylim(0.0, 1.0)  # a few labels of closed or turned-away eyes run far above; the bulk is below 0.6
    axes[0].legend(fontsize=7, loc="upper right")
    emb = cands.embedding[ok]
    if len(emb) >= 2:
        x = emb - emb.mean(0)
        xy = x @ np.linalg.svd(x, full_matrices=False)[2][:2].T
        axes[2].scatter(xy[~chosen[ok], 0], xy[~chosen[ok], 1], s=6, c="0.5", alpha=0.6)
        axes[2].scatter(xy[chosen[ok], 0], xy[chosen[ok], 1], s=14, c="tab:red")
    axes[2].set_title("appearance (model features, PCA 1 x 2)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


# ------------------------------------------------------------------------------------------------- CLI
def select(checkpoint_folder, pool, budget: int, method: str, out, seed: int = 0, synthetic_shards: str | None = None,
           calibration: detect.BoxCalibration | None = None) -> dict:  # fmt: skip
    """Rank the photos of the folder `pool` with the model of checkpoint_folder and write the picks (module
    docstring). synthetic_shards: the synthetic faces to look for coverage gaps in ("" = none; None = the
    checkpoint's own synthetic shards where it recorded them). Returns what OUT.json holds."""
    from landmix import checkpoint, predict

    if budget < 1:
        raise ValueError(f"--budget {budget}: give how many photos to pick (>= 1)")
    if method not in METHODS:
        raise ValueError(f"--method {method!r}; choose one of {list(METHODS)}")
    model, meta = checkpoint.load(checkpoint_folder)
    pool = Path(pool)
    if not pool.is_dir():
        raise NotADirectoryError(f"--pool {pool}: give a folder of photos")
    photos = predict.list_photos([pool])
    names = [p.relative_to(pool).as_posix() for p in photos]
    detections = find_faces(photos)
    readable = [i for i, d in enumerate(detections) if "error" not in d]
    unreadable = [{"photo": names[i], "error": d["error"]} for i, d in enumerate(detections) if "error" in d]
    for u in unreadable:
        print(f"unreadable: {u['error']}")
    photos, names, detections = ([x[i] for i in readable] for x in (photos, names, detections))
    cands = describe_pool(model, photos, names, detections, calibration)
    picks = rank(cands, method, budget, seed)
    if synthetic_shards is None:
        synthetic_shards = meta["config"]["data"].get("synthetic_shards", "")
    syn = synthetic_descriptors(synthetic_shards) if synthetic_shards and Path(synthetic_shards).exists() else None
    gaps = coverage_gaps(cands.descriptors, syn) if syn is not None else []
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(names[i] + "\n" for i in picks))
    stem = out.with_suffix("")
    files = {"picks": str(out), "sheet": str(contact_sheet(photos, cands, picks, f"{stem}-sheet.png")),
             "coverage": str(plot_coverage(cands, picks, f"{stem}-coverage.png", syn,
                                           f"{method}: {len(picks)} of {len(names)} photos"))}  # fmt: skip
    position = {i: r for r, i in enumerate(picks)}
    result = {
        "checkpoint": str(Path(checkpoint_folder).resolve()), "pool": str(pool.resolve()), "method": method,
        "budget": budget, "seed": seed, "files": files, "n_photos": len(names), "n_faces_found": int(cands.found.sum()),
        "no_face": [names[i] for i in np.flatnonzero(~cands.found)],
        "unreadable": unreadable,
        "synthetic_shards": synthetic_shards or "", "coverage_gaps": gaps,
        "photos": [{"photo": names[i], "pick": position[i] + 1 if i in position else None,
                    "box": None if not cands.found[i] else np.round(cands.boxes[i], 1).tolist(),
                    "disagreement": None if not cands.found[i] else round(float(cands.disagreement[i]), 5),
                    **{k: None if not cands.found[i] else round(float(v), 4)
                       for k, v in zip(DESCRIPTORS, cands.descriptors[i])}} for i in range(len(names))],
    }  # fmt: skip
    Path(f"{stem}.json").write_text(json.dumps(result, indent=1))
    return result


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a synthetic-pretrained checkpoint (landmix train)")
    parser.add_argument("--pool", required=True, help="folder of unlabelled photos (any .pts beside them is ignored)")
    parser.add_argument("--budget", type=int, required=True, help="how many photos to pick for annotation")
    parser.add_argument("--method", default="hybrid", choices=METHODS,
                        help="random (the baseline), coverage (k-center on the model's features), uncertainty "
                             "(the model's disagreement under small shifts, scales and the mirror), hybrid "
                             "(coverage weighted by disagreement; default)")
    parser.add_argument("--out", required=True, help="the picks file to write (.txt); OUT.json and figures beside")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random order (and of no-face photos' order)")
    parser.add_argument("--synthetic-shards", default=None,
                        help="prepared synthetic faces to find coverage gaps in (default: the checkpoint's own; "
                             "'' = none)")
    parser.add_argument("--calibration", default=str(detect.CALIBRATION_FILE),
                        help="detector-box calibration JSON (bench/detector.py calibrate writes it)")


def run(args) -> int:
    calibration = detect.BoxCalibration.load(args.calibration)
    result = select(args.checkpoint, args.pool, args.budget, args.method, args.out, args.seed, args.synthetic_shards,
                    calibration)  # fmt: skip
    n = len(Path(args.out).read_text().splitlines())
    print(f"{result['n_photos']} photos, {result['n_faces_found']} with a face found "
          f"({len(result['no_face'])} without: ranked last); {n} picked by {args.method} -> {args.out}")
    for name, path in result["files"].items():
        if name != "picks":
            print(f"  {name}: {path}")
    for g in result["coverage_gaps"]:
        print(f"  coverage gap: {g['descriptor']} in {g['bin']}: {g['pool_share']:.1%} of the pool, "
              f"{g['synthetic_share']:.1%} of the synthetic faces")
    return 0
