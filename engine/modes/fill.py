"""Fill: inpaint under a mask, or outpaint past the borders, through FLUX.1-Fill-dev.

Inpainting repaints where the mask is white (or, with no mask, where the source PNG is
transparent). Outpainting pads the canvas (left/right/up/down, by pixels or percent) and paints
the padding, which starts as a mirrored, blurred continuation of the source. Strength is the
denoise inside the mask: the new area for outpainting.

FluxFillPipeline regenerates unmasked pixels too, so the source is composited back outside the
mask with a feathered edge: what the user did not mask stays exactly as it was.
"""

from __future__ import annotations

from PIL import Image

from engine import preprocess
from engine.conditioning import Conditioner
from engine.errors import InputError
from engine.images import fit_to_budget, flatten
from engine.models import ModelRegistry
from engine.plan import Plan, Prepared
from engine.settings import EngineSettings
from engine.types import GenerationRequest

NAME = "FLUX.1-Fill-dev"


def check_inputs(req: GenerationRequest) -> None:
    if req.fast:
        raise InputError("fast works with the redux mode only")
    if req.style is not None:
        raise InputError("a style image works with the canny or depth modes only")
    if req.mask is not None and req.outpaint is not None:
        raise InputError("give either a mask (inpaint) or outpaint padding, not both")
    if req.outpaint is None:
        if req.mask is None and preprocess.mask_from_alpha(req.image) is None:
            raise InputError(
                "fill needs a mask: give a mask image (white = repaint), or a PNG whose transparent pixels mark "
                "the area to repaint, or outpaint padding"
            )
        if req.mask is not None and req.mask.size != req.image.size:
            (mw, mh), (w, h) = req.mask.size, req.image.size
            raise InputError(f"mask is {mw}x{mh} but the image is {w}x{h}: they must be the same size")


def defaults_key(req: GenerationRequest) -> str:
    return "fill"


def model_key(req: GenerationRequest, settings: EngineSettings) -> str:
    return "fill"


def model_name(req: GenerationRequest, settings: EngineSettings) -> str:
    return NAME


def prepare(req: GenerationRequest, pixel_budget: int) -> Prepared:
    if req.outpaint is not None:
        padding = req.outpaint.resolve(*req.image.size)
        canvas, mask, _ = preprocess.outpaint_canvas(flatten(req.image), padding, pixel_budget)
        return Prepared(prompt=req.prompt, image=canvas, mask=mask)
    image = fit_to_budget(flatten(req.image), pixel_budget)
    mask = req.mask if req.mask is not None else preprocess.mask_from_alpha(req.image)
    assert mask is not None  # check_inputs ran
    return Prepared(prompt=req.prompt, image=image, mask=preprocess.prepare_mask(mask, image.size))


def run(pipes: ModelRegistry, cond: Conditioner, job: Prepared, plan: Plan, req: GenerationRequest) -> Image.Image:
    assert job.mask is not None
    # 1. The fill pipeline and the prompt's embeddings
    pipe = pipes.pipeline("fill", "fill")
    embeds, pooled = cond.prompt(pipe, job.prompt, plan.max_sequence_length)

    # 2. Denoise inside the mask
    generated = pipe(
        image=job.image,
        mask_image=job.mask,
        prompt_embeds=embeds,
        pooled_prompt_embeds=pooled,
        **plan.kwargs(job.image.size),
    ).images[0]

    # 3. Put the source back outside the mask
    return preprocess.composite(job.image, generated, job.mask)
