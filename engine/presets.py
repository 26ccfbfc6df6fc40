"""Presets: which repos make each mode, and the defaults each mode renders with.

`flux` loads the FLUX.1 family from the Hugging Face cache (HF_TOKEN for the gated repos; any repo
id may be replaced by a local folder). `tiny` builds every component in code (`engine/tiny.py`)
with random weights: no files, no network, a CPU renders every mode in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InputError

__all__ = ["FLUX", "PRESETS", "TINY", "ModeDefaults", "Preset", "get_preset"]


@dataclass(frozen=True)
class ModeDefaults:
    """Denoising steps at strength 1 and the guidance scale (0 = the model takes no guidance)."""

    steps: int
    guidance: float


@dataclass(frozen=True)
class Preset:
    """What one preset loads and how each mode renders with it.

    :param repos: role -> Hugging Face repo id (or local folder); roles are `base` (FLUX.1-dev:
        text encoders, VAE, scheduler, dev transformer), `schnell`, `redux`, `canny`, `depth`,
        `fill`, `kontext`, `canny_lora`, `depth_lora` and `depth_estimator`
    :param lora_files: file name of each control LoRA inside its repo
    :param defaults: per mode key: redux, redux_fast, canny, depth, fill, kontext
    :param pixel_budget: area of the working image
    """

    name: str
    repos: dict[str, str]
    lora_files: dict[str, str]
    defaults: dict[str, ModeDefaults]
    max_sequence_length: int
    fast_max_sequence_length: int
    pixel_budget: int
    built_in_code: bool = False


_FLUX_REPOS = {
    "base": "black-forest-labs/FLUX.1-dev",
    "schnell": "black-forest-labs/FLUX.1-schnell",
    "redux": "black-forest-labs/FLUX.1-Redux-dev",
    "canny": "black-forest-labs/FLUX.1-Canny-dev",
    "depth": "black-forest-labs/FLUX.1-Depth-dev",
    "fill": "black-forest-labs/FLUX.1-Fill-dev",
    "kontext": "black-forest-labs/FLUX.1-Kontext-dev",
    "canny_lora": "black-forest-labs/FLUX.1-Canny-dev-lora",
    "depth_lora": "black-forest-labs/FLUX.1-Depth-dev-lora",
    "depth_estimator": "depth-anything/Depth-Anything-V2-Small-hf",
}
_LORA_FILES = {"canny": "flux1-canny-dev-lora.safetensors", "depth": "flux1-depth-dev-lora.safetensors"}

# Guidance values are Black Forest Labs' recommendations for each model (FLUX.1 model cards).
FLUX = Preset(
    name="flux",
    repos=_FLUX_REPOS,
    lora_files=_LORA_FILES,
    defaults={
        "redux": ModeDefaults(steps=28, guidance=2.5),
        "redux_fast": ModeDefaults(steps=4, guidance=0.0),
        "canny": ModeDefaults(steps=28, guidance=30.0),
        "depth": ModeDefaults(steps=28, guidance=10.0),
        "fill": ModeDefaults(steps=28, guidance=30.0),
        "kontext": ModeDefaults(steps=28, guidance=2.5),
    },
    max_sequence_length=512,
    fast_max_sequence_length=256,
    pixel_budget=1024 * 1024,
)

TINY = Preset(
    name="tiny",
    repos=_FLUX_REPOS,  # for provenance: the tiny models stand in for these
    lora_files=_LORA_FILES,
    defaults={
        "redux": ModeDefaults(steps=8, guidance=2.5),
        "redux_fast": ModeDefaults(steps=4, guidance=0.0),
        "canny": ModeDefaults(steps=8, guidance=30.0),
        "depth": ModeDefaults(steps=8, guidance=10.0),
        "fill": ModeDefaults(steps=8, guidance=30.0),
        "kontext": ModeDefaults(steps=8, guidance=2.5),
    },
    max_sequence_length=32,
    fast_max_sequence_length=32,
    pixel_budget=96 * 96,
    built_in_code=True,
)

PRESETS = {p.name: p for p in (FLUX, TINY)}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None
