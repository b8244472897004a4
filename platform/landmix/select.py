"""`landmix select`: which unlabelled real photos to annotate, chosen with a synthetic-pretrained model.

    landmix select --checkpoint CKPT --pool photos/ --budget 50 --method hybrid --out picks.txt

The selector never reads a label. For each photo of the pool (image files, searched recursively; .pts files
beside them are ignored), dlib's detector finds the faces and the photo's candidate is its best-scoring face
(a photo is what an annotator opens), described by the model from its own crop (landmix.candidates: an
embedding, a disagreement, the shape descriptors of its predicted points, landmix.descriptors). Each method
(`config.SELECTIONS`: random, coverage, uncertainty, hybrid) is a ranking whose prefixes are the picks for every
budget (landmix.ranking). Photos where no face was found cannot be ranked by the model: they follow the ranked
ones (a seeded shuffle), and are listed. Photos that cannot be read (0 bytes, not an image, no read permission,
...) are listed with the reason, printed, and make the exit status 1; files that are not photos by name (.pts,
.txt) are listed as not_photos. Writes: OUT (picks.txt: the chosen photos, relative to the pool, in
order), and beside it OUT.json (every photo's detection, disagreement, descriptors, rank; the no-face photos;
the synthetic set's coverage gaps), OUT-sheet.png (the picks' crops with their predicted points) and
OUT-coverage.png (pool, picks and synthetic faces in pose, expression and the model's appearance space).

Where the synthetic set lacks coverage (`descriptors.coverage_gaps`): the pool's predicted shapes and the
synthetic faces' labels are binned by each descriptor; a bin the pool fills and the synthetic faces barely do is
a gap (the generator's to-do list), written to OUT.json and printed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from landmix import crops, detect
from landmix.candidates import Candidates, describe_pool, find_faces
from landmix.descriptors import DESCRIPTORS, coverage_gaps, synthetic_descriptors
from landmix.ranking import METHODS, rank


# ---------------------------------------------------------------------------------------------- figures
def contact_sheet(
    photos: list[Path], cands: Candidates, picks: list[int], path, size: int = 112, cols: int = 10
) -> Path:
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


def plot_coverage(
    cands: Candidates, picks: list[int], path, synthetic: np.ndarray | None = None, title: str = ""
) -> Path:
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
            ax.scatter(
                show[:, a], show[:, b], s=3, c="tab:blue", alpha=0.15, label=f"synthetic ({len(synthetic)})"
            )
        ax.scatter(
            cands.descriptors[ok & ~chosen, a],
            cands.descriptors[ok & ~chosen, b],
            s=6,
            c="0.5",
            alpha=0.6,
            label=f"pool ({int(ok.sum())} faces)",
        )
        ax.scatter(
            cands.descriptors[ok & chosen, a],
            cands.descriptors[ok & chosen, b],
            s=14,
            c="tab:red",
            label=f"picks ({int((ok & chosen).sum())})",
        )
        ax.set_xlabel(DESCRIPTORS[a])
        ax.set_ylabel(DESCRIPTORS[b])
    axes[0].set_title("pose (from the predicted points)", fontsize=9)
    axes[1].set_title("expression", fontsize=9)
    axes[1].set_xlim(-0.05, 1.0)
    # a few labels of closed or turned-away eyes run far above; the bulk is below 0.6
    axes[1].set_ylim(0.0, 1.0)
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
def select(
    checkpoint_folder,
    pool,
    budget: int,
    method: str,
    out,
    seed: int = 0,
    synthetic_shards: str | None = None,
    calibration: detect.BoxCalibration | None = None,
) -> dict:
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
    not_photos: list[Path] = []
    photos = predict.list_photos([pool], not_photos)
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
    syn = (
        synthetic_descriptors(synthetic_shards)
        if synthetic_shards and Path(synthetic_shards).exists()
        else None
    )
    gaps = coverage_gaps(cands.descriptors, syn) if syn is not None else []
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(names[i] + "\n" for i in picks))
    stem = out.with_suffix("")
    files = {
        "picks": str(out),
        "sheet": str(contact_sheet(photos, cands, picks, f"{stem}-sheet.png")),
        "coverage": str(
            plot_coverage(
                cands, picks, f"{stem}-coverage.png", syn, f"{method}: {len(picks)} of {len(names)} photos"
            )
        ),
    }
    position = {i: r for r, i in enumerate(picks)}
    result = {
        "checkpoint": str(Path(checkpoint_folder).resolve()),
        "pool": str(pool.resolve()),
        "method": method,
        "budget": budget,
        "seed": seed,
        "files": files,
        "n_photos": len(names),
        "n_faces_found": int(cands.found.sum()),
        "no_face": [names[i] for i in np.flatnonzero(~cands.found)],
        "unreadable": unreadable,
        "not_photos": [p.relative_to(pool).as_posix() for p in not_photos],
        "synthetic_shards": synthetic_shards or "",
        "coverage_gaps": gaps,
        "photos": [
            {
                "photo": names[i],
                "pick": position[i] + 1 if i in position else None,
                "box": None if not cands.found[i] else np.round(cands.boxes[i], 1).tolist(),
                "disagreement": None if not cands.found[i] else round(float(cands.disagreement[i]), 5),
                **{
                    k: None if not cands.found[i] else round(float(v), 4)
                    for k, v in zip(DESCRIPTORS, cands.descriptors[i])
                },
            }
            for i in range(len(names))
        ],
    }
    Path(f"{stem}.json").write_text(json.dumps(result, indent=1))
    return result


def add_arguments(parser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="a synthetic-pretrained checkpoint (landmix train)"
    )
    parser.add_argument(
        "--pool", required=True, help="folder of unlabelled photos (any .pts beside them is ignored)"
    )
    parser.add_argument("--budget", type=int, required=True, help="how many photos to pick for annotation")
    parser.add_argument(
        "--method",
        default="hybrid",
        choices=METHODS,
        help="random (the baseline), coverage (k-center on the model's features), uncertainty "
        "(the model's disagreement under small shifts, scales and the mirror), hybrid "
        "(coverage weighted by disagreement; default)",
    )
    parser.add_argument(
        "--out", required=True, help="the picks file to write (.txt); OUT.json and figures beside"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random order (and of no-face photos' order)"
    )
    parser.add_argument(
        "--synthetic-shards",
        default=None,
        help="prepared synthetic faces to find coverage gaps in (default: the checkpoint's own; '' = none)",
    )
    parser.add_argument(
        "--calibration",
        default=str(detect.CALIBRATION_FILE),
        help="detector-box calibration JSON (`python -m landmix.detect calibrate` writes it)",
    )


def run(args) -> int:
    calibration = detect.BoxCalibration.load(args.calibration)
    result = select(
        args.checkpoint,
        args.pool,
        args.budget,
        args.method,
        args.out,
        args.seed,
        args.synthetic_shards,
        calibration,
    )
    n = len(Path(args.out).read_text().splitlines())
    print(
        f"{result['n_photos']} photos, {result['n_faces_found']} with a face found "
        f"({len(result['no_face'])} without: ranked last); {n} picked by {args.method} -> {args.out}"
    )
    for name, path in result["files"].items():
        if name != "picks":
            print(f"  {name}: {path}")
    for g in result["coverage_gaps"]:
        print(
            f"  coverage gap: {g['descriptor']} in {g['bin']}: {g['pool_share']:.1%} of the pool, "
            f"{g['synthetic_share']:.1%} of the synthetic faces"
        )
    if result["unreadable"]:
        print(
            f"{len(result['unreadable'])} photos could not be read (listed above and in OUT.json): exit status 1"
        )
    return 1 if result["unreadable"] else 0
