"""What a mode gets to work with: its prepared inputs and the denoising plan.

Strength becomes a number of denoising steps here, once, for every mode: diffusers runs the last
`ceil(steps * strength)` of `steps` timesteps, but float error can add a step (10 x 0.3 =
3.0000000000000004) and 0 steps raises. So the plan decides the count and hands the pipeline a
strength in the middle of that count's interval.

    >>> plan = Plan.make(strength=0.5, steps=28, guidance=2.5, seed=7, max_sequence_length=512)
    >>> plan.steps_run
    14
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

__all__ = ["Plan", "Prepared", "steps_for_strength"]


def steps_for_strength(strength: float, steps: int) -> int:
    """Denoising steps run at `strength` out of `steps`: 0 at strength 0, else at least 1."""
    if strength <= 0:
        return 0
    return max(1, min(steps, math.ceil(steps * strength - 1e-6)))


@dataclass(frozen=True)
class Prepared:
    """A job's inputs at working size.

    :param image: the source (RGB), or for outpainting the padded canvas; strength 0 returns it
    :param mask: fill only: 255 = generate
    :param style: canny/depth only: the style image for Redux
    """

    prompt: str
    image: Image.Image
    mask: Image.Image | None = None
    style: Image.Image | None = None


@dataclass(frozen=True)
class Plan:
    """How to denoise: steps, strength, guidance, seed, and the per-step callback."""

    steps: int
    steps_run: int
    strength: float
    guidance: float
    seed: int
    max_sequence_length: int
    on_step: Callable[[int, int], None] | None = None

    @classmethod
    def make(
        cls,
        *,
        strength: float,
        steps: int,
        guidance: float,
        seed: int,
        max_sequence_length: int,
        on_step: Callable[[int, int], None] | None = None,
    ) -> Plan:
        return cls(steps, steps_for_strength(strength, steps), strength, guidance, seed, max_sequence_length, on_step)

    @property
    def full(self) -> bool:
        """True when every step runs: the source only seeds the composition, or nothing at all."""
        return self.steps_run == self.steps

    @property
    def pipeline_strength(self) -> float:
        # diffusers runs steps - int(steps - steps * s) steps; s = (k - 0.5) / steps gives exactly k.
        return 1.0 if self.full else (self.steps_run - 0.5) / self.steps

    def generator(self) -> torch.Generator:
        # Noise is drawn on the CPU so a seed gives the same image on every device.
        return torch.Generator("cpu").manual_seed(self.seed)

    def callback(self) -> Callable[..., dict[str, Any]] | None:
        if self.on_step is None:
            return None
        on_step = self.on_step

        def on_step_end(pipe: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            on_step(index + 1, pipe._num_timesteps)
            return {}

        return on_step_end

    def kwargs(self, size: tuple[int, int], *, strength: bool = True) -> dict[str, Any]:
        """The keyword arguments every Flux pipeline call shares."""
        args: dict[str, Any] = {
            "num_inference_steps": self.steps,
            "guidance_scale": self.guidance,
            "generator": self.generator(),
            "callback_on_step_end": self.callback(),
            "width": size[0],
            "height": size[1],
            "output_type": "pil",
        }
        if strength:
            args["strength"] = self.pipeline_strength
        return args
