"""Image preprocessing shared by the modes: control maps, masks, the outpaint canvas, compositing.

Pure functions of PIL images (plus the depth model for `depth_map`); no weights are loaded here.

    >>> edges = canny_edges(photo)                 # white edges on black, RGB
    >>> canvas, mask, box = outpaint_canvas(photo, (0, 256, 0, 0), pixel_budget=1024 * 1024)
    >>> final = composite(canvas, generated, mask)  # unmasked pixels are the source's
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image, ImageFilter

from engine.errors import InputError
from engine.images import budget_size

__all__ = [
    "canny_edges",
    "composite",
    "depth_map",
    "feather_radius",
    "mask_from_alpha",
    "outpaint_canvas",
    "prepare_mask",
]

CANNY_LOW = 100
CANNY_HIGH = 200
#: Below this alpha a pixel counts as transparent, so it is repainted.
ALPHA_THRESHOLD = 128


def canny_edges(image: Image.Image, low: int = CANNY_LOW, high: int = CANNY_HIGH) -> Image.Image:
    """OpenCV Canny edges of `image`: white on black, RGB, same size (what FLUX.1-Canny expects)."""
    grey = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(grey, low, high)
    return Image.fromarray(edges).convert("RGB")


@torch.inference_mode()
def depth_map(model: Any, processor: Any, image: Image.Image) -> Image.Image:
    """Relative depth (near = bright) from a Depth Anything model, RGB at `image`'s size."""
    inputs = processor(images=image.convert("RGB"), return_tensors="pt")
    param = next(model.parameters())
    pixel_values = inputs["pixel_values"].to(device=param.device, dtype=param.dtype)
    predicted = model(pixel_values=pixel_values).predicted_depth  # (1, h, w)
    depth = torch.nn.functional.interpolate(
        predicted[:, None].float(), size=(image.height, image.width), mode="bicubic", align_corners=False
    )[0, 0]
    low, high = depth.min(), depth.max()
    depth = (depth - low) / (high - low).clamp_min(1e-6)
    array = (depth * 255.0).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    return Image.fromarray(array).convert("RGB")


def mask_from_alpha(image: Image.Image) -> Image.Image | None:
    """White where `image` is transparent (to repaint); None when it has no transparent pixel."""
    if image.mode != "RGBA":
        return None
    alpha = np.asarray(image.getchannel("A"))
    transparent = alpha < ALPHA_THRESHOLD
    if not transparent.any():
        return None
    return Image.fromarray(np.where(transparent, 255, 0).astype(np.uint8), "L")


def prepare_mask(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A binary L mask (255 = repaint) at `size`. Transparent pixels of an RGBA mask count as black."""
    if mask.mode == "RGBA":
        canvas = Image.new("RGB", mask.size, (0, 0, 0))
        canvas.paste(mask, mask=mask.getchannel("A"))
        mask = canvas
    grey = mask.convert("L").resize(size, Image.Resampling.BILINEAR)
    binary = np.where(np.asarray(grey) >= 128, 255, 0).astype(np.uint8)
    if not binary.any():
        raise InputError("mask is all black: paint the area to repaint in white")
    return Image.fromarray(binary, "L")


def feather_radius(size: tuple[int, int]) -> int:
    """Width of the blend between kept and generated pixels: about 1% of the shorter side."""
    return max(2, round(min(size) / 100))


def composite(source: Image.Image, generated: Image.Image, mask: Image.Image, radius: int | None = None) -> Image.Image:
    """`generated` inside `mask`, `source` outside, with a feathered edge.

    FluxFillPipeline regenerates unmasked pixels too (VAE round trip, drift); this puts them back.
    The feather lies outside the mask, so every masked pixel is fully generated and every pixel
    farther than 2 x `radius` from it is exactly the source's.
    """
    radius = feather_radius(source.size) if radius is None else radius
    grown = mask.convert("L").filter(ImageFilter.MaxFilter(2 * radius + 1))
    alpha = np.asarray(grown.filter(ImageFilter.GaussianBlur(radius / 2)), dtype=np.float32) / 255.0
    alpha = np.maximum(alpha, np.asarray(mask.convert("L"), dtype=np.float32) / 255.0)[..., None]
    src = np.asarray(source.convert("RGB"), dtype=np.float32)
    gen = np.asarray(generated.convert("RGB").resize(source.size, Image.Resampling.LANCZOS), dtype=np.float32)
    out = src * (1.0 - alpha) + gen * alpha
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")


def outpaint_canvas(
    image: Image.Image, padding: tuple[int, int, int, int], pixel_budget: int
) -> tuple[Image.Image, Image.Image, tuple[int, int, int, int]]:
    """The padded canvas, its mask, and where the source sits in it.

    The canvas is the source extended by `padding` = (left, right, up, down) source pixels,
    resized to the pixel budget. The new area starts as a mirrored, blurred continuation of the
    source (what a strength below 1 starts from); the mask covers it plus a thin band over the
    source's border so the seam is regenerated too.

    :returns: (canvas RGB, mask L with 255 = generate, box of the source as left, top, right, bottom)
    """
    left, right, up, down = padding
    if min(padding) < 0:
        raise InputError(f"outpaint padding must not be negative, got {padding!r}")
    width, height = image.size
    full_w, full_h = width + left + right, height + up + down
    canvas_w, canvas_h = budget_size(full_w, full_h, pixel_budget)
    sx, sy = canvas_w / full_w, canvas_h / full_h
    box_l, box_t = round(left * sx), round(up * sy)
    box_r, box_b = min(canvas_w, box_l + max(1, round(width * sx))), min(canvas_h, box_t + max(1, round(height * sy)))
    placed = np.asarray(image.convert("RGB").resize((box_r - box_l, box_b - box_t), Image.Resampling.LANCZOS))

    pad = ((box_t, canvas_h - box_b), (box_l, canvas_w - box_r), (0, 0))
    mirrored = Image.fromarray(np.pad(placed, pad, mode="symmetric"))
    blurred = np.asarray(mirrored.filter(ImageFilter.GaussianBlur(max(2, min(canvas_w, canvas_h) // 32))))
    canvas = blurred.copy()
    canvas[box_t:box_b, box_l:box_r] = placed

    band = max(2, min(canvas_w, canvas_h) // 64)
    keep = np.zeros((canvas_h, canvas_w), dtype=bool)
    keep[
        box_t + (band if up else 0) : box_b - (band if down else 0),
        box_l + (band if left else 0) : box_r - (band if right else 0),
    ] = True
    mask = Image.fromarray(np.where(keep, 0, 255).astype(np.uint8), "L")
    return Image.fromarray(canvas, "RGB"), mask, (box_l, box_t, box_r, box_b)
