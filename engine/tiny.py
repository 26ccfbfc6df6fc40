"""The `tiny` preset: every FLUX component built in code with seeded random weights.

No files and no network: tests and CI run every mode end to end on a CPU in seconds. The shapes
follow the real FLUX.1 family scaled down, keeping the relations between components that the
pipelines depend on (one VAE for all modes, so one set of shared modules):

    latent channels C = 4, VAE scale factor s = 2
    base / kontext transformer   in = 4C            out = 4C
    control (canny, depth)       in = 8C            out = 4C
    fill                         in = 8C + 4*s*s    out = 4C

Each builder seeds its own RNG (without touching the global one), so two processes build
bit-identical weights and the same job renders the same pixels.
"""

from __future__ import annotations

import string
from typing import Any

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
from diffusers.pipelines.flux.modeling_flux import ReduxImageEncoder
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    DepthAnythingConfig,
    DepthAnythingForDepthEstimation,
    Dinov2Config,
    SiglipVisionConfig,
    SiglipVisionModel,
    T5Config,
    T5EncoderModel,
    T5TokenizerFast,
)
from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

__all__ = [
    "LATENT_CHANNELS",
    "TEXT_DIM",
    "build_clip",
    "build_control_lora",
    "build_depth_estimator",
    "build_redux",
    "build_scheduler",
    "build_t5",
    "build_transformer",
    "build_vae",
]

LATENT_CHANNELS = 4
VAE_SCALE = 2
TEXT_DIM = 32  # T5 hidden size = transformer joint_attention_dim = Redux txt_in_features
POOLED_DIM = 32  # CLIP projection = transformer pooled_projection_dim
LORA_RANK = 4

# Input channels of each transformer, as in the real family (64 / 128 / 384 there).
TRANSFORMER_IN_CHANNELS = {
    "dev": 4 * LATENT_CHANNELS,
    "schnell": 4 * LATENT_CHANNELS,
    "kontext": 4 * LATENT_CHANNELS,
    "canny": 8 * LATENT_CHANNELS,
    "depth": 8 * LATENT_CHANNELS,
    "fill": 8 * LATENT_CHANNELS + 4 * VAE_SCALE * VAE_SCALE,
}
# Every key but this one has a distinct seed, so the transformers differ as the real ones do.
_SEEDS = {"dev": 1, "schnell": 2, "kontext": 3, "canny": 4, "depth": 5, "fill": 6}


def _build(seed: int, make: Any) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def build_transformer(key: str) -> FluxTransformer2DModel:
    """A tiny FluxTransformer2DModel for `key` (dev, schnell, kontext, canny, depth or fill)."""
    return _build(
        100 + _SEEDS[key],
        lambda: FluxTransformer2DModel(
            patch_size=1,
            in_channels=TRANSFORMER_IN_CHANNELS[key],
            out_channels=4 * LATENT_CHANNELS,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=TEXT_DIM,
            pooled_projection_dim=POOLED_DIM,
            guidance_embeds=key != "schnell",
            axes_dims_rope=(4, 4, 8),
        ),
    )


def build_vae() -> AutoencoderKL:
    return _build(
        200,
        lambda: AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * VAE_SCALE,
            up_block_types=("UpDecoderBlock2D",) * VAE_SCALE,
            block_out_channels=(8, 16),
            layers_per_block=1,
            latent_channels=LATENT_CHANNELS,
            norm_num_groups=4,
            use_quant_conv=False,
            use_post_quant_conv=False,
            shift_factor=0.0609,
            scaling_factor=1.5035,
        ),
    )


def build_scheduler(key: str = "dev") -> FlowMatchEulerDiscreteScheduler:
    """The scheduler configurations of FLUX.1-dev (dynamic shift) and FLUX.1-schnell (none)."""
    if key == "schnell":
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False)
    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )


def _clip_vocab() -> dict[str, int]:
    # With no merges, BPE splits each word into characters, the last one suffixed with </w>.
    chars = string.ascii_letters + string.digits + string.punctuation
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    return vocab


def build_clip() -> tuple[CLIPTextModel, CLIPTokenizer]:
    vocab = _clip_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=POOLED_DIM,
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    return _build(300, lambda: CLIPTextModel(config)), tokenizer


def build_t5() -> tuple[T5EncoderModel, T5TokenizerFast]:
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)]
    pieces += [(ch, -2.0) for ch in string.ascii_letters + string.digits + string.punctuation]
    pieces += [("▁" + ch, -1.5) for ch in string.ascii_letters]
    tokenizer = T5TokenizerFast(vocab=pieces, extra_ids=0)
    config = T5Config(
        vocab_size=len(pieces),
        d_model=TEXT_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    return _build(400, lambda: T5EncoderModel(config)), tokenizer


def build_redux() -> tuple[SiglipVisionModel, SiglipImageProcessorPil, ReduxImageEncoder]:
    """SigLIP vision tower, its processor, and the Redux projector into the T5 space."""
    config = SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
    )
    encoder = _build(500, lambda: SiglipVisionModel(config))
    processor = SiglipImageProcessorPil(size={"height": 32, "width": 32})
    embedder = _build(501, lambda: ReduxImageEncoder(redux_dim=32, txt_in_features=TEXT_DIM))
    return encoder, processor, embedder


def build_depth_estimator() -> tuple[DepthAnythingForDepthEstimation, DPTImageProcessorPil]:
    """Depth Anything with a tiny Dinov2 backbone, and its processor (inputs of 28x28)."""
    backbone = Dinov2Config(
        image_size=28,
        patch_size=2,
        hidden_size=16,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=32,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        patch_size=2,
        reassemble_hidden_size=16,
        neck_hidden_sizes=[8, 8, 8, 8],
        fusion_hidden_size=8,
        head_hidden_size=8,
    )
    model = _build(600, lambda: DepthAnythingForDepthEstimation(config))
    processor = DPTImageProcessorPil(
        size={"height": 28, "width": 28}, keep_aspect_ratio=True, ensure_multiple_of=2, do_pad=False
    )
    return model, processor


def build_control_lora(key: str) -> dict[str, torch.Tensor]:
    """A control LoRA (canny or depth) for the tiny dev transformer, in the diffusers key format.

    Like FLUX.1-Canny-dev-lora it widens `x_embedder` to take the control latents and adds low-rank
    updates to the attention projections.
    """
    inner = 2 * 16
    base_in = TRANSFORMER_IN_CHANNELS["dev"]

    def make() -> dict[str, torch.Tensor]:
        sd = {
            "transformer.x_embedder.lora_A.weight": torch.randn(LORA_RANK, 2 * base_in) * 0.1,
            "transformer.x_embedder.lora_B.weight": torch.randn(inner, LORA_RANK) * 0.1,
        }
        for name in ("to_q", "to_k", "to_v"):
            sd[f"transformer.transformer_blocks.0.attn.{name}.lora_A.weight"] = torch.randn(LORA_RANK, inner) * 0.1
            sd[f"transformer.transformer_blocks.0.attn.{name}.lora_B.weight"] = torch.randn(inner, LORA_RANK) * 0.1
        return sd

    return _build(700 + _SEEDS[key], make)
