"""Reader of the 300-W layout: `{stem}.pts` beside `{stem}.jpg|.png|.ppm` (any size, greyscale too).

A .pts file is the iBUG format, 1-based (the manifest stores 0-based: value - 1). This module is its
only reader and writer: `parse_pts` (bytes, as written), `read_pts` and `write_pts` (0-based points).

    version: 1
    n_points:  68
    {
    x y            (68 lines)
    }

Ids are paths relative to the root without the suffix ("afw/134212_1"). Splits follow the
official folders, matched on the sample's folder and the root's own last two folders, so that
ingesting `300w/` or `300w/afw/` gives the same split:

    afw/, helen/trainset/, lfpw/trainset/       -> train        (3148 faces in the full release)
    helen/testset/, lfpw/testset/               -> common       (554)
    ibug/                                       -> challenging  (135)
    300W/01_Indoor/, 300W/02_Outdoor/           -> private_test (600)

The "full" test set is common + challenging (689 faces): `FULL_SPLITS`. Any other folder is read
too, with its path relative to the root as the split (the root's own name for files in the root).
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from landmix.quarantine import Rejected, check_points_inside
from landmix.schemes import IBUG68
from landmix.sources import IMAGE_SUFFIXES, content_hash, parse_xy_lines, probe_image, read_file, text_lines

SCHEME = IBUG68
FULL_SPLITS = ("common", "challenging")

# folder name -> split; (parent, folder) pairs where the folder name alone is ambiguous.
_FOLDER_SPLITS = {
    "afw": "train",
    "ibug": "challenging",
    "01_indoor": "private_test",
    "02_outdoor": "private_test",
}
_PAIR_SPLITS = {
    ("helen", "trainset"): "train",
    ("lfpw", "trainset"): "train",
    ("helen", "testset"): "common",
    ("lfpw", "testset"): "common",
}


def split_for(root: str, rel_dir: str) -> str:
    """The split of samples in root/rel_dir: the official name where the folders match, else the folder."""
    rel_parts = [p for p in rel_dir.split("/") if p]
    parts = [p.lower() for p in (*Path(root).resolve().parts[-2:], *rel_parts)]
    for i in range(len(parts) - 1, -1, -1):
        if i > 0 and (parts[i - 1], parts[i]) in _PAIR_SPLITS:
            return _PAIR_SPLITS[(parts[i - 1], parts[i])]
        if parts[i] in _FOLDER_SPLITS:
            return _FOLDER_SPLITS[parts[i]]
    return rel_dir or Path(root).resolve().name


def list_samples(root: str) -> tuple[list[dict], list[str]]:
    """Walk root into sample items (one per .pts or image stem), and the files that belong to none."""
    root = str(root)
    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    ignored: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = Path(os.path.relpath(dirpath, root)).as_posix().removeprefix(".")
        for name in filenames:
            if name.startswith("."):
                continue
            stem, suffix = os.path.splitext(name)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            sid = f"{rel_dir}/{stem}" if rel_dir else stem
            if suffix.lower() == ".pts":
                groups[sid]["pts"].append(rel)
            elif suffix.lower() in IMAGE_SUFFIXES:
                groups[sid]["image"].append(rel)
            else:
                ignored.append(rel)
    items = []
    for sid in sorted(groups):
        images, pts = sorted(groups[sid]["image"]), groups[sid]["pts"]
        item = {
            "id": sid,
            "split": split_for(root, sid.rpartition("/")[0]),
            "image_path": images[0] if images else "",
            "landmarks_path": pts[0] if pts else "",
            "problem": "",
            "problem_path": "",
            "problem_detail": "",
        }
        if len(images) > 1:
            item.update(
                problem="duplicate_id",
                problem_path=images[0],
                problem_detail=f"id {sid!r} has several images {images} for one .pts; keep one",
            )
        elif not images:
            item.update(
                problem="missing_image",
                problem_path=pts[0],
                problem_detail="no .jpg/.png/.ppm image beside the .pts; restore it or remove the .pts",
            )
        elif not pts:
            item.update(
                problem="missing_landmarks",
                problem_path=images[0],
                problem_detail=f"no {Path(sid).name}.pts beside the image; restore it or remove the image",
            )
        items.append(item)
    return items, ignored


def parse_pts(data: bytes, rel: str) -> np.ndarray:
    """The points of a .pts file as written (1-based) -> (n_points, 2) float64; Rejected if malformed."""
    lines = [line.strip() for line in text_lines(data, rel)]
    if "{" not in lines or lines[-1] != "}":
        raise Rejected(
            "malformed_landmarks", rel, "a .pts needs a header, '{', one 'x y' line per point and '}'"
        )
    open_at = lines.index("{")
    header = dict(line.split(":", 1) for line in lines[:open_at] if ":" in line)
    try:
        declared = int(header["n_points"])
    except (KeyError, ValueError):
        raise Rejected(
            "malformed_landmarks", rel, "the .pts header has no integer 'n_points:' line"
        ) from None
    body = lines[open_at + 1 : -1]
    if declared != len(body):
        raise Rejected(
            "point_count_mismatch",
            rel,
            f"the header says n_points {declared}, the body has {len(body)} lines",
        )
    return parse_xy_lines(body, rel)


def read_pts(path: str | Path) -> np.ndarray:
    """A .pts file -> (n_points, 2) float32, 0-based pixels (the file's values - 1); Rejected if malformed."""
    return (parse_pts(Path(path).read_bytes(), str(path)) - 1.0).astype(np.float32)


def write_pts(path: str | Path, pts: np.ndarray) -> None:
    """Write pts (K, 2) 0-based pixels as a .pts file: the header, then 'x y' 1-based with 3 decimals."""
    lines = [f"{x + 1:.3f} {y + 1:.3f}" for x, y in np.asarray(pts, np.float64)]
    Path(path).write_text("\n".join(["version: 1", f"n_points:  {len(lines)}", "{", *lines, "}"]) + "\n")


def read_sample(root: str, item: dict, decode: bool = False) -> dict:
    """Read and validate one face into a manifest row (0-based points); raises Rejected for a bad one."""
    if item["problem"]:
        raise Rejected(item["problem"], item["problem_path"], item["problem_detail"])
    image = read_file(root, item["image_path"])
    width, height = probe_image(image, item["image_path"], decode)
    raw = read_file(root, item["landmarks_path"])
    pts = parse_pts(raw, item["landmarks_path"]) - 1.0
    if len(pts) != SCHEME.num_points:
        raise Rejected(
            "wrong_point_count",
            item["landmarks_path"],
            f"{len(pts)} points, 300-W faces have {SCHEME.num_points}",
        )
    check_points_inside(pts, width, height, item["landmarks_path"])
    return {
        "id": item["id"],
        "split": item["split"],
        "image_path": item["image_path"],
        "width": width,
        "height": height,
        "landmarks": pts.astype(np.float32),
        "scheme": SCHEME.name,
        "seg_path": None,
        "landmarks_annotator": None,
        "content_hash": content_hash(image, raw),
    }
