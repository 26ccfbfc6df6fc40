"""Input images: orientation, every pixel mode, the size budget, and every bad file."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from engine.errors import InputError
from engine.images import ImageLimits, budget_size, fit_to_budget, image_digest, load_image, load_image_file


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_exif_orientation_is_applied(photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(photo, "JPEG", exif=exif.tobytes())
    loaded = load_image(data)
    assert loaded.size == (photo.height, photo.width)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("RGB", "RGB"), ("L", "RGB"), ("P", "RGB"), ("CMYK", "RGB"), ("LA", "RGB"), ("RGBA", "RGB"), ("1", "RGB")],
)
def test_every_mode_becomes_rgb(photo, mode, expected):
    fmt = "JPEG" if mode == "CMYK" else "TIFF" if mode == "1" else "PNG"
    loaded = load_image(encode(photo.convert(mode), fmt))
    assert loaded.mode == expected
    assert loaded.size == photo.size


def test_real_transparency_is_kept(photo):
    rgba = photo.convert("RGBA")
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    assert load_image(encode(rgba)).mode == "RGBA"


def test_palette_transparency_is_kept(photo):
    paletted = photo.convert("P")
    paletted.info["transparency"] = paletted.getpixel((0, 0))
    assert load_image(encode(paletted, transparency=paletted.getpixel((0, 0)))).mode == "RGBA"


def test_16_bit_grey_is_scaled_not_clipped():
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    loaded = load_image(encode(Image.fromarray(ramp)))
    pixels = np.asarray(loaded)[..., 0]
    assert loaded.mode == "RGB"
    assert pixels.min() == 0 and pixels.max() == 255
    assert 100 < pixels.mean() < 155  # a full ramp, not a wall of 255


def test_animation_gives_its_first_frame():
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue", "green")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    loaded = load_image(buffer.getvalue())
    assert loaded.getpixel((5, 5))[0] > 200 and loaded.getpixel((5, 5))[2] < 50


def test_empty_file():
    with pytest.raises(InputError, match=r"empty \(0 bytes\)"):
        load_image(b"")


def test_not_an_image():
    with pytest.raises(InputError, match="not an image"):
        load_image(b"%PDF-1.7 this is a document, not a picture")


def test_truncated_file(photo):
    data = encode(photo, "JPEG")
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_image(data[: len(data) // 2])


def test_too_many_bytes(photo):
    data = encode(photo)
    with pytest.raises(InputError, match="over the .* limit"):
        load_image(data, ImageLimits(max_bytes=len(data) - 1))


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_too_many_pixels_is_refused_from_the_header_before_decoding():
    with pytest.raises(InputError, match="is 9000x9000 = 81.0 MP, over the 50.0 MP limit"):
        load_image(_png_header_only(9000, 9000))


def test_huge_header_in_a_tiny_file():
    # A 40000 x 40000 header in a file of a few bytes: refused without allocating 4.8 GB.
    with pytest.raises(InputError, match="over the 50.0 MP limit"):
        load_image(_png_header_only(40_000, 40_000))


def test_decompression_bomb_guard_stays_on():
    assert Image.MAX_IMAGE_PIXELS is not None
    with pytest.raises(InputError, match="too many pixels, over the 179.0 MP limit"):
        load_image(_png_header_only(20_000, 20_000), ImageLimits(max_pixels=10**12))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_image_file(tmp_path / "nope.png")


def test_budget_keeps_aspect_and_multiples_of_16():
    for size in [(300, 200), (4000, 3000), (512, 512), (1920, 1080), (100, 1000)]:
        width, height = budget_size(*size, 1024 * 1024)
        assert width % 16 == 0 and height % 16 == 0
        assert width * height <= 1024 * 1024
        assert width * height > 0.85 * 1024 * 1024 or min(width, height) < 128
        assert abs(width / height - size[0] / size[1]) < 0.1 * size[0] / size[1]


def test_fit_to_budget_resizes(photo):
    out = fit_to_budget(photo, 64 * 64)
    assert out.size == (64, 48)


def test_digest_is_of_pixels_not_encoding(photo):
    assert image_digest(load_image(encode(photo, "PNG"))) == image_digest(load_image(encode(photo, "TIFF")))
    assert image_digest(photo) != image_digest(photo.rotate(90))
