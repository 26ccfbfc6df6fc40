"""Redux: variations of the source.

FLUX.1-Redux turns the source into image embeddings that take the place of (or join) the
prompt's; FluxImg2ImgPipeline then denoises from the source itself. Strength is the img2img
denoise: low keeps the source's pixels, 1.0 is a free variation that keeps only its look.
`fast` runs the same on FLUX.1-schnell in about 4 steps, without guidance.
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

NAME = "FLUX.1-Redux-dev + FLUX.1-dev"
FAST_NAME = "FLUX.1-Redux-dev + FLUX.1-schnell"


def check_inputs(req: GenerationRequest) -> None:
    if req.mask is not None or req.outpaint is not None:
        raise InputError("redux takes no mask or outpaint: use the fill mode for those")
    if req.style is not None:
        raise InputError("a style image works with the canny or depth modes; redux already takes its look from the source")


def defaults_key(req: GenerationRequest) -> str:
    return "redux_fast" if req.fast else "redux"


def model_key(req: GenerationRequest, settings: EngineSettings) -> str:
    return "schnell" if req.fast else "dev"


def model_name(req: GenerationRequest, settings: EngineSettings) -> str:
    return FAST_NAME if req.fast else NAME


def prepare(req: GenerationRequest, pixel_budget: int) -> Prepared:
    return Prepared(prompt=req.prompt, image=fit_to_budget(flatten(req.image), pixel_budget))


def run(pipes: ModelRegistry, cond: Conditioner, job: Prepared, plan: Plan, req: GenerationRequest) -> Image.Image:
    # 1. The img2img pipeline on dev, or on schnell for the fast variant
    pipe = pipes.pipeline("img2img", model_key(req, pipes.settings))

    # 2. Redux embeddings of the source, joined to the prompt's (cached per source and prompt)
    embeds, pooled = cond.redux(job.image, job.prompt, plan.max_sequence_length)

    # 3. Denoise from the source
    return pipe(image=job.image, prompt_embeds=embeds, pooled_prompt_embeds=pooled, **plan.kwargs(job.image.size)).images[0]
