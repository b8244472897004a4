"""Photos as pixels: the one image decoder that `landmix predict` and `landmix serve` share.

    image = decode(data)                     # bytes -> (H, W, 3) uint8 RGB, displayed orientation
    image = read_photo("face.jpg")           # a file, the same way (its path named in any error)

The size is read from the header (`sources.probe_image`) and checked against the limits BEFORE decoding:
OpenCV would otherwise allocate whatever a 100-byte header claims, up to about a gigapixel. A truncated or
corrupt file is refused before the decoder sees it. Then OpenCV decodes it with IMREAD_COLOR, which:
- applies the EXIF orientation, so pixels (and the points predicted on them) are in the displayed orientation;
- reads greyscale as three equal channels, drops an alpha channel (the colour under it is kept), converts
  CMYK JPEGs and 16-bit PNGs to 8-bit colour, reads an animated GIF's or WebP's first frame.

A file is read only where it is a regular file (a FIFO would block the reader forever); a link to nothing, a
folder, a file without read permission each get an error that says so. `PHOTO_SUFFIXES` are the names a folder
search takes as photos (`landmix predict`, `select`).

Errors are `PhotoError` (a ValueError) with the HTTP status that serve answers: 413 over a limit, 415 a format
it does not read, 400 an empty, truncated or corrupt image.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import cv2
import numpy as np

from landmix.quarantine import Rejected
from landmix.sources import FORMATS, IMAGE_SUFFIXES, probe_image

MAX_BYTES = 20 * 2**20  # bytes of one request's image (serve's default --max-mb 20)
MAX_PIXELS = 40_000_000  # width x height (serve's default --max-megapixels 40: a 7300 x 5500 photo)
FILE_MAX_PIXELS = 2**30  # predict on files: OpenCV's own ceiling (CV_IO_MAX_IMAGE_PIXELS), checked first
PHOTO_SUFFIXES = IMAGE_SUFFIXES + (".gif", ".webp")  # a folder's photos, by name (case ignored)


class PhotoError(ValueError):
    """An image that is refused, with the HTTP status that says why (400, 413 or 415)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def decode(data: bytes, max_bytes: int | None = MAX_BYTES, max_pixels: int = MAX_PIXELS, name: str = "image"):
    """(H, W, 3) uint8 RGB of encoded image bytes, displayed orientation; PhotoError where it is refused."""
    data = bytes(data)
    if not data:
        raise PhotoError(f"{name}: empty (0 bytes); send the image file's bytes as the body")
    if max_bytes is not None and len(data) > max_bytes:
        raise PhotoError(
            f"{name}: {len(data)} bytes, over the limit of {max_bytes}; send a smaller file", 413
        )
    try:
        size = probe_image(data, name)
    except Rejected as e:  # "name: reason: what is wrong"
        raise PhotoError(str(e), 415 if e.reason == "not_an_image" else 400) from None
    if size[0] * size[1] > max_pixels:
        w, h = size
        raise PhotoError(
            f"{name}: {w}x{h} = {w * h / 1e6:.1f} megapixels, over the limit of {max_pixels / 1e6:g}; "
            f"send a smaller photo (a face needs far fewer pixels)",
            413,
        )
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise PhotoError(f"{name}: not an image OpenCV can decode ({len(data)} bytes); give a {FORMATS} file")
    return np.ascontiguousarray(image[:, :, ::-1])


def read_photo(path, max_pixels: int = FILE_MAX_PIXELS) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file of any size up to max_pixels (greyscale, alpha, CMYK, 16-bit,
    EXIF-rotated, GIF and WebP images as `decode`); a PhotoError (ValueError) naming the file and why where it
    cannot be read."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise PhotoError(
                f"{path}: no such file: a link to {os.readlink(path)}, which is not there"
            ) from None
        raise PhotoError(f"{path}: no such file; check the path") from None
    if stat.S_ISDIR(mode):
        raise PhotoError(f"{path}: a folder, not a photo; name the image files in it")
    if not stat.S_ISREG(mode):
        raise PhotoError(f"{path}: not a regular file (a pipe, socket or device); give an image file", 415)
    try:
        data = path.read_bytes()
    except PermissionError:
        raise PhotoError(f"{path}: cannot read it: permission denied; check the file's permissions") from None
    except OSError as e:
        raise PhotoError(f"{path}: cannot read it: {e.strerror or e}") from None
    if not data:
        raise PhotoError(f"{path}: empty (0 bytes); copy the photo again")
    return decode(data, max_bytes=None, max_pixels=max_pixels, name=str(path))
