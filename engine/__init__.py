"""Restyle's engine: FLUX.1 img2img modes behind one async job API. Never imports discord.

    >>> from engine import Engine, EngineSettings, GenerationRequest, load_image
    >>> async with Engine.create(EngineSettings(preset="tiny")) as engine:
    ...     handle = engine.submit(GenerationRequest(image=load_image(data), prompt="a watercolour"))
    ...     result = await handle.result()

Names are imported on first use, so `import engine` (and `python -m engine --help`) stays cheap
until torch and diffusers are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "InputError": "engine.errors",
    "JobCancelled": "engine.errors",
    "JobFailed": "engine.errors",
    "ImageLimits": "engine.images",
    "load_image": "engine.images",
    "load_image_file": "engine.images",
    "Renderer": "engine.render",
    "EngineSettings": "engine.settings",
    "GenerationRequest": "engine.types",
    "GenerationResult": "engine.types",
    "Mode": "engine.types",
    "Outpaint": "engine.types",
    "Engine": "engine.worker",
    "Event": "engine.worker",
    "JobHandle": "engine.worker",
    "JobStatus": "engine.worker",
    "Progress": "engine.worker",
    "QueuePosition": "engine.worker",
    "Started": "engine.worker",
}

__all__ = [
    "Engine",
    "EngineSettings",
    "Event",
    "GenerationRequest",
    "GenerationResult",
    "ImageLimits",
    "InputError",
    "JobCancelled",
    "JobFailed",
    "JobHandle",
    "JobStatus",
    "Mode",
    "Outpaint",
    "Progress",
    "QueuePosition",
    "Renderer",
    "Started",
    "load_image",
    "load_image_file",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from engine.errors import InputError, JobCancelled, JobFailed
    from engine.images import ImageLimits, load_image, load_image_file
    from engine.render import Renderer
    from engine.settings import EngineSettings
    from engine.types import GenerationRequest, GenerationResult, Mode, Outpaint
    from engine.worker import Engine, Event, JobHandle, JobStatus, Progress, QueuePosition, Started
