"""Kontext: edits in plain language ("make her hair red") through FLUX.1-Kontext-dev.

At strength 1.0 FluxKontextPipeline renders fresh noise conditioned on the source; below 1.0,
FluxKontextInpaintPipeline with a mask over the whole image starts from the source itself, so
strength is how far the edit may move away from it. Both are given the working size: without it
Kontext renders 1024x1024 whatever the source's aspect.
"""

from __future__ import annotations

from PIL import Image

from engine.conditioning import Conditioner
from engine.errors import InputError
from engine.images import fit_to_budget, flatten
from engine.models import ModelRegistry
from engine.plan import Plan, Prepared
from engine.settings import EngineSettings
from engine.types import GenerationRequest

NAME = "FLUX.1-Kontext-dev"


def check_inputs(req: GenerationRequest) -> None:
    if not req.prompt.strip():
        raise InputError('kontext needs an instruction as the prompt, e.g. "change the background to a beach"')
    if req.mask is not None or req.outpaint is not None:
        raise InputError("kontext takes no mask or outpaint: use the fill mode for those")
    if req.fast:
        raise InputError("fast works with the redux mode only")
    if req.style is not None:
        raise InputError("a style image works with the canny or depth modes only")


def defaults_key(req: GenerationRequest) -> str:
    return "kontext"


def model_key(req: GenerationRequest, settings: EngineSettings) -> str:
    return "kontext"


def model_name(req: GenerationRequest, settings: EngineSettings) -> str:
    return NAME


def prepare(req: GenerationRequest, pixel_budget: int) -> Prepared:
    return Prepared(prompt=req.prompt, image=fit_to_budget(flatten(req.image), pixel_budget))


def run(pipes: ModelRegistry, cond: Conditioner, job: Prepared, plan: Plan, req: GenerationRequest) -> Image.Image:
    width, height = job.image.size
    # Kontext would otherwise snap the source to its preferred sizes and the output to 1 MP.
    size_kwargs = {"_auto_resize": False, "max_area": width * height}

    # 1. Plain Kontext at full strength, the inpainting variant over a full mask below it
    if plan.full:
        pipe = pipes.pipeline("kontext", "kontext")
        extra: dict[str, object] = {}
    else:
        pipe = pipes.pipeline("kontext_inpaint", "kontext")
        extra = {"mask_image": Image.new("L", job.image.size, 255)}

    # 2. The instruction's embeddings
    embeds, pooled = cond.prompt(pipe, job.prompt, plan.max_sequence_length)

    # 3. Denoise
    return pipe(
        image=job.image,
        prompt_embeds=embeds,
        pooled_prompt_embeds=pooled,
        **extra,
        **size_kwargs,
        **plan.kwargs(job.image.size, strength=not plan.full),
    ).images[0]
