"""Canny: keeps the source's edges.

OpenCV's Canny edges of the source condition FLUX.1-Canny-dev (or its LoRA on FLUX.1-dev).
Strength is the img2img denoise over the source; the edges constrain at every strength.
The pipeline call lives in `engine/modes/control.py`, shared with depth.
"""

from engine.conditioning import Conditioner
from engine.modes.control import ControlMode

MODE = ControlMode(kind="canny", control_map=Conditioner.canny)
