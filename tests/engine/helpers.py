"""Small helpers for engine tests: counting real forward calls and comparing pixels."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image


@contextmanager
def count_calls(**modules: torch.nn.Module):
    """Count forward calls of each module: `with count_calls(t5=...) as calls: ...; calls["t5"]`."""
    calls = dict.fromkeys(modules, 0)
    handles = []
    for name, module in modules.items():

        def hook(*_: object, _name: str = name) -> None:
            calls[_name] += 1

        handles.append(module.register_forward_pre_hook(hook))
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(pixels(a) - pixels(b)).mean())


def max_abs_diff(a: Image.Image, b: Image.Image) -> int:
    return int(np.abs(pixels(a) - pixels(b)).max())
