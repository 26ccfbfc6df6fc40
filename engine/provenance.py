"""Provenance written into every result PNG.

Two text chunks: `parameters`, in the A1111 format that image viewers and other UIs read,
and `restyle`, JSON with the whole job and the versions of the packages that made it.

    >>> text = parameters_text("a red fox", steps=14, seed=7, size=(1024, 768), model="FLUX.1-dev",
    ...                        strength=0.5, mode="redux")
    >>> png = encode_png(image, text, {"mode": "redux"})
"""

from __future__ import annotations

import io
import json
from importlib import metadata
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

__all__ = ["encode_png", "package_versions", "parameters_text", "read_provenance"]

JSON_CHUNK = "restyle"
PARAMETERS_CHUNK = "parameters"
_PACKAGES = ("restyle", "torch", "diffusers", "transformers", "pillow")


def parameters_text(
    prompt: str,
    *,
    steps: int,
    seed: int,
    size: tuple[int, int],
    model: str,
    strength: float,
    mode: str,
    guidance: float | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """The A1111 `parameters` text: the prompt on its own line, then `Key: value` pairs."""
    fields: dict[str, Any] = {
        "Steps": steps,
        "Sampler": "Euler (flow matching)",
        "Seed": seed,
        "Size": f"{size[0]}x{size[1]}",
        "Model": model,
        "Denoising strength": f"{strength:g}",
        "Mode": mode,
    }
    if guidance is not None:
        fields["Guidance"] = f"{guidance:g}"
    fields.update(extra or {})
    # A1111 quotes values holding a comma or colon so that the line still splits on ", ".
    pairs = ", ".join(f"{k}: {_quote(str(v))}" for k, v in fields.items())
    return f"{prompt}\n{pairs}"


def _quote(value: str) -> str:
    return json.dumps(value) if ("," in value or ":" in value) else value


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def encode_png(image: Image.Image, parameters: str, job: dict[str, Any]) -> bytes:
    """PNG bytes of `image` carrying both provenance chunks."""
    info = PngInfo()
    info.add_text(PARAMETERS_CHUNK, parameters)
    info.add_text(JSON_CHUNK, json.dumps({"job": job, "versions": package_versions()}, sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def read_provenance(png: bytes) -> tuple[str, dict[str, Any]]:
    """The `parameters` text and the decoded JSON chunk of a result PNG."""
    with Image.open(io.BytesIO(png)) as image:
        text = image.text  # type: ignore[attr-defined]
    return text.get(PARAMETERS_CHUNK, ""), json.loads(text.get(JSON_CHUNK, "{}"))
