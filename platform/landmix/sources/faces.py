"""Labelled faces of a folder as (image path, 68 points) pairs, and one part of the fixed split of them.

The light-weight reading behind `landmix eval`, the benches and the generator's fitted priors: no manifest, no
Ray. `list_faces(root, "300w")` pairs each `.pts` with the image beside it; `list_faces(root,
"facesynthetics")` reads `NNNNNN_ldmks_annotator.txt` where the generator wrote it, else the first 68 of the 70
released points. Ids are the paths without suffix, as ingest names them, so `split_faces` keeps the same faces
as the split every training run uses (`landmix.sources.split.real_split`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from landmix.sources import w300
from landmix.sources.split import SplitSpec, real_split

FORMATS = ("300w", "facesynthetics")
SPLITS = ("all", "train", "val", "test")
# The image beside a .pts: the first of these that exists, as a file or not (a link to nothing, a folder: the
# reader says what is wrong with it); 300-W ships .jpg and .png
PTS_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp")


def list_faces(root: str | Path, fmt: str) -> list[tuple[str, np.ndarray]]:
    """[(image path relative to root, gt pts (68, 2) float32 0-based)] of a folder, sorted."""
    root_p = Path(root)
    out = []
    if fmt == "300w":
        for pts_file in sorted(root_p.rglob("*.pts")):
            image = next(
                (
                    pts_file.with_suffix(s)
                    for s in PTS_IMAGE_SUFFIXES
                    if os.path.lexists(pts_file.with_suffix(s))
                ),
                None,
            )
            if image is None:
                raise FileNotFoundError(f"{pts_file}: no image beside it (tried {PTS_IMAGE_SUFFIXES})")
            out.append((image.relative_to(root_p).as_posix(), w300.read_pts(pts_file)))
    elif fmt == "facesynthetics":
        for lm in sorted(root_p.rglob("*_ldmks.txt")):
            stem = lm.name.removesuffix("_ldmks.txt")
            annotator = lm.with_name(f"{stem}_ldmks_annotator.txt")
            pts = np.loadtxt(annotator if annotator.exists() else lm, dtype=np.float32)[:68]
            out.append((lm.with_name(f"{stem}.png").relative_to(root_p).as_posix(), pts))
    else:
        raise ValueError(f"--format {fmt!r}: choose one of {FORMATS}")
    if not out:
        raise FileNotFoundError(
            f"no {fmt} faces under {root} (300w wants .pts beside images; "
            f"facesynthetics wants NNNNNN.png + NNNNNN_ldmks.txt)"
        )
    return out


def face_id(rel: str) -> str:
    """A listed face's id: its image path without suffix, as ingest names it."""
    return rel.rsplit(".", 1)[0]


def split_faces(
    faces: list[tuple[str, np.ndarray]], split: str, data: SplitSpec
) -> list[tuple[str, np.ndarray]]:
    """The faces of one part of the fixed real split under `data` (a `config.DataConfig`) over all of them;
    "all" keeps all."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: choose one of {SPLITS}")
    if split == "all":
        return faces
    ids = [face_id(rel) for rel, _ in faces]
    keep = set(getattr(real_split(ids, data), split))
    return [f for f, i in zip(faces, ids) if i in keep]
