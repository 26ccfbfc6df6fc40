"""Models: one set of shared modules, a memory budget with LRU eviction, LoRAs that come off cleanly,
and the real `from_pretrained` loading code, run on tiny components saved in the hub's layout."""

from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from engine import tiny
from engine.models import ModelRegistry, TinySource, parameter_bytes
from engine.render import Renderer
from engine.settings import EngineSettings
from engine.types import GenerationRequest, Mode, Outpaint
from tests.engine.helpers import max_abs_diff, mean_abs_diff

SHARED = ("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "vae")


def render_every_mode(renderer: Renderer, photo: Image.Image) -> None:
    for mode in Mode:
        extra = {"outpaint": Outpaint.parse("right=64")} if mode is Mode.FILL else {}
        renderer.render(GenerationRequest(image=photo, prompt="tea", mode=mode, seed=1, **extra))
    renderer.render(GenerationRequest(image=photo, prompt="tea", fast=True, seed=1))


def test_one_text_encoder_and_vae_for_every_pipeline(fresh_renderer, photo):
    render_every_mode(fresh_renderer, photo)
    registry = fresh_renderer.registry
    pipes = registry.pipelines()
    assert len(pipes) >= 7  # img2img x2, control x2, fill, kontext, prior
    base = registry.base()
    for pipe in pipes:
        for name in SHARED:
            if name in pipe.components:
                assert pipe.components[name] is getattr(base, name), (type(pipe).__name__, name)
    assert registry.unique_parameter_bytes() < 0.6 * registry.summed_parameter_bytes()


def test_from_pipe_keeps_bf16_shared_modules(tiny_settings, photo):
    # from_pipe without a dtype would cast the shared modules to float32.
    registry = ModelRegistry(tiny_settings, source=TinySource(torch.bfloat16))
    registry.dtype = torch.bfloat16
    Renderer(tiny_settings, registry=registry).render(
        GenerationRequest(image=photo, prompt="tea", mode=Mode.CANNY, seed=1, steps=2)
    )
    base = registry.base()
    assert base.text_encoder_2.dtype == torch.bfloat16
    assert base.vae.dtype == torch.bfloat16
    assert registry.transformer("canny").dtype == torch.bfloat16


def test_memory_budget_evicts_the_least_recently_used_transformer(tiny_settings, photo):
    one = parameter_bytes(tiny.build_transformer("canny"))
    settings = tiny_settings.with_(memory_budget_gb=1.5 * one / 1e9)
    renderer = Renderer(settings)

    def run(mode: Mode) -> None:
        renderer.render(GenerationRequest(image=photo, prompt="tea", mode=mode, seed=1, steps=2))

    run(Mode.CANNY)
    assert renderer.registry.loaded() == {"canny"}
    run(Mode.DEPTH)
    assert renderer.registry.loaded() == {"depth"}
    assert renderer.registry.evictions == ["canny"]
    run(Mode.CANNY)  # loads again, evicting depth
    assert renderer.registry.loaded() == {"canny"}
    assert renderer.registry.evictions == ["canny", "depth"]
    assert all(
        p.transformer is renderer.registry.transformer("canny")
        for p in renderer.registry.pipelines()
        if hasattr(p, "transformer")
    )


def test_lru_order_follows_use(tiny_settings, photo):
    one = parameter_bytes(tiny.build_transformer("canny"))
    renderer = Renderer(tiny_settings.with_(memory_budget_gb=2.5 * one / 1e9))
    for mode in (Mode.CANNY, Mode.DEPTH, Mode.CANNY, Mode.KONTEXT):
        renderer.render(GenerationRequest(image=photo, prompt="tea", mode=mode, seed=1, steps=2))
    assert renderer.registry.evictions == ["depth"]  # canny was used more recently
    assert renderer.registry.loaded() == {"canny", "kontext"}


def test_control_lora_loads_on_dev_and_comes_off_cleanly(tiny_settings, photo):
    lora = Renderer(tiny_settings.with_(control="lora"))
    plain = Renderer(tiny_settings)
    redux = GenerationRequest(image=photo, prompt="tea", mode=Mode.REDUX, seed=9, strength=0.8)
    canny = GenerationRequest(image=photo, prompt="tea", mode=Mode.CANNY, seed=9, strength=0.8)

    with_lora = lora.render(canny)
    assert lora.registry.loaded() == {"dev+canny"}
    assert "Canny-dev-lora" in with_lora.model
    dev = lora.registry.transformer("dev")
    assert dev.config.in_channels == 2 * tiny.TRANSFORMER_IN_CHANNELS["dev"]  # widened for the control latents

    after = lora.render(redux)  # plain dev again: the LoRA must be gone
    assert lora.registry.loaded() == {"dev"}
    assert dev.config.in_channels == tiny.TRANSFORMER_IN_CHANNELS["dev"]
    assert mean_abs_diff(after.image, plain.render(redux).image) == 0

    depth = lora.render(GenerationRequest(image=photo, prompt="tea", mode=Mode.DEPTH, seed=9))
    assert lora.registry.loaded() == {"dev+depth"}
    assert depth.image.size == with_lora.image.size


# --- the real loading code, on tiny components saved as the hub lays them out -------------------


def save_tiny_repos(root: Path) -> dict[str, str]:
    """Write every tiny component where `from_pretrained` looks for it in the FLUX repos."""
    clip, clip_tokenizer = tiny.build_clip()
    t5, t5_tokenizer = tiny.build_t5()
    base = root / "FLUX.1-dev"
    clip.save_pretrained(base / "text_encoder")
    clip_tokenizer.save_pretrained(base / "tokenizer")
    t5.save_pretrained(base / "text_encoder_2")
    t5_tokenizer.save_pretrained(base / "tokenizer_2")
    tiny.build_vae().save_pretrained(base / "vae")
    tiny.build_scheduler("dev").save_pretrained(base / "scheduler")
    tiny.build_transformer("dev").save_pretrained(base / "transformer")
    repos = {"base": str(base)}
    for key, name in [
        ("schnell", "FLUX.1-schnell"),
        ("canny", "FLUX.1-Canny-dev"),
        ("depth", "FLUX.1-Depth-dev"),
        ("fill", "FLUX.1-Fill-dev"),
        ("kontext", "FLUX.1-Kontext-dev"),
    ]:
        tiny.build_transformer(key).save_pretrained(root / name / "transformer")
        repos[key] = str(root / name)
    tiny.build_scheduler("schnell").save_pretrained(root / "FLUX.1-schnell" / "scheduler")
    for key in ("dev", "canny", "depth", "fill", "kontext"):
        if key != "dev":
            tiny.build_scheduler("dev").save_pretrained(root / repos[key] / "scheduler")
    encoder, processor, embedder = tiny.build_redux()
    redux = root / "FLUX.1-Redux-dev"
    encoder.save_pretrained(redux / "image_encoder")
    processor.save_pretrained(redux / "feature_extractor")
    embedder.save_pretrained(redux / "image_embedder")
    repos["redux"] = str(redux)
    model, depth_processor = tiny.build_depth_estimator()
    model.save_pretrained(root / "depth-anything")
    depth_processor.save_pretrained(root / "depth-anything")
    repos["depth_estimator"] = str(root / "depth-anything")
    for key in ("canny", "depth"):
        folder = root / f"FLUX.1-{key.capitalize()}-dev-lora"
        folder.mkdir()
        save_file(tiny.build_control_lora(key), folder / f"flux1-{key}-dev-lora.safetensors")
        repos[f"{key}_lora"] = str(folder)
    return repos


@pytest.fixture(scope="module")
def tiny_repos(tmp_path_factory) -> dict[str, str]:
    return save_tiny_repos(tmp_path_factory.mktemp("hub"))


@pytest.mark.parametrize("control", ["full", "lora"])
def test_flux_preset_loads_from_local_folders_and_matches_the_built_models(tiny_repos, photo, control):
    settings = EngineSettings(preset="flux", device="cpu", repos=tiny_repos, pixel_budget=96 * 96, control=control)
    from_files = Renderer(settings)
    in_code = Renderer(settings, registry=ModelRegistry(settings, source=TinySource()))
    assert type(from_files.registry.source).__name__ == "HubSource"
    for mode in Mode:
        extra = {"outpaint": Outpaint.parse("down=30%")} if mode is Mode.FILL else {}
        req = GenerationRequest(image=photo, prompt="a bowl of soup", mode=mode, seed=4, steps=3, strength=0.7, **extra)
        loaded, built = from_files.render(req), in_code.render(req)
        # Same weights; tensors laid out differently in memory may round a last bit differently.
        assert max_abs_diff(loaded.image, built.image) <= 1, mode
    fast = GenerationRequest(image=photo, prompt="soup", fast=True, seed=4)
    assert max_abs_diff(from_files.render(fast).image, in_code.render(fast).image) <= 1


def test_missing_repo_fails_with_the_repo_named(tmp_path, photo):
    settings = EngineSettings(preset="flux", device="cpu", repos={"base": str(tmp_path / "nowhere")})
    with pytest.raises(OSError, match="nowhere"):
        Renderer(settings).render(GenerationRequest(image=photo, prompt="x", seed=1, steps=1))
