"""Seconds per FLUX.1-dev image on a CUDA GPU: bf16 eager vs torch.compile vs fp8 (torchao) + compile.

The FLUX.1-dev transformer, T5-XXL, CLIP-L and the FLUX VAE are built at their real sizes with random bf16
weights, straight on the GPU: no download, no token, and speed does not depend on the weight values. The text
encoders run once for the prompt embeddings and are then freed, so what is timed (and what the peak memory
covers) is the FluxPipeline denoising loop plus the VAE decode, as in the diffusers-torchao reference figures.
Compiled rows spend minutes in (untimed) warm-up: max-autotune benchmarks kernel choices on the first call.

    pip install -e '.[fast]'                   # torchao, for the fp8 row
    python bench/gpu_flux.py                   # eager, compile, fp8 at 1024x1024, 28 steps, median of 3
    python bench/gpu_flux.py --configs eager,fp8 --repeats 5
    python bench/gpu_flux.py --tiny            # CPU smoke test of the same code path (eager only)
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import diffusers
import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

CONFIGS = {"eager": "bf16 eager", "compile": "bf16 + torch.compile", "fp8": "fp8 (torchao) + torch.compile"}
COMPILE_MODE = "max-autotune-no-cudagraphs"
GUIDANCE = 3.5
# Shapes do not depend on the step count, so short warm-ups trigger every compilation and autotuning a full run needs.
WARMUP_RUNS, WARMUP_STEPS = 2, 2
REFERENCE = "diffusers-torchao on an H100 (FLUX.1-dev, 1024x1024, 28 steps): 6.6 s bf16 eager, 3.0 s fp8 + compile"


@dataclass(frozen=True)
class Spec:
    transformer: dict[str, Any]
    t5: dict[str, Any]
    clip: dict[str, Any]
    vae: dict[str, Any]
    t5_tokens: int


REAL = Spec(
    transformer=dict(
        patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
        num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
        axes_dims_rope=(16, 56, 56),
    ),
    t5=dict(
        vocab_size=32128, d_model=4096, d_ff=10240, num_layers=24, num_heads=64, d_kv=64, feed_forward_proj="gated-gelu",
    ),
    clip=dict(
        vocab_size=49408, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        projection_dim=768, max_position_embeddings=77, hidden_act="quick_gelu", bos_token_id=49406, eos_token_id=49407,
    ),
    vae=dict(
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=16, norm_num_groups=32,
        use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.1159, scaling_factor=0.3611,
    ),
    t5_tokens=512,
)  # fmt: skip
# Same relations as REAL (transformer in_channels = 4 x VAE latent channels, rope axes sum to the head dim), a few MB.
TINY = Spec(
    transformer=dict(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True, axes_dims_rope=(4, 6, 6),
    ),
    t5=dict(vocab_size=1000, d_model=32, d_ff=64, num_layers=1, num_heads=4, d_kv=8, feed_forward_proj="gated-gelu"),
    clip=dict(
        vocab_size=1000, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        projection_dim=32, max_position_embeddings=77, hidden_act="quick_gelu", bos_token_id=998, eos_token_id=999,
    ),
    vae=dict(
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4,
        use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.1159, scaling_factor=0.3611,
    ),
    t5_tokens=32,
)  # fmt: skip


@dataclass
class Result:
    config: str
    seconds: float | None = None
    peak_gib: float | None = None
    note: str = ""


@contextmanager
def _building(device: torch.device) -> Iterator[None]:
    # Allocating in bf16 on the device avoids a 48 GB fp32 host copy of the transformer and a slow CPU init.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


@torch.no_grad()
def _randomize(model: torch.nn.Module, seed: int) -> Any:
    # One plain small init, whatever each library does by default, keeps 57 bf16 blocks finite.
    torch.manual_seed(seed)
    for name, param in model.named_parameters():
        if param.ndim >= 2:
            param.normal_(0.0, 0.02)
        elif name.endswith("bias"):
            param.zero_()
        else:
            param.fill_(1.0)  # norm scales
    return model.eval().requires_grad_(False)


@torch.no_grad()
def encode_prompt(spec: Spec, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """T5 and CLIP embeddings of a random prompt; the encoders are freed on return."""
    with _building(device):
        t5 = _randomize(T5EncoderModel(T5Config(**spec.t5)), seed=1)
        clip = _randomize(CLIPTextModel(CLIPTextConfig(**spec.clip)), seed=2)
    # Random ids stand in for tokenized text: no tokenizer files are needed and the embedding shapes are the real ones.
    t5_ids = torch.randint(0, spec.t5["vocab_size"], (1, spec.t5_tokens), device=device)
    clip_ids = torch.randint(0, spec.clip["vocab_size"] - 1, (1, 77), device=device)
    clip_ids[:, -1] = spec.clip["eos_token_id"]  # CLIP pools at the first end-of-text token
    return t5(t5_ids).last_hidden_state, clip(clip_ids).pooler_output


def quantize_fp8(transformer: FluxTransformer2DModel) -> None:
    from torchao.quantization import PerRow, quantize_

    try:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig as fp8_config
    except ImportError:  # torchao < 0.9 spells the same recipe as a function
        from torchao.quantization import float8_dynamic_activation_float8_weight as fp8_config
    # Row-wise scales: the recipe torchao recommends for H100-class GPUs, and the more accurate one.
    quantize_(transformer, fp8_config(granularity=PerRow()))


def skip_reason(config: str, tiny: bool) -> str | None:
    if tiny and config != "eager":
        return "skipped in --tiny: compiling on a CPU takes minutes and measures nothing useful"
    if config == "fp8":
        if (capability := torch.cuda.get_device_capability()) < (8, 9):
            return f"skipped: fp8 matmuls need compute capability 8.9+ (Ada/Hopper), this GPU is {capability}"
        if importlib.util.find_spec("torchao") is None:
            return "skipped: torchao is not installed (pip install -e '.[fast]')"
    return None


def measure(config: str, spec: Spec, pipe_parts: dict[str, Any], args: argparse.Namespace) -> Result:
    device: torch.device = args.device
    with _building(device):
        transformer = _randomize(FluxTransformer2DModel(**spec.transformer), seed=3)
    if config == "fp8":
        quantize_fp8(transformer)
    if config != "eager":
        transformer.compile(mode=COMPILE_MODE, fullgraph=True)
    pipe = FluxPipeline(
        transformer=transformer, text_encoder=None, tokenizer=None, text_encoder_2=None, tokenizer_2=None, **pipe_parts
    )
    pipe.set_progress_bar_config(disable=True)
    prompt_embeds, pooled = args.embeds

    def render(steps: int) -> torch.Tensor:
        return pipe(
            prompt_embeds=prompt_embeds,
            pooled_prompt_embeds=pooled,
            height=args.size,
            width=args.size,
            num_inference_steps=steps,
            guidance_scale=GUIDANCE,
            generator=torch.Generator(device).manual_seed(0),
            output_type="pt",
        ).images

    note = ""
    try:
        image = render(WARMUP_STEPS)
    except Exception as error:
        if config == "eager":
            raise
        # A graph break fails fullgraph=True; a partly compiled transformer is still worth a number.
        torch._dynamo.reset()
        transformer.compile(mode=COMPILE_MODE, fullgraph=False)
        note = f"fullgraph failed ({type(error).__name__}), compiled with graph breaks"
        image = render(WARMUP_STEPS)
    for _ in range(WARMUP_RUNS - 1):
        image = render(WARMUP_STEPS)
    if not torch.isfinite(image).all():
        note = "; ".join(filter(None, [note, "non-finite pixels: the random weights overflowed"]))

    # CUDA runs asynchronously: without a sync the clock would stop before the GPU finishes.
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()  # steady state: autotuning during warm-up allocates extra
    seconds = []
    for _ in range(args.repeats):
        sync()
        start = time.perf_counter()
        render(args.steps)
        sync()
        seconds.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return Result(config, statistics.median(seconds), peak, note)


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    eager = next((r.seconds for r in results if r.config == "eager" and r.seconds), None)
    gpu = torch.cuda.get_device_name() if args.device.type == "cuda" else "CPU (--tiny, scaled-down models)"
    print(f"\nGPU: {gpu} | torch {torch.__version__} | diffusers {diffusers.__version__}")
    print(f"{args.size}x{args.size}, {args.steps} steps, guidance {GUIDANCE}, median of {args.repeats} timed runs")
    print(f"Reference, {REFERENCE}\n")
    print("| configuration | s/image (median) | speed-up vs eager | peak GiB |")
    print("|---|---:|---:|---:|")
    for r in results:
        secs = f"{r.seconds:.2f}" if r.seconds else "-"
        speedup = f"{eager / r.seconds:.2f}x" if eager and r.seconds else "-"
        peak = f"{r.peak_gib:.1f}" if r.peak_gib is not None else "-"
        print(f"| {CONFIGS[r.config]} | {secs} | {speedup} | {peak} |")
    for r in results:
        if r.note:
            print(f"- {CONFIGS[r.config]}: {r.note}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="denoising steps (default 28; 2 with --tiny)")
    parser.add_argument("--size", type=int, help="image side in pixels (default 1024; 64 with --tiny)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per configuration (default 3)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of: " + ",".join(CONFIGS))
    parser.add_argument("--tiny", action="store_true", help="scaled-down models on the CPU: a smoke test, not a benchmark")
    args = parser.parse_args()
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if unknown := sorted(set(args.configs) - set(CONFIGS)):
        parser.error(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    args.steps = args.steps or (2 if args.tiny else 28)
    args.size = args.size or (64 if args.tiny else 1024)
    return args


def main() -> None:
    args = parse_args()
    if not args.tiny and not torch.cuda.is_available():
        sys.exit("gpu_flux: no CUDA device found; this benchmark needs a GPU (use --tiny for a CPU smoke test)")
    args.device = torch.device("cpu" if args.tiny else "cuda")
    spec = TINY if args.tiny else REAL
    if not args.tiny and {"compile", "fp8"} & set(args.configs):
        import torch._inductor.config as inductor

        # The inductor settings behind the diffusers-torchao and flux-fast figures.
        inductor.conv_1x1_as_mm = True
        inductor.coordinate_descent_tuning = True
        inductor.coordinate_descent_check_all_directions = True
        inductor.epilogue_fusion = False

    args.embeds = encode_prompt(spec, args.device)
    gc.collect()  # the text encoders (T5-XXL alone is 9.5 GB) are not part of what is measured
    with _building(args.device):
        vae = _randomize(AutoencoderKL(**spec.vae), seed=4)
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096
    )  # FLUX.1-dev's scheduler config

    results = []
    for config in args.configs:
        if reason := skip_reason(config, args.tiny):
            results.append(Result(config, note=reason))
            continue
        print(f"{CONFIGS[config]}: building, warming up, timing {args.repeats} runs...", flush=True)
        try:
            results.append(measure(config, spec, {"vae": vae, "scheduler": scheduler}, args))
        except Exception as error:  # an OOM or torchao/inductor failure should not cost the rows already measured
            results.append(Result(config, note=f"failed: {type(error).__name__}: {error}".splitlines()[0][:300]))
        # Each configuration builds its own transformer; free the last one and its compiled graphs first.
        gc.collect()
        torch._dynamo.reset()
        if args.device.type == "cuda":
            torch.cuda.empty_cache()
    print_table(results, args)


if __name__ == "__main__":
    main()
