"""Quarantine: the reasons a sample is refused, the exception that carries one, and the JSONL report.

Nothing is lost silently. A reader that finds a bad sample raises `Rejected(reason, path, detail)`;
the ingest turns it into one line of the quarantine file and keeps every good neighbour:

    {"path": "afw/134212_1.pts", "reason": "wrong_point_count", "detail": "...", "id": "afw/134212_1",
     "files": ["afw/134212_1.jpg", "afw/134212_1.pts"]}

`path` is relative to the ingested root and names the file to look at first; `reason` is one of the
stable codes of `REASONS` below (scripts may match on it); `detail` is a sentence for people.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

# Points may lie outside the image (300-W labels occluded jaw points past the border), but not
# "far" outside: more than this fraction of the image width (x) or height (y) beyond an edge.
OUTSIDE_MARGIN = 0.5

# reason code -> what it means. The codes are part of the interface: keep them stable.
REASONS: dict[str, str] = {
    "missing_image": "a landmark file has no image beside it",
    "missing_landmarks": "an image has no landmark file beside it",
    "duplicate_id": "two samples resolve to the same id (e.g. a.jpg and a.png beside a.pts)",
    "empty_file": "the image or landmark file has zero bytes",
    "unreadable_file": "the file exists but cannot be read (permissions, I/O error)",
    "not_an_image": "the image file is not a PNG, JPEG, PPM/PGM, BMP, GIF or WebP by its content",
    "truncated_image": "the image is cut short (JPEG without its end marker, PNG without IEND, short PPM)",
    "corrupt_image": "the image has a valid frame but does not decode or has no size",
    "malformed_landmarks": "the landmark file does not follow its format (header, braces, x y lines)",
    "wrong_point_count": "the number of points differs from the scheme's (70 FaceSynthetics, 68 300-W)",
    "point_count_mismatch": "a .pts header's n_points disagrees with the number of lines in its body",
    "extra_columns": "a landmark line has more than two values",
    "non_numeric": "a landmark value is not a number",
    "non_finite": "a landmark value is NaN or infinite",
    "points_outside_image": f"a point lies more than {OUTSIDE_MARGIN:.0%} of the image size beyond an edge",
    "bad_seg": "the segmentation mask is present but unreadable, truncated or of another size",
    "reader_error": "the reader itself failed on the sample (a bug: please report it with the file)",
}


class Rejected(Exception):
    """A sample that must go to quarantine. reason: a key of REASONS; path: relative to the root."""

    def __init__(self, reason: str, path: str, detail: str):
        if reason not in REASONS:
            raise ValueError(f"unknown quarantine reason {reason!r}; known: {sorted(REASONS)}")
        super().__init__(f"{path}: {reason}: {detail}")
        self.reason = reason
        self.path = path
        self.detail = detail


def check_points_inside(pts, width: int, height: int, path: str, margin: float = OUTSIDE_MARGIN) -> None:
    """Reject points far outside a width x height image. pts: (K, 2) float, 0-based pixels."""
    lo_x, hi_x = -margin * width, (width - 1) + margin * width
    lo_y, hi_y = -margin * height, (height - 1) + margin * height
    x, y = pts[:, 0], pts[:, 1]
    bad = (x < lo_x) | (x > hi_x) | (y < lo_y) | (y > hi_y)
    if bad.any():
        i = int(bad.argmax())
        raise Rejected(
            "points_outside_image",
            path,
            f"point {i} at ({x[i]:.1f}, {y[i]:.1f}) lies more than {margin:.0%} of the image size outside "
            f"the {width}x{height} image; fix the labels or the image they belong to",
        )


def write_jsonl(path: Path, records: Iterable[dict]) -> int:
    """Write quarantine records, one JSON object per line (overwrites). Returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: Path) -> list[dict]:
    """The records of a quarantine file, in order."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def summary_line(read: int, accepted: int, reasons: Counter, quarantine_path: Path | None) -> str:
    """One line for the end of an ingest: counts read, accepted, and quarantined by reason."""
    quarantined = sum(reasons.values())
    line = f"read {read}, accepted {accepted}, quarantined {quarantined}"
    if quarantined:
        by_reason = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        line += f" ({by_reason}); see {quarantine_path}"
    return line
