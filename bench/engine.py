"""Engine overhead and memory sharing, on the tiny preset (CPU is enough).

1. Per mode: the engine's `Renderer.render` against the same diffusers call made directly (the
   prompt encoded and the control map computed on every call, as a plain diffusers script does),
   at equal steps, timed side by side in one run. "cold" clears the conditioning cache before each
   engine run: its cost over direct is the engine's overhead. "warm" keeps it: a re-run at another
   strength or seed, the common case in a channel.
2. Parameter bytes with every mode loaded: unique (each shared tensor once) against the sum over
   pipelines, on the tiny preset and, from meta-device models (no memory), at the real FLUX sizes.

    python bench/engine.py [--repeats 21] [--steps 8] [--strength 0.5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# This file is named engine.py: the project root must come before bench/ so `engine` is the package.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import torch
from PIL import Image

from engine import preprocess
from engine.images import fit_to_budget
from engine.render import Renderer
from engine.settings import EngineSettings
from engine.types import GenerationRequest, Mode, Outpaint

ASSET = Path(__file__).resolve().parent.parent / "tests" / "assets" / "coffee.jpg"
PROMPT = "tea, watercolour"  # the tiny tokenizer is per character: keep it under 32 tokens


def interleaved_medians(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median seconds of each function, run in turn in every round so machine drift hits all alike."""
    for fn in fns:
        fn()  # warm-up: first-call allocations and lazy loading are not overhead
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]


def direct_call(renderer: Renderer, req: GenerationRequest, steps: int) -> Callable[[], object]:
    """The diffusers call a plain script would make for `req`, on the registry's own pipelines."""
    registry = renderer.registry
    image = fit_to_budget(req.image, renderer.settings.budget)
    seq = renderer.settings.preset_info.max_sequence_length
    common = {
        "num_inference_steps": steps,
        "strength": req.strength,
        "width": image.width,
        "height": image.height,
        "max_sequence_length": seq,
    }

    def generator() -> torch.Generator:
        return torch.Generator("cpu").manual_seed(1)

    if req.mode is Mode.REDUX:
        pipe, prior = registry.pipeline("img2img", "dev"), registry.prior_redux()

        def run() -> object:
            text, pooled, _ = pipe.encode_prompt(prompt=PROMPT, prompt_2=None, max_sequence_length=seq)
            embeds = prior(image=image, prompt_embeds=text, pooled_prompt_embeds=pooled)
            return pipe(
                image=image,
                prompt_embeds=embeds.prompt_embeds,
                pooled_prompt_embeds=embeds.pooled_prompt_embeds,
                guidance_scale=2.5,
                generator=generator(),
                **common,
            ).images[0]
    elif req.mode in (Mode.CANNY, Mode.DEPTH):
        pipe = registry.pipeline("control", req.mode.value)
        model, processor = registry.depth_estimator()

        def run() -> object:
            control = (
                preprocess.canny_edges(image) if req.mode is Mode.CANNY else preprocess.depth_map(model, processor, image)
            )
            return pipe(
                prompt=PROMPT, image=image, control_image=control, guidance_scale=10.0, generator=generator(), **common
            ).images[0]
    elif req.mode is Mode.FILL:
        pipe = registry.pipeline("fill", "fill")
        canvas, mask, _ = preprocess.outpaint_canvas(
            req.image, req.outpaint.resolve(*req.image.size), renderer.settings.budget
        )
        common.update(width=canvas.width, height=canvas.height)

        def run() -> object:
            return pipe(
                prompt=PROMPT, image=canvas, mask_image=mask, guidance_scale=30.0, generator=generator(), **common
            ).images[0]
    else:
        pipe = registry.pipeline("kontext_inpaint", "kontext")
        full = Image.new("L", image.size, 255)

        def run() -> object:
            return pipe(
                prompt=PROMPT,
                image=image,
                mask_image=full,
                guidance_scale=2.5,
                generator=generator(),
                _auto_resize=False,
                max_area=image.width * image.height,
                **common,
            ).images[0]

    return run


def overhead_table(repeats: int, steps: int, strength: float) -> list[str]:
    settings = EngineSettings(preset="tiny", device="cpu")
    renderer = Renderer(settings)
    photo = Image.open(ASSET).convert("RGB")
    rows = [
        "| mode | diffusers direct | engine, cold cache | ratio | engine, warm cache | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for mode in Mode:
        extra = {"outpaint": Outpaint.parse("right=50%")} if mode is Mode.FILL else {}
        req = GenerationRequest(image=photo, prompt=PROMPT, mode=mode, strength=strength, steps=steps, seed=1, **extra)
        direct = direct_call(renderer, req, steps)

        def cold(req: GenerationRequest = req) -> object:
            renderer.cache.clear()
            return renderer.render(req)

        def warm(req: GenerationRequest = req) -> object:
            return renderer.render(req)

        td, tc, tw = interleaved_medians([direct, cold, warm], repeats)
        cells = [
            mode.value,
            f"{td * 1000:.1f} ms",
            f"{tc * 1000:.1f} ms",
            f"{tc / td:.3f}",
            f"{tw * 1000:.1f} ms",
            f"{tw / td:.3f}",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def sharing_table_tiny() -> tuple[int, int]:
    renderer = Renderer(EngineSettings(preset="tiny", device="cpu"))
    photo = Image.open(ASSET).convert("RGB")
    for mode in Mode:
        extra = {"outpaint": Outpaint.parse("right=64")} if mode is Mode.FILL else {}
        renderer.render(GenerationRequest(image=photo, prompt="x", mode=mode, seed=1, steps=1, strength=1.0, **extra))
    renderer.render(GenerationRequest(image=photo, prompt="x", fast=True, seed=1, steps=1, strength=1.0))
    return renderer.registry.unique_parameter_bytes(), renderer.registry.summed_parameter_bytes()


def sharing_full_size() -> tuple[int, int]:
    """Unique vs summed bf16 bytes at the real FLUX.1 sizes, from meta-device models (no memory)."""
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from diffusers.pipelines.flux.modeling_flux import ReduxImageEncoder
    from transformers import CLIPTextConfig, CLIPTextModel, SiglipVisionConfig, SiglipVisionModel, T5Config, T5EncoderModel

    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters()) * 2  # bf16

    with torch.device("meta"):
        t5 = count(
            T5EncoderModel(
                T5Config(
                    d_model=4096,
                    d_ff=10240,
                    num_layers=24,
                    num_heads=64,
                    d_kv=64,
                    vocab_size=32128,
                    feed_forward_proj="gated-gelu",
                )
            )
        )
        clip = count(
            CLIPTextModel(
                CLIPTextConfig(
                    hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, projection_dim=768
                )
            )
        )
        vae = count(
            AutoencoderKL(
                latent_channels=16,
                block_out_channels=(128, 256, 512, 512),
                layers_per_block=2,
                down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4,
            )
        )
        siglip = count(
            SiglipVisionModel(
                SiglipVisionConfig(
                    hidden_size=1152,
                    intermediate_size=4304,
                    num_hidden_layers=27,
                    num_attention_heads=16,
                    image_size=384,
                    patch_size=14,
                )
            )
        )
        redux = count(ReduxImageEncoder())

        def flux(in_channels: int, guidance: bool = True) -> int:
            return count(FluxTransformer2DModel(in_channels=in_channels, out_channels=64, guidance_embeds=guidance))

        transformers = {
            "dev": flux(64),
            "schnell": flux(64, False),
            "canny": flux(128),
            "depth": flux(128),
            "fill": flux(384),
            "kontext": flux(64),
        }
    shared = t5 + clip + vae
    # Pipelines: img2img on dev and on schnell, control on canny and depth, fill, kontext (two pipelines), Redux prior.
    pipelines = [shared + transformers[k] for k in ("dev", "schnell", "canny", "depth", "fill", "kontext", "kontext")]
    pipelines.append(t5 + clip + siglip + redux)
    unique = shared + sum(transformers.values()) + siglip + redux
    return unique, sum(pipelines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--strength", type=float, default=0.5)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"Engine overhead, tiny preset on {os.cpu_count()} CPU cores, {args.steps} steps at strength {args.strength} "
        f"(median of {args.repeats} interleaved rounds; torch {torch.__version__}):\n"
    )
    print("\n".join(overhead_table(args.repeats, args.steps, args.strength)))
    unique, summed = sharing_table_tiny()
    full_unique, full_summed = sharing_full_size()
    print("\nParameter bytes with every mode loaded (8 pipelines):\n")
    print("| models | unique (shared once) | sum over pipelines | unique / sum |")
    print("|---|---|---|---|")
    print(f"| tiny preset, measured | {unique / 1e6:.2f} MB | {summed / 1e6:.2f} MB | {unique / summed:.2f} |")
    print(
        f"| FLUX.1 sizes, bf16, counted | {full_unique / 1e9:.1f} GB | {full_summed / 1e9:.1f} GB | "
        f"{full_unique / full_summed:.2f} |"
    )


if __name__ == "__main__":
    main()
