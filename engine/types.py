"""Boundary types: what goes into the engine (a job) and what comes out (a result).

>>> from engine import GenerationRequest, Mode
>>> req = GenerationRequest(image=photo, prompt="an oil painting", mode=Mode.CANNY, strength=0.6)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from PIL import Image

from engine.errors import InputError
from engine.images import image_digest
from engine.provenance import encode_png

__all__ = [
    "GenerationRequest",
    "GenerationResult",
    "Mode",
    "Outpaint",
    "Pad",
]


class Mode(StrEnum):
    """The img2img modes. Each has one module under `engine/modes/`."""

    #: variations of the source through FLUX.1-Redux
    REDUX = "redux"
    #: keeps the source's edges (OpenCV Canny) through FLUX.1-Canny
    CANNY = "canny"
    #: keeps the source's 3-D structure (Depth Anything) through FLUX.1-Depth
    DEPTH = "depth"
    #: inpaints under a mask, or outpaints past the borders, through FLUX.1-Fill
    FILL = "fill"
    #: natural-language edits through FLUX.1-Kontext
    KONTEXT = "kontext"

    @classmethod
    def parse(cls, value: str | Mode) -> Mode:
        try:
            return cls(str(value.value if isinstance(value, Mode) else value).strip().lower())
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise InputError(f"unknown mode {str(value)!r}: choose one of {names}") from None


_PAD_SIDES = ("left", "right", "up", "down")
_PAD_ITEM = re.compile(r"^\s*(left|right|up|down|all)\s*=\s*(\d+(?:\.\d+)?)\s*(%|px)?\s*$")


@dataclass(frozen=True)
class Pad:
    """How far to extend one side: pixels, or a percentage of the source's length along that axis."""

    amount: float = 0
    percent: bool = False

    def pixels(self, length: int) -> int:
        return round(length * self.amount / 100) if self.percent else round(self.amount)


@dataclass(frozen=True)
class Outpaint:
    """Padding per side for outpainting.

    >>> Outpaint.parse("right=256")
    >>> Outpaint.parse("all=25%")
    >>> Outpaint.parse("left=10%,down=128")
    """

    left: Pad = Pad()
    right: Pad = Pad()
    up: Pad = Pad()
    down: Pad = Pad()

    @classmethod
    def parse(cls, spec: str) -> Outpaint:
        sides: dict[str, Pad] = {}
        for item in spec.split(","):
            match = _PAD_ITEM.match(item)
            if not match:
                raise InputError(
                    f"bad outpaint spec {item.strip()!r}: use SIDE=PIXELS or SIDE=PERCENT%, "
                    "SIDE one of left, right, up, down, all (e.g. right=256 or all=25%)"
                )
            side, amount, unit = match.groups()
            pad = Pad(float(amount), unit == "%")
            for name in _PAD_SIDES if side == "all" else (side,):
                sides[name] = pad
        result = cls(**sides)
        if not any(p.amount > 0 for p in sides.values()):
            raise InputError(f"outpaint spec {spec!r} adds nothing: give at least one side a size above 0")
        return result

    def resolve(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Pixels to add as (left, right, up, down) for a source of `width` x `height`."""
        return (self.left.pixels(width), self.right.pixels(width), self.up.pixels(height), self.down.pixels(height))

    def describe(self) -> str:
        parts = []
        for name in _PAD_SIDES:
            pad: Pad = getattr(self, name)
            if pad.amount:
                parts.append(f"{name}={pad.amount:g}{'%' if pad.percent else ''}")
        return ",".join(parts)


@dataclass(frozen=True, eq=False)
class GenerationRequest:
    """One job: a source image, a prompt, a mode and a strength, plus per-mode inputs.

    :param image: the source, already loaded and checked by `engine.images.load_image`
    :param strength: 0..1, how far the result may move from the source (0 returns it untouched)
    :param seed: random when None; the seed used is always in the result
    :param steps: overrides the preset's number of denoising steps at strength 1
    :param guidance: overrides the preset's guidance scale for the mode
    :param fast: redux only: FLUX.1-schnell in about 4 steps
    :param mask: fill: white = repaint; when None, the source's transparent pixels are repainted
    :param outpaint: fill: extend the canvas past the borders instead of inpainting
    :param style: canny/depth: an image whose look (through Redux) replaces the prompt's
    :param owner: who asked, for fair scheduling across users
    """

    image: Image.Image
    prompt: str = ""
    mode: Mode = Mode.REDUX
    strength: float = 0.5
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    fast: bool = False
    mask: Image.Image | None = None
    outpaint: Outpaint | None = None
    style: Image.Image | None = None
    owner: str = ""

    def describe(self) -> dict[str, Any]:
        """The job as JSON-able data (images by size and content hash), for provenance and logs."""
        return {
            "mode": self.mode.value,
            "prompt": self.prompt,
            "strength": self.strength,
            "seed": self.seed,
            "steps": self.steps,
            "guidance": self.guidance,
            "fast": self.fast,
            "outpaint": self.outpaint.describe() if self.outpaint else None,
            "image": _image_info(self.image),
            "mask": _image_info(self.mask),
            "style": _image_info(self.style),
            "owner": self.owner,
        }


def _image_info(image: Image.Image | None) -> dict[str, Any] | None:
    if image is None:
        return None
    return {"size": list(image.size), "mode": image.mode, "sha256": image_digest(image)}


@dataclass(frozen=True, eq=False)
class GenerationResult:
    """What a job produced.

    :param image: the result, RGB
    :param seed: the seed actually used
    :param steps: denoising steps actually run (0 when strength was 0)
    :param model: the models that made it, e.g. "FLUX.1-Redux-dev + FLUX.1-dev"
    :param timings: seconds per phase: "queued", "load", "prepare", "denoise", "total"
    :param provenance: the A1111-style parameters text and the whole job as JSON
    """

    image: Image.Image
    seed: int
    steps: int
    model: str
    timings: dict[str, float]
    parameters: str
    job: dict[str, Any]

    def png_bytes(self) -> bytes:
        """The image as PNG bytes, with the provenance chunks."""
        return encode_png(self.image, self.parameters, self.job)
