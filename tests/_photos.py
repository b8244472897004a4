"""Encoded test images: an array or PIL image as bytes, a 100-megapixel header, an EXIF-rotated JPEG."""

import io
import struct
import zlib

import numpy as np
from PIL import Image


def encode(array, fmt: str, **kw) -> bytes:
    """Encoded bytes of an array (or a PIL image: CMYK)."""
    out = io.BytesIO()
    (array if isinstance(array, Image.Image) else Image.fromarray(array)).save(out, fmt, **kw)
    return out.getvalue()


def huge_png(width: int = 10_000, height: int = 10_000) -> bytes:
    """A small valid PNG whose IHDR claims width x height (what a decompression bomb sends)."""
    data = bytearray(encode(np.zeros((8, 8, 3), np.uint8), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def exif_rotated_jpeg(upright: np.ndarray) -> bytes:
    """upright's pixels stored turned 90 degrees anticlockwise, with EXIF orientation 6 (turn clockwise to
    display): a phone photo taken in portrait."""
    im = Image.fromarray(np.ascontiguousarray(np.rot90(upright)))
    exif = im.getexif()
    exif[0x0112] = 6
    return encode(np.asarray(im), "JPEG", quality=95, exif=exif.tobytes())
