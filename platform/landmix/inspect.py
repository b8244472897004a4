"""`landmix inspect`: look at the labels of one or more manifests, side by side.

For each manifest it writes
    {name}_sheet.png      a contact sheet of faces (seeded sample) with their points drawn
    {name}_outliers.png   the faces whose labels sit furthest from the aligned mean shape
                          (candidates for annotation errors), with their distance
and for all manifests together
    spread.png            the per-point spread of the labels after similarity-aligning every face to
                          the mean shape (in units of the mean shape's inter-ocular distance), and the
                          mean shapes with a circle per point of that radius
    summary.json          per-manifest counts, spread per point group, the outliers' ids

Synthetic labels are compared in IBUG68 through the fixed table (the pupils dropped).

    landmix inspect out/300w.parquet out/fs100.parquet --out out/inspect
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from landmix import crops, translate
from landmix.manifest import landmarks_array, read_manifest
from landmix.schemes import IBUG68, get_scheme, interocular

_JAW = set(IBUG68.groups["jaw"])


def aligned_shapes(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Align faces (N, 68, 2) to their Procrustes mean; returns (aligned (N, 68, 2), mean (68, 2)),
    both scaled so that the mean shape's inter-ocular distance is 1."""
    mean = translate.mean_shape(pts, IBUG68)
    a, t = translate.align(pts, mean)
    aligned = np.einsum("nij,nkj->nki", a, pts) + t[:, None]
    iod = float(interocular(mean, IBUG68))
    return aligned / iod, mean / iod


def label_spread(pts: np.ndarray) -> dict:
    """Per-point spread (RMS distance to the mean point, inter-ocular units) and per-face distance."""
    aligned, mean = aligned_shapes(pts)
    dist = np.linalg.norm(aligned - mean, axis=-1)  # (N, 68)
    return {
        "aligned": aligned,
        "mean": mean,
        "per_point": np.sqrt((dist**2).mean(0)),
        "per_face": dist.mean(1),
    }


def _tile(table, i: int, pts: np.ndarray, size: int, caption: str = "") -> np.ndarray:
    path = Path(table["root"][i].as_py()) / table["image_path"][i].as_py()
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        tile = np.full((size, size, 3), 64, np.uint8)
        cv2.putText(tile, "unreadable", (4, size // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 255), 1)
        return tile
    tile, p = crops.crop_image(image, pts, crops.box_for(pts, 1.5), size)
    for k, (x, y) in enumerate(p):
        colour = (0, 200, 255) if k in _JAW else (80, 255, 80)
        cv2.circle(tile, (int(round(x)), int(round(y))), 1, colour, -1, lineType=cv2.LINE_AA)
    if caption:
        cv2.putText(tile, caption, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def contact_sheet(
    table,
    pts: np.ndarray,
    rows: list[int],
    path: Path,
    size: int = 128,
    captions: list[str] | None = None,
    cols: int = 8,
) -> Path:
    """Draw faces `rows` of the manifest table with points pts (N, K, 2) into one PNG grid."""
    tiles = [_tile(table, i, pts[i], size, captions[j] if captions else "") for j, i in enumerate(rows)]
    cols = min(cols, max(len(tiles), 1))
    while len(tiles) % cols:
        tiles.append(np.zeros((size, size, 3), np.uint8))
    grid = np.vstack([np.hstack(tiles[r : r + cols]) for r in range(0, len(tiles), cols)])
    cv2.imwrite(str(path), grid)
    return path


def plot_spread(spreads: dict[str, dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(spreads), figsize=(5 + 3.6 * len(spreads), 3.6))
    width = 0.8 / len(spreads)
    for j, (name, s) in enumerate(spreads.items()):
        axes[0].bar(np.arange(68) + j * width, s["per_point"], width=width, label=name)
        ax = axes[1 + j]
        m = s["mean"]
        ax.scatter(m[:, 0], m[:, 1], s=4, c="k")
        for (x, y), r in zip(m, s["per_point"]):
            ax.add_patch(plt.Circle((x, y), r, fill=False, color="C3", lw=0.8))
        ax.set_aspect("equal")
        ax.invert_yaxis()
        ax.set_title(f"{name}: mean shape, spread circles", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_xlabel("point (iBUG 68, 0-16 jaw)")
    axes[0].set_ylabel("spread / inter-ocular")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def inspect_manifests(
    manifests: list[Path], out: Path, n: int = 32, worst: int = 16, seed: int = 0, tile: int = 128
) -> dict:
    """Write the figures of every manifest into `out`; returns the summary (also in summary.json)."""
    out.mkdir(parents=True, exist_ok=True)
    spreads, summary = {}, {}
    for path in manifests:
        table = read_manifest(path)
        name = Path(path).stem
        scheme = get_scheme(table["scheme"][0].as_py())
        raw = landmarks_array(table["landmarks"])
        pts = translate.fixed(scheme, IBUG68)(raw)  # (N, 68, 2) pixels
        s = label_spread(pts.astype(np.float64))
        spreads[name] = s
        sample = sorted(np.random.default_rng(seed).permutation(len(table))[:n].tolist())
        contact_sheet(table, pts, sample, out / f"{name}_sheet.png", size=tile)
        far = np.argsort(-s["per_face"])[:worst].tolist()
        contact_sheet(
            table,
            pts,
            far,
            out / f"{name}_outliers.png",
            size=tile,
            captions=[f"{s['per_face'][i]:.3f}" for i in far],
        )
        ids = table["id"].to_pylist()
        summary[name] = {
            "manifest": str(path),
            "faces": len(table),
            "scheme": scheme.name,
            "spread_by_group": {
                g: round(float(s["per_point"][list(idx)].mean()), 4) for g, idx in IBUG68.groups.items()
            },
            "outliers": [{"id": ids[i], "distance": round(float(s["per_face"][i]), 4)} for i in far],
        }
    plot_spread(spreads, out / "spread.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifests", nargs="+", type=Path, help="manifest Parquet files (landmix ingest)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the PNGs and summary.json")
    parser.add_argument("--n", type=int, default=32, help="faces on each contact sheet")
    parser.add_argument("--worst", type=int, default=16, help="outlier faces drawn per manifest")
    parser.add_argument("--seed", type=int, default=0, help="seed of the contact-sheet sample")
    parser.add_argument("--tile", type=int, default=128, help="side of each face on the sheets, pixels")


def run(args: argparse.Namespace) -> int:
    summary = inspect_manifests(args.manifests, args.out, args.n, args.worst, args.seed, args.tile)
    for name, s in summary.items():
        groups = ", ".join(f"{g} {v:.3f}" for g, v in s["spread_by_group"].items())
        print(f"{name}: {s['faces']} faces; spread/IOD by group: {groups}")
    print(f"figures and summary.json in {args.out}")
    return 0
