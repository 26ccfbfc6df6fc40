"""Shared fixtures: sample photos, and tiny-preset renderers built in code (no files, no network)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ASSETS = Path(__file__).parent / "assets"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("RUN_GPU") == "1":
        return
    skip = pytest.mark.skip(reason="needs a CUDA device: set RUN_GPU=1")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def photo() -> Image.Image:
    """A real photo (300x200 RGB)."""
    with Image.open(ASSETS / "coffee.jpg") as image:
        return image.convert("RGB")


@pytest.fixture(scope="session")
def portrait() -> Image.Image:
    """Another real photo (256x256 RGB)."""
    with Image.open(ASSETS / "astronaut.jpg") as image:
        return image.convert("RGB")


@pytest.fixture(scope="session")
def tiny_settings():
    from engine.settings import EngineSettings

    return EngineSettings(preset="tiny", device="cpu")


@pytest.fixture(scope="session")
def renderer(tiny_settings):
    """One tiny renderer for the session: models are built once, as in production."""
    from engine.render import Renderer

    return Renderer(tiny_settings)


@pytest.fixture
def fresh_renderer(tiny_settings):
    """A renderer with nothing loaded and an empty cache."""
    from engine.render import Renderer

    return Renderer(tiny_settings)
