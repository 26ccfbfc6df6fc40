"""Rendering one job, synchronously, on the calling thread (the worker's, or the CLI's).

>>> renderer = Renderer(EngineSettings(preset="tiny"))
>>> result = renderer.render(GenerationRequest(image=photo, prompt="a watercolour"))
>>> Path("out.png").write_bytes(result.png_bytes())
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Callable

from engine import provenance
from engine.conditioning import Conditioner, ConditioningCache
from engine.errors import InputError
from engine.models import ModelRegistry
from engine.modes import mode_for
from engine.plan import Plan
from engine.settings import EngineSettings
from engine.types import GenerationRequest, GenerationResult, Mode

__all__ = ["MAX_PROMPT_CHARS", "MAX_STEPS", "Renderer", "check_request"]

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 1000
MAX_STEPS = 100
MAX_SEED = 2**63 - 1


def check_request(req: GenerationRequest) -> None:
    """Every check that needs no model: raises InputError naming the bad value."""
    if not isinstance(req.mode, Mode):
        raise InputError(f"unknown mode {req.mode!r}")
    if not isinstance(req.strength, (int, float)) or math.isnan(req.strength) or not 0.0 <= req.strength <= 1.0:
        raise InputError(f"strength must be between 0 and 1, got {req.strength!r}")
    if len(req.prompt) > MAX_PROMPT_CHARS:
        raise InputError(f"prompt is {len(req.prompt)} characters, over the {MAX_PROMPT_CHARS} limit")
    if req.seed is not None and not 0 <= req.seed <= MAX_SEED:
        raise InputError(f"seed must be between 0 and {MAX_SEED}, got {req.seed!r}")
    if req.steps is not None and not 1 <= req.steps <= MAX_STEPS:
        raise InputError(f"steps must be between 1 and {MAX_STEPS}, got {req.steps!r}")
    if req.guidance is not None and not 0.0 <= req.guidance <= 100.0:
        raise InputError(f"guidance must be between 0 and 100, got {req.guidance!r}")
    mode_for(req.mode).check_inputs(req)


class Renderer:
    """Turns a request into a result with the registry's models and the conditioning cache."""

    def __init__(
        self, settings: EngineSettings, registry: ModelRegistry | None = None, cache: ConditioningCache | None = None
    ) -> None:
        self.settings = settings
        self.registry = registry or ModelRegistry(settings)
        self.cache = cache or ConditioningCache(settings.conditioning_cache)
        self.conditioner = Conditioner(self.registry, self.cache)

    def model_key(self, req: GenerationRequest) -> str:
        """The model a request runs on, e.g. `dev`, `canny`, `dev+canny`: for scheduling by affinity."""
        return mode_for(req.mode).model_key(req, self.settings)

    def render(self, req: GenerationRequest, *, on_step: Callable[[int, int], None] | None = None) -> GenerationResult:
        """Render `req`. `on_step(k, n)` is called after each denoising step and may raise to stop."""
        started = time.perf_counter()
        mode = mode_for(req.mode)
        preset = self.settings.preset_info

        # 1. Check inputs
        check_request(req)

        # 2. Prepare the inputs at working size (resize, mask, outpaint canvas)
        job = mode.prepare(req, self.settings.budget)
        prepared = time.perf_counter()

        # 3. Plan the denoising
        defaults = preset.defaults[mode.defaults_key(req)]
        seed = req.seed if req.seed is not None else secrets.randbelow(2**32)
        plan = Plan.make(
            strength=float(req.strength),
            steps=req.steps or defaults.steps,
            guidance=defaults.guidance if req.guidance is None else req.guidance,
            seed=seed,
            max_sequence_length=preset.fast_max_sequence_length if req.fast else preset.max_sequence_length,
            on_step=on_step,
        )

        # 4. Load the transformer (timed apart from the denoising), then run the mode
        loaded = prepared
        if plan.steps_run == 0:
            image = job.image  # strength 0: the source untouched, no GPU work
        else:
            self.registry.transformer(mode.model_key(req, self.settings).split("+")[0])
            loaded = time.perf_counter()
            image = mode.run(self.registry, self.conditioner, job, plan, req)
        rendered = time.perf_counter()

        # 5. Provenance
        model = mode.model_name(req, self.settings)
        if preset.built_in_code:
            model = f"{model} (tiny preset: random weights)"
        parameters = provenance.parameters_text(
            req.prompt,
            steps=plan.steps_run,
            seed=seed,
            size=image.size,
            model=model,
            strength=plan.strength,
            mode=_mode_label(req),
            guidance=plan.guidance,
            extra={"Total steps": plan.steps, "Preset": preset.name},
        )
        timings = {
            "prepare": prepared - started,
            "load": loaded - prepared,
            "denoise": rendered - loaded,
            "total": time.perf_counter() - started,
        }
        described = {
            **req.describe(),
            "seed": seed,
            "steps_run": plan.steps_run,
            "total_steps": plan.steps,
            "guidance": plan.guidance,
            "model": model,
            "preset": preset.name,
            "size": list(image.size),
        }
        return GenerationResult(
            image=image.convert("RGB"),
            seed=seed,
            steps=plan.steps_run,
            model=model,
            timings=timings,
            parameters=parameters,
            job=described,
        )


def _mode_label(req: GenerationRequest) -> str:
    if req.mode is Mode.FILL:
        return "fill (outpaint)" if req.outpaint else "fill (inpaint)"
    if req.mode is Mode.REDUX and req.fast:
        return "redux (fast)"
    return req.mode.value
