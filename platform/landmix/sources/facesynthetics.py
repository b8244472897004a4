"""Reader of the FaceSynthetics layout (the Microsoft release, and `landmix generate`'s output).

    {id}.png                     RGB (or greyscale) render; .jpg/.jpeg are accepted too
    {id}_ldmks.txt               70 lines "x y", 0-based pixels, SYNTH70 (68 iBUG order + 2 pupils)
    {id}_seg.png                 optional 8-bit class mask, same size; its path is recorded
    {id}_ldmks_annotator.txt     optional 68 lines "x y", IBUG68 human-annotator convention
                                 (written by the procedural generator); stored as landmarks_annotator

Ids are paths relative to the root without the suffix ("000042", or "batch_1/000042" in a
subfolder). The release has no official split: samples directly in the root get split "train",
samples in a subfolder get the subfolder's relative path as their split.
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np

from landmix.quarantine import Rejected, check_points_inside
from landmix.schemes import IBUG68, SYNTH70
from landmix.sources import content_hash, parse_xy_lines, probe_image, read_file, text_lines

SCHEME = SYNTH70
ROOT_SPLIT = "train"
GENERATOR_MARKER = "generator.json"  # what drew a generated folder's faces (`landmix generate` writes it)

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# (file-name ending, role), most specific first: "_seg.png" also ends in ".png".
_ROLES = (
    ("_ldmks_annotator.txt", "annotator_path"),
    ("_ldmks.txt", "landmarks_path"),
    ("_seg.png", "seg_path"),
)


def _role(name: str) -> tuple[str, str] | None:
    """(id stem, role) for a file name of this layout, None for other files."""
    for ending, role in _ROLES:
        if name.endswith(ending):
            return name[: -len(ending)], role
    for suffix in _IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], "image_path"
    return None


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop: let reading it report the problem
        return False


def _scan(root: str, sub: str, files: dict, ignored: list) -> None:
    with os.scandir(os.path.join(root, sub)) as it:
        for entry in it:
            if entry.name.startswith("."):
                continue
            rel = f"{sub}/{entry.name}" if sub else entry.name
            if _is_dir(entry):
                _scan(root, rel, files, ignored)
                continue
            found = _role(entry.name)
            if found is None:
                ignored.append(rel)
                continue
            stem, role = found
            sid = f"{sub}/{stem}" if sub else stem
            files[sid][role].append(rel)


def list_samples(root: str) -> tuple[list[dict], list[str]]:
    """Scan root (recursively) into sample items, and the files that belong to no sample."""
    files: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    ignored: list[str] = []
    _scan(str(root), "", files, ignored)
    items = []
    for sid in sorted(files):
        roles = files[sid]
        item = {
            "id": sid,
            "split": sid.rpartition("/")[0] or ROOT_SPLIT,
            **{r: (roles[r][0] if roles[r] else "") for r in ("image_path", "landmarks_path", "seg_path")},
            "annotator_path": roles["annotator_path"][0] if roles["annotator_path"] else "",
            "problem": "",
            "problem_path": "",
            "problem_detail": "",
        }
        present = [p for r in roles.values() for p in r]
        if len(roles["image_path"]) > 1:
            item.update(
                problem="duplicate_id",
                problem_path=roles["image_path"][0],
                problem_detail=f"id {sid!r} has several images: {roles['image_path']}; keep one",
            )
        elif not roles["image_path"]:
            item.update(
                problem="missing_image",
                problem_path=present[0],
                problem_detail=f"no {sid}.png beside {present[0]}; restore the render or remove its files",
            )
        elif not roles["landmarks_path"]:
            item.update(
                problem="missing_landmarks",
                problem_path=item["image_path"],
                problem_detail=f"no {sid}_ldmks.txt beside the image; restore it or remove the image",
            )
        items.append(item)
    return items, ignored


def _points(data: bytes, rel: str, num_points: int) -> np.ndarray:
    pts = parse_xy_lines(text_lines(data, rel), rel)
    if len(pts) != num_points:
        raise Rejected(
            "wrong_point_count", rel, f"{len(pts)} points, the layout wants {num_points} lines of 'x y'"
        )
    return pts


def read_sample(root: str, item: dict, decode: bool = False) -> dict:
    """Read and validate one sample into a manifest row; raises Rejected for a bad one."""
    if item["problem"]:
        raise Rejected(item["problem"], item["problem_path"], item["problem_detail"])
    image = read_file(root, item["image_path"])
    width, height = probe_image(image, item["image_path"], decode)
    ldmks = read_file(root, item["landmarks_path"])
    pts = _points(ldmks, item["landmarks_path"], SCHEME.num_points)
    check_points_inside(pts, width, height, item["landmarks_path"])
    if item["seg_path"]:
        try:
            seg_size = probe_image(read_file(root, item["seg_path"]), item["seg_path"], decode)
        except Rejected as e:
            raise Rejected("bad_seg", e.path, f"{e.reason}: {e.detail}") from None
        if seg_size != (width, height):
            raise Rejected(
                "bad_seg", item["seg_path"], f"the mask is {seg_size}, the image {(width, height)}"
            )
    annotator = None
    if item["annotator_path"]:
        annotator = _points(
            read_file(root, item["annotator_path"]), item["annotator_path"], IBUG68.num_points
        )
        check_points_inside(annotator, width, height, item["annotator_path"])
    return {
        "id": item["id"],
        "split": item["split"],
        "image_path": item["image_path"],
        "width": width,
        "height": height,
        "landmarks": pts.astype(np.float32),
        "scheme": SCHEME.name,
        "seg_path": item["seg_path"] or None,
        "landmarks_annotator": None if annotator is None else annotator.astype(np.float32),
        "content_hash": content_hash(image, ldmks),
    }
