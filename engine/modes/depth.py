"""Depth: keeps the source's 3-D structure.

A Depth Anything map of the source (through transformers) conditions FLUX.1-Depth-dev (or its
LoRA on FLUX.1-dev). Strength is the img2img denoise over the source; the depth map constrains at
every strength. The pipeline call lives in `engine/modes/control.py`, shared with canny.
"""

from engine.conditioning import Conditioner
from engine.modes.control import ControlMode

MODE = ControlMode(kind="depth", control_map=Conditioner.depth)
