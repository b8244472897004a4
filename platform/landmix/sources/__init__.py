"""Readers of on-disk face-landmark formats, and the checks of image and landmark files they share.

One module per format (`facesynthetics`, `w300`), each with the same three names:

    SCHEME                                  # the landmark convention of its files
    list_samples(root) -> list[dict]        # cheap directory scan, run in the driver
    read_sample(root, item, decode) -> dict # read + validate one sample, run in Ray Data workers

A listed item holds only strings (id, split, relative paths) so that `ray.data.from_items` can ship
100,000 of them; `read_sample` returns one manifest row or raises `quarantine.Rejected`.

Images are checked from their bytes without decoding: the header gives the size (PNG IHDR, JPEG
SOF, PPM/PGM/BMP header, GIF logical screen, WebP VP8/VP8L/VP8X chunk) and the structure gives
truncation (PNG IEND chunk, JPEG end-of-image marker after the scan, PPM pixel count, BMP and WebP
file size, GIF trailer). GIF and WebP are photo formats (`landmix predict`, `select`, `serve` read
them, an animated one's first frame); the dataset listings keep IMAGE_SUFFIXES. `decode=True` adds a full OpenCV decode
for corruption in the middle of a file, at several times the cost (docs/results/ingest.md).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import struct
from pathlib import Path
from types import ModuleType

import numpy as np

from landmix.quarantine import Rejected

SOURCES = {"facesynthetics": "landmix.sources.facesynthetics", "300w": "landmix.sources.w300"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp")
FORMATS = "PNG, JPEG, PPM/PGM, BMP, GIF or WebP"  # what probe_image reads, by content

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"
# JPEG start-of-frame markers (they carry the size); C4, C8 and CC share the range but are not frames.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def get_source(name: str) -> ModuleType:
    """The reader module for a source name; a clear error lists the known ones."""
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}; choose one of {sorted(SOURCES)}")
    return importlib.import_module(SOURCES[name])


def read_file(root: str, rel: str) -> bytes:
    """All bytes of root/rel; Rejected for unreadable or zero-byte files (a missing file raises too)."""
    try:
        with open(os.path.join(root, rel), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise Rejected("unreadable_file", rel, "the file vanished between listing and reading") from None
    except OSError as e:
        raise Rejected(
            "unreadable_file", rel, f"cannot read the file ({e.strerror or e}); check permissions"
        ) from None
    if not data:
        raise Rejected("empty_file", rel, "the file has zero bytes; re-copy or re-render it")
    return data


def content_hash(*parts: bytes) -> str:
    """SHA-256 hex digest of the given byte strings, in order (2 GB/s here with SHA-NI; BLAKE2b 1.3)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.hexdigest()


def probe_image(data: bytes, rel: str, decode: bool = False) -> tuple[int, int]:
    """(width, height) of an encoded image, from its header; Rejected if it is not a whole image."""
    if data.startswith(_PNG_SIG):
        size = _png_size(data, rel)
    elif data.startswith(b"\xff\xd8\xff"):
        size = _jpeg_size(data, rel)
    elif data[:2] in (b"P2", b"P3", b"P5", b"P6"):
        size = _pnm_size(data, rel)
    elif data.startswith(b"BM") and len(data) >= 26:
        size = _bmp_size(data, rel)
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        size = _gif_size(data, rel)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        size = _webp_size(data, rel)
    else:
        raise Rejected("not_an_image", rel, f"the content is not {FORMATS}; remove or replace it")
    if size is None or decode:
        size = _decoded_size(data, rel, expect=size)
    w, h = size
    if w <= 0 or h <= 0:
        raise Rejected("corrupt_image", rel, f"the header gives an empty size {w}x{h}")
    return size


def _png_size(data: bytes, rel: str) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise Rejected("truncated_image", rel, "the PNG stops before its IHDR header chunk")
    if _PNG_IEND not in data[-64:]:
        raise Rejected("truncated_image", rel, "the PNG has no IEND chunk at its end: the file is cut short")
    return struct.unpack(">II", data[16:24])


def _jpeg_size(data: bytes, rel: str) -> tuple[int, int] | None:
    """Walk the marker segments up to the first scan; the end-of-image marker must follow it."""
    i, n, size = 2, len(data), None
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise Rejected("corrupt_image", rel, f"the JPEG has no marker at byte {i} before its first scan")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # stand-alone markers
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in _JPEG_SOF and i + 9 <= n:
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            size = (w, h) if h > 0 else None  # height 0: defined later by a DNL marker; decode instead
        if marker == 0xDA:  # start of scan: entropy-coded data follows, where 0xFF is always stuffed
            if data.find(b"\xff\xd9", i + 2 + length) < 0:
                raise Rejected(
                    "truncated_image", rel, "the JPEG has no end-of-image marker: the file is cut short"
                )
            if size is None:
                return None
            return size
        i += 2 + length
    raise Rejected("truncated_image", rel, "the JPEG stops before its image data")


def _pnm_size(data: bytes, rel: str) -> tuple[int, int] | None:
    """Netpbm header: magic, width, height, maxval, separated by whitespace, '#' comments allowed."""
    tokens, i = [], 2
    while len(tokens) < 3 and i < min(len(data), 4096):
        c = data[i : i + 1]
        if c == b"#":
            i = data.find(b"\n", i) + 1 or len(data)
        elif c.isspace():
            i += 1
        else:
            j = i
            while j < len(data) and not data[j : j + 1].isspace() and data[j : j + 1] != b"#":
                j += 1
            tokens.append(data[i:j])
            i = j
    try:
        w, h, maxval = (int(t) for t in tokens)
    except ValueError:
        raise Rejected(
            "corrupt_image", rel, "the PPM/PGM header is not three integers (width height maxval)"
        ) from None
    if data[:2] in (b"P2", b"P3"):  # plain-text pixels: let OpenCV check them
        return None
    channels = 3 if data[:2] == b"P6" else 1
    need = w * h * channels * (2 if maxval > 255 else 1)
    if len(data) - (i + 1) < need:
        raise Rejected(
            "truncated_image", rel, f"the PPM/PGM holds {len(data) - i - 1} pixel bytes, needs {need}"
        )
    return w, h


def _bmp_size(data: bytes, rel: str) -> tuple[int, int]:
    declared = struct.unpack("<I", data[2:6])[0]
    if len(data) < declared:
        raise Rejected(
            "truncated_image", rel, f"the BMP has {len(data)} bytes, its header declares {declared}"
        )
    w, h = struct.unpack("<ii", data[18:26])
    return w, abs(h)


def _gif_size(data: bytes, rel: str) -> tuple[int, int]:
    """The logical screen (what the first frame is drawn on); the file ends with the trailer byte 0x3B."""
    if len(data) < 13:
        raise Rejected("truncated_image", rel, "the GIF stops before its logical screen descriptor")
    if b";" not in data[-16:]:
        raise Rejected("truncated_image", rel, "the GIF has no trailer at its end: the file is cut short")
    return struct.unpack("<HH", data[6:10])


def _webp_size(data: bytes, rel: str) -> tuple[int, int]:
    """RIFF size against the file's; the canvas from the first chunk: VP8X, VP8L (lossless) or VP8 (lossy)."""
    declared = struct.unpack("<I", data[4:8])[0] + 8
    if len(data) < max(declared, 30):
        raise Rejected(
            "truncated_image", rel, f"the WebP has {len(data)} bytes, its header declares {declared}"
        )
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    raise Rejected("corrupt_image", rel, f"the WebP's first chunk {chunk!r} is not VP8, VP8L or VP8X")


def _decoded_size(data: bytes, rel: str, expect: tuple[int, int] | None) -> tuple[int, int]:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise Rejected("corrupt_image", rel, "OpenCV cannot decode the image; re-export or remove it")
    size = (int(img.shape[1]), int(img.shape[0]))
    if expect is not None and size != tuple(expect):
        raise Rejected("corrupt_image", rel, f"the header says {expect[0]}x{expect[1]}, the pixels {size}")
    return size


def parse_xy_lines(lines: list[str], rel: str) -> np.ndarray:
    """Points from lines of 'x y' -> (K, 2) float64; Rejected for extra columns, text, NaN or inf."""
    pts = np.empty((len(lines), 2), np.float64)
    for k, line in enumerate(lines):
        fields = line.split()
        if len(fields) != 2:
            reason = "extra_columns" if len(fields) > 2 else "malformed_landmarks"
            raise Rejected(reason, rel, f"line {k + 1} of the points has {len(fields)} values, want 2 (x y)")
        try:
            pts[k] = float(fields[0]), float(fields[1])
        except ValueError:
            raise Rejected("non_numeric", rel, f"point {k + 1} is not numeric: {line.strip()!r}") from None
    if not np.isfinite(pts).all():
        k = int((~np.isfinite(pts)).any(axis=1).argmax())
        raise Rejected("non_finite", rel, f"point {k + 1} is NaN or infinite: {lines[k].strip()!r}")
    return pts


def text_lines(data: bytes, rel: str) -> list[str]:
    """The non-blank lines of a landmark file; Rejected if it is not text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("malformed_landmarks", rel, "the landmark file is not UTF-8 text") from None
    return [line for line in text.splitlines() if line.strip()]


def relpath(path: Path | str, root: Path | str) -> str:
    """POSIX path of `path` relative to `root` (the form stored in manifests and quarantine files)."""
    return Path(os.path.relpath(path, root)).as_posix()
