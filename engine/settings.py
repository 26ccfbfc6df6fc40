"""Engine settings, parsed once (from the environment or the CLI) into a frozen dataclass.

>>> settings = EngineSettings.from_env({"RESTYLE_PRESET": "tiny"})
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from engine.errors import InputError
from engine.images import ImageLimits
from engine.presets import Preset, get_preset

__all__ = ["EngineSettings"]

CONTROL_VARIANTS = ("full", "lora")


@dataclass(frozen=True)
class EngineSettings:
    """How the engine loads and runs models.

    :param preset: `flux` (the real models) or `tiny` (random weights built in code, for tests)
    :param device: `auto` (CUDA when present), `cuda`, `cuda:1`, `cpu`...
    :param pixel_budget: working-image area; None = the preset's
    :param memory_budget_gb: transformers kept loaded at once, in GB of parameters; least recently
        used ones are evicted beyond it. None = no limit
    :param offload: `enable_model_cpu_offload` (for cards of 24 GB or less)
    :param control: `full` (FLUX.1-Canny/Depth-dev) or `lora` (their LoRAs on the dev transformer)
    :param repos: role -> repo id or local folder, replacing the preset's
    :param hf_token: for gated repos; never logged
    :param conditioning_cache: entries kept by the conditioning cache
    :param compile: `torch.compile` the transformers (CUDA only)
    """

    preset: str = "flux"
    device: str = "auto"
    pixel_budget: int | None = None
    memory_budget_gb: float | None = None
    offload: bool = False
    control: str = "full"
    repos: dict[str, str] = field(default_factory=dict)
    hf_token: str | None = field(default=None, repr=False)
    conditioning_cache: int = 64
    compile: bool = False
    limits: ImageLimits = field(default_factory=ImageLimits)

    def __post_init__(self) -> None:
        get_preset(self.preset)
        if self.control not in CONTROL_VARIANTS:
            raise InputError(f"control must be one of {', '.join(CONTROL_VARIANTS)}, got {self.control!r}")
        if self.pixel_budget is not None and self.pixel_budget < 16 * 16:
            raise InputError(f"pixel budget must be at least 256 pixels, got {self.pixel_budget!r}")

    @property
    def preset_info(self) -> Preset:
        return get_preset(self.preset)

    @property
    def budget(self) -> int:
        return self.pixel_budget or self.preset_info.pixel_budget

    def repo(self, role: str) -> str:
        return self.repos.get(role) or self.preset_info.repos[role]

    def with_(self, **changes: object) -> EngineSettings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EngineSettings:
        """Read `RESTYLE_*` variables (and HF_TOKEN); unset ones keep their defaults.

        RESTYLE_PRESET, RESTYLE_DEVICE, RESTYLE_PIXEL_BUDGET, RESTYLE_MEMORY_GB, RESTYLE_OFFLOAD,
        RESTYLE_CONTROL, RESTYLE_COMPILE, RESTYLE_MAX_BYTES, RESTYLE_MAX_PIXELS, and
        RESTYLE_REPO_<ROLE> (e.g. RESTYLE_REPO_FILL=/models/flux-fill).
        """
        env = os.environ if environ is None else environ
        repos = {k.removeprefix("RESTYLE_REPO_").lower(): v for k, v in env.items() if k.startswith("RESTYLE_REPO_")}
        limits = ImageLimits(
            max_bytes=_int(env, "RESTYLE_MAX_BYTES", ImageLimits.max_bytes),
            max_pixels=_int(env, "RESTYLE_MAX_PIXELS", ImageLimits.max_pixels),
        )
        memory = env.get("RESTYLE_MEMORY_GB")
        budget = env.get("RESTYLE_PIXEL_BUDGET")
        return cls(
            preset=env.get("RESTYLE_PRESET", "flux"),
            device=env.get("RESTYLE_DEVICE", "auto"),
            pixel_budget=_int(env, "RESTYLE_PIXEL_BUDGET", 0) if budget else None,
            memory_budget_gb=_float(env, "RESTYLE_MEMORY_GB") if memory else None,
            offload=_bool(env, "RESTYLE_OFFLOAD"),
            control=env.get("RESTYLE_CONTROL", "full"),
            repos=repos,
            hf_token=env.get("HF_TOKEN") or None,
            compile=_bool(env, "RESTYLE_COMPILE"),
            limits=limits,
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"{name} must be a whole number, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str) -> float:
    raw = env[name]
    try:
        return float(raw)
    except ValueError:
        raise InputError(f"{name} must be a number, got {raw!r}") from None


def _bool(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")
