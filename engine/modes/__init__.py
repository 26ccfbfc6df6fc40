"""One module per mode, each read top to bottom: check_inputs, prepare, then run.

>>> from engine.modes import mode_for
>>> mode_for(Mode.CANNY).model_key(req, settings)
'canny'
"""

from __future__ import annotations

from typing import Protocol

from PIL import Image

from engine.conditioning import Conditioner
from engine.models import ModelRegistry
from engine.modes import canny, depth, fill, kontext, redux
from engine.plan import Plan, Prepared
from engine.settings import EngineSettings
from engine.types import GenerationRequest, Mode

__all__ = ["ModeModule", "mode_for"]


class ModeModule(Protocol):
    """What each mode provides."""

    def check_inputs(self, req: GenerationRequest) -> None: ...
    def defaults_key(self, req: GenerationRequest) -> str: ...
    def model_key(self, req: GenerationRequest, settings: EngineSettings) -> str: ...
    def model_name(self, req: GenerationRequest, settings: EngineSettings) -> str: ...
    def prepare(self, req: GenerationRequest, pixel_budget: int) -> Prepared: ...
    def run(
        self, pipes: ModelRegistry, cond: Conditioner, job: Prepared, plan: Plan, req: GenerationRequest
    ) -> Image.Image: ...


_MODES: dict[Mode, ModeModule] = {
    Mode.REDUX: redux,  # type: ignore[dict-item]
    Mode.CANNY: canny.MODE,
    Mode.DEPTH: depth.MODE,
    Mode.FILL: fill,  # type: ignore[dict-item]
    Mode.KONTEXT: kontext,  # type: ignore[dict-item]
}


def mode_for(mode: Mode) -> ModeModule:
    return _MODES[mode]
