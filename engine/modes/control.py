"""What canny and depth share: FluxControlImg2ImgPipeline on a control map.

Both denoise over the source with a control image that always constrains, whatever the strength;
strength is how far the pixels may move. The transformer is FLUX.1-Canny/Depth-dev, or with the
`lora` control setting, the FLUX.1-dev transformer with the matching LoRA. An optional style image
replaces the prompt's embeddings with its Redux embeddings (joined to the prompt's), so the
structure comes from the source and the look from the style image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from engine.conditioning import Conditioner
from engine.errors import InputError
from engine.images import fit_to_budget, flatten
from engine.models import ModelRegistry
from engine.plan import Plan, Prepared
from engine.settings import EngineSettings
from engine.types import GenerationRequest

__all__ = ["ControlMode"]


@dataclass(frozen=True)
class ControlMode:
    """A control mode: `kind` names its model (canny or depth), `control_map` makes its map."""

    kind: str
    control_map: Callable[[Conditioner, Image.Image], Image.Image]

    def check_inputs(self, req: GenerationRequest) -> None:
        if req.mask is not None or req.outpaint is not None:
            raise InputError(f"{self.kind} takes no mask or outpaint: use the fill mode for those")
        if req.fast:
            raise InputError("fast works with the redux mode only")

    def defaults_key(self, req: GenerationRequest) -> str:
        return self.kind

    def model_key(self, req: GenerationRequest, settings: EngineSettings) -> str:
        return f"dev+{self.kind}" if settings.control == "lora" else self.kind

    def model_name(self, req: GenerationRequest, settings: EngineSettings) -> str:
        title = self.kind.capitalize()
        return f"FLUX.1-dev + FLUX.1-{title}-dev-lora" if settings.control == "lora" else f"FLUX.1-{title}-dev"

    def prepare(self, req: GenerationRequest, pixel_budget: int) -> Prepared:
        style = fit_to_budget(flatten(req.style), pixel_budget) if req.style is not None else None
        return Prepared(prompt=req.prompt, image=fit_to_budget(flatten(req.image), pixel_budget), style=style)

    def run(self, pipes: ModelRegistry, cond: Conditioner, job: Prepared, plan: Plan, req: GenerationRequest) -> Image.Image:
        # 1. The control map, cached per source
        control_image = self.control_map(cond, job.image)

        # 2. The control pipeline: its own transformer, or dev with the control LoRA
        if pipes.settings.control == "lora":
            pipe = pipes.pipeline("control", "dev", lora=self.kind)
        else:
            pipe = pipes.pipeline("control", self.kind)

        # 3. The look: the prompt's embeddings, or the style image's Redux embeddings joined to them
        if job.style is not None:
            embeds, pooled = cond.redux(job.style, job.prompt, plan.max_sequence_length)
        else:
            embeds, pooled = cond.prompt(pipe, job.prompt, plan.max_sequence_length)

        # 4. Denoise over the source, constrained by the control map
        return pipe(
            image=job.image,
            control_image=control_image,
            prompt_embeds=embeds,
            pooled_prompt_embeds=pooled,
            **plan.kwargs(job.image.size),
        ).images[0]
