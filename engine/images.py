"""Loading and normalising input images: every bad file becomes one clear `InputError`.

>>> limits = ImageLimits(max_bytes=20_000_000, max_pixels=40_000_000)
>>> photo = load_image(Path("cat.jpg").read_bytes(), limits)
>>> work = fit_to_budget(photo, 1024 * 1024)   # about 1 MP, sides multiples of 16
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import InputError

__all__ = ["ImageLimits", "fit_to_budget", "flatten", "image_digest", "load_image", "load_image_file", "snap"]

#: Sides of every working image are multiples of this (VAE factor 8 x patch 2).
SIDE_MULTIPLE = 16


@dataclass(frozen=True)
class ImageLimits:
    """Caps checked before any pixel is decoded.

    :param max_bytes: the encoded file's size
    :param max_pixels: width x height as declared in the file's header
    """

    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 50_000_000


def load_image_file(path: str | Path, limits: ImageLimits = ImageLimits(), *, label: str = "image") -> Image.Image:
    """Read and decode an image file; see `load_image`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{label} file not found: {str(path)!r}")
    if not path.is_file():
        raise InputError(f"{label} path is not a file: {str(path)!r}")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise InputError(f"{label} is {_mb(size)}, over the {_mb(limits.max_bytes)} limit")
    return load_image(path.read_bytes(), limits, label=label)


def load_image(data: bytes, limits: ImageLimits = ImageLimits(), *, label: str = "image") -> Image.Image:
    """Decode `data` into an upright RGB image, or RGBA when it has real transparency.

    EXIF orientation is applied; palette, grey, CMYK, 16-bit and float images are converted;
    an animation gives its first frame. The pixel cap is checked from the header, before decoding,
    and Pillow's decompression-bomb guard stays on.
    """
    if not data:
        raise InputError(f"{label} is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise InputError(f"{label} is {_mb(len(data))}, over the {_mb(limits.max_bytes)} limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > limits.max_pixels:
                raise InputError(
                    f"{label} is {width}x{height} = {width * height / 1e6:.1f} MP, over the "
                    f"{limits.max_pixels / 1e6:.1f} MP limit"
                )
            image.seek(0)  # animations: the first frame
            image.load()
            image = ImageOps.exif_transpose(image)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{label} is not an image Pillow can read (PNG, JPEG, WebP, GIF, BMP, TIFF...)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow refuses these in Image.open, before our own check could read the size.
        cap = min(limits.max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or limits.max_pixels))
        raise InputError(f"{label} declares too many pixels, over the {cap / 1e6:.1f} MP limit") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{label} is corrupt or truncated ({exc})") from None
    return _to_rgb_or_rgba(image)


def _to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _high_bit_depth_to_l(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        alpha = image.getchannel("A")
        if alpha.getextrema()[0] == 255:  # fully opaque: the alpha carries nothing
            return image.convert("RGB")
        return image
    return image.convert("RGB")


def _high_bit_depth_to_l(image: Image.Image) -> Image.Image:
    array = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode != "F" and array.max(initial=0) > 255 else max(float(array.max(initial=0)), 1.0)
    if image.mode == "F":
        low = float(array.min(initial=0))
        array, top = array - low, max(float(array.max(initial=0)) - low, 1e-6)
    return Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


def flatten(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """RGB, with any transparency composited over `background`."""
    if image.mode != "RGBA":
        return image.convert("RGB")
    canvas = Image.new("RGB", image.size, background)
    canvas.paste(image, mask=image.getchannel("A"))
    return canvas


def snap(width: float, height: float, multiple: int = SIDE_MULTIPLE) -> tuple[int, int]:
    """Round sides down to multiples of `multiple`, never below one multiple."""
    return max(multiple, int(width) // multiple * multiple), max(multiple, int(height) // multiple * multiple)


def budget_size(width: int, height: int, pixel_budget: int, multiple: int = SIDE_MULTIPLE) -> tuple[int, int]:
    """The working size for a `width` x `height` source: the aspect kept, area about `pixel_budget`."""
    scale = math.sqrt(pixel_budget / (width * height))
    return snap(width * scale, height * scale, multiple)


def fit_to_budget(image: Image.Image, pixel_budget: int, multiple: int = SIDE_MULTIPLE) -> Image.Image:
    """Resize keeping the aspect so the area is about `pixel_budget`, sides multiples of `multiple`."""
    size = budget_size(*image.size, pixel_budget, multiple)
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS)


def image_digest(image: Image.Image) -> str:
    """A content hash of the decoded pixels (not of the file), for caches and provenance."""
    digest = hashlib.sha256(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
