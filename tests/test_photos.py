"""The image decoder predict and serve share: limits from the header before decoding, orientation, colour."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from _photos import encode, exif_rotated_jpeg, huge_png
from landmix import photos
from landmix.sources import probe_image


def test_sizes_are_checked_from_the_header_before_decoding():
    with pytest.raises(photos.PhotoError, match="100.0 megapixels, over the limit of 40") as e:
        photos.decode(huge_png())
    assert e.value.status == 413
    with pytest.raises(photos.PhotoError, match="over the limit of 1000") as e:
        photos.decode(b"\x89PNG" + bytes(2000), max_bytes=1000)
    assert e.value.status == 413


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        (b"", 400, "empty"),
        (b"hello, not an image", 415, "not PNG, JPEG"),
        (encode(np.zeros((64, 64, 3), np.uint8), "JPEG")[:300], 400, "truncated"),
        (encode(np.zeros((64, 64, 3), np.uint8), "PNG")[:-20], 400, "truncated"),
        (encode(np.zeros((64, 64, 3), np.uint8), "GIF")[:-20], 400, "truncated"),
        (encode(np.zeros((64, 64, 3), np.uint8), "WEBP")[:-20], 400, "truncated"),
        (b"II*\x00 a TIFF", 415, "not PNG, JPEG, PPM/PGM, BMP, GIF or WebP"),
    ],
)
def test_broken_bytes_say_why(data, status, says):
    with pytest.raises(photos.PhotoError, match=says) as e:
        photos.decode(data)
    assert e.value.status == status


def test_grey_alpha_cmyk_and_one_pixel_decode_to_rgb():
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[:, :20] = (200, 100, 50)
    grey = photos.decode(encode(rgb[:, :, 0], "PNG"))
    assert grey.shape == (30, 40, 3) and (grey[:, :, 0] == grey[:, :, 2]).all() and grey[0, 0, 0] == 200
    rgba = photos.decode(encode(np.dstack([rgb, np.full((30, 40), 7, np.uint8)]), "PNG"))
    assert np.array_equal(rgba, rgb)  # the alpha dropped, the colour under it kept
    cmyk = photos.decode(encode(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=98))
    assert cmyk.shape == (30, 40, 3) and np.abs(cmyk[5, 5].astype(int) - (200, 100, 50)).max() < 12
    assert photos.decode(encode(np.zeros((1, 1, 3), np.uint8), "PNG")).shape == (1, 1, 3)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "WEBP-lossless", "WEBP-animated"])
def test_gif_and_webp_sizes_come_from_the_header_and_decode_to_the_first_frame(fmt):
    rgb = np.zeros((30, 41, 3), np.uint8)
    rgb[:, :20] = (200, 100, 50)
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    out = io.BytesIO()
    kw = {"lossless": True} if fmt == "WEBP-lossless" else {}
    if fmt == "WEBP-animated":
        kw = {"save_all": True, "append_images": frames[1:]}
    frames[0].save(out, fmt.split("-")[0], **kw)
    data = out.getvalue()
    assert probe_image(data, "x") == (41, 30)
    with pytest.raises(photos.PhotoError, match="over the limit") as e:  # the limit read from the header
        photos.decode(data, max_pixels=41 * 30 - 1)
    assert e.value.status == 413
    image = photos.decode(data)
    assert image.shape == (30, 41, 3) and np.abs(image[5, 5].astype(int) - (200, 100, 50)).max() < 12


def test_exif_orientation_gives_the_displayed_pixels():
    upright = np.zeros((40, 100, 3), np.uint8)
    upright[:10] = 255  # a white band along the top, as displayed
    image = photos.decode(exif_rotated_jpeg(upright))
    assert image.shape == (40, 100, 3) and image[:8].mean() > 240 and image[15:].mean() < 10


def test_read_photo_names_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 cut")
    with pytest.raises(ValueError, match="broken.jpg"):
        photos.read_photo(bad)
    good = tmp_path / "ok.png"
    cv2.imwrite(str(good), np.full((5, 6, 3), (1, 2, 3), np.uint8))  # BGR on disk
    assert photos.read_photo(good)[0, 0].tolist() == [3, 2, 1]
