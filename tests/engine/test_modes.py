"""Every mode end to end through the real diffusers pipelines on the tiny preset."""

import pytest

from engine.errors import InputError
from engine.images import budget_size, fit_to_budget
from engine.plan import steps_for_strength
from engine.render import Renderer
from engine.types import GenerationRequest, Mode, Outpaint
from tests.engine.helpers import count_calls, mean_abs_diff

SIMPLE_MODES = [Mode.REDUX, Mode.CANNY, Mode.DEPTH, Mode.KONTEXT]


def request(image, mode=Mode.REDUX, **kwargs):
    kwargs.setdefault("prompt", "a cup of tea, watercolour")
    kwargs.setdefault("seed", 3)
    return GenerationRequest(image=image, mode=mode, **kwargs)


@pytest.mark.parametrize("mode", SIMPLE_MODES)
def test_mode_renders_at_the_working_size(renderer, photo, mode):
    result = renderer.render(request(photo, mode, strength=0.9))
    assert result.image.mode == "RGB"
    assert result.image.size == budget_size(*photo.size, renderer.settings.budget)
    assert result.steps == steps_for_strength(0.9, 8) == 8
    source = fit_to_budget(photo, renderer.settings.budget)
    assert mean_abs_diff(result.image, source) > 1.0  # the pipeline changed the pixels


def test_fill_inpaint_and_outpaint_render(renderer, photo):
    from PIL import Image

    mask = Image.new("L", photo.size, 0)
    mask.paste(255, (100, 50, 200, 150))
    inpainted = renderer.render(request(photo, Mode.FILL, mask=mask, strength=1.0))
    assert inpainted.image.size == budget_size(*photo.size, renderer.settings.budget)
    outpainted = renderer.render(request(photo, Mode.FILL, outpaint=Outpaint.parse("right=100"), strength=1.0))
    assert outpainted.image.size == budget_size(photo.width + 100, photo.height, renderer.settings.budget)


@pytest.mark.parametrize(
    ("strength", "steps", "expected"),
    [(1.0, 8, 8), (0.75, 8, 6), (0.5, 8, 4), (0.25, 8, 2), (0.1, 8, 1), (0.01, 28, 1), (0.3, 10, 3), (0.7, 10, 7)],
)
def test_strength_sets_the_number_of_denoising_steps_run(renderer, photo, strength, steps, expected):
    seen = []
    transformer = renderer.registry.transformer("canny")
    with count_calls(transformer=transformer) as calls:
        result = renderer.render(
            request(photo, Mode.CANNY, strength=strength, steps=steps), on_step=lambda k, n: seen.append((k, n))
        )
    assert calls["transformer"] == expected  # forward passes actually run
    assert seen == [(k, expected) for k in range(1, expected + 1)]
    assert result.steps == expected


@pytest.mark.parametrize("mode", [*SIMPLE_MODES, Mode.FILL])
def test_strength_zero_returns_the_source_untouched_without_loading_a_model(fresh_renderer, photo, mode):
    extra = {"outpaint": Outpaint.parse("right=64")} if mode is Mode.FILL else {}
    result = fresh_renderer.render(request(photo, mode, strength=0.0, **extra))
    assert result.steps == 0
    assert fresh_renderer.registry.loaded() == frozenset()
    assert fresh_renderer.registry.pipelines() == []
    if mode is not Mode.FILL:
        assert mean_abs_diff(result.image, fit_to_budget(photo, fresh_renderer.settings.budget)) == 0


def test_higher_strength_moves_further_from_the_source(renderer, photo):
    source = fit_to_budget(photo, renderer.settings.budget)
    low = renderer.render(request(photo, Mode.CANNY, strength=0.2))
    high = renderer.render(request(photo, Mode.CANNY, strength=1.0))
    assert mean_abs_diff(low.image, source) < mean_abs_diff(high.image, source)


def test_redux_fast_runs_on_schnell_in_four_steps_without_guidance(fresh_renderer, photo):
    result = fresh_renderer.render(request(photo, Mode.REDUX, fast=True, strength=1.0))
    assert result.steps == 4
    assert "schnell" in fresh_renderer.registry.loaded()
    assert "dev" not in fresh_renderer.registry.loaded()
    assert "FLUX.1-schnell" in result.model
    assert result.job["guidance"] == 0.0


@pytest.mark.parametrize("mode", [Mode.CANNY, Mode.DEPTH])
def test_style_image_gives_the_look_through_redux(fresh_renderer, photo, portrait, mode):
    renderer = fresh_renderer
    prior = renderer.registry.prior_redux()
    transformer = renderer.registry.transformer(mode.value)
    text_tokens = renderer.settings.preset_info.max_sequence_length
    seen = []
    hook = transformer.register_forward_pre_hook(
        lambda _m, _a, kw: seen.append(kw["encoder_hidden_states"].shape[1]), with_kwargs=True
    )
    try:
        plain = renderer.render(request(photo, mode, strength=0.8))
        with count_calls(image_encoder=prior.image_encoder) as calls:
            styled = renderer.render(request(photo, mode, strength=0.8, style=portrait))
    finally:
        hook.remove()
    assert calls["image_encoder"] == 1
    # The transformer saw the prompt's tokens alone, then the prompt's plus the style image's Redux tokens.
    assert set(seen[: plain.steps]) == {text_tokens}
    assert set(seen[plain.steps :]) == {text_tokens + (32 // 8) ** 2}
    assert mean_abs_diff(styled.image, plain.image) > 0
    assert styled.job["style"]["size"] == list(portrait.size)


def test_kontext_keeps_the_source_aspect(renderer):
    from PIL import Image

    wide = Image.new("RGB", (320, 120), "teal")
    for strength in (1.0, 0.6):
        result = renderer.render(request(wide, Mode.KONTEXT, prompt="make it red", strength=strength))
        assert result.image.size == budget_size(320, 120, renderer.settings.budget)
    kinds = {type(p).__name__ for p in renderer.registry.pipelines()}
    assert {"FluxKontextPipeline", "FluxKontextInpaintPipeline"} <= kinds


@pytest.mark.parametrize(
    ("mode", "kwargs", "message"),
    [
        (Mode.KONTEXT, {"prompt": "  "}, "kontext needs an instruction"),
        (Mode.CANNY, {"fast": True}, "fast works with the redux mode only"),
        (Mode.REDUX, {"style": "image"}, "a style image works with the canny or depth modes"),
        (Mode.REDUX, {"strength": 1.5}, "strength must be between 0 and 1, got 1.5"),
        (Mode.REDUX, {"strength": -0.1}, "strength must be between 0 and 1"),
        (Mode.REDUX, {"prompt": "x" * 1001}, "prompt is 1001 characters, over the 1000 limit"),
        (Mode.REDUX, {"steps": 0}, "steps must be between 1 and 100"),
        (Mode.REDUX, {"seed": -1}, "seed must be between 0"),
        (Mode.DEPTH, {"mask": "image"}, "depth takes no mask"),
    ],
)
def test_bad_requests_fail_with_a_clear_message(fresh_renderer, photo, mode, kwargs, message):
    kwargs = {k: (photo if v == "image" else v) for k, v in kwargs.items()}
    with pytest.raises(InputError, match=message):
        fresh_renderer.render(request(photo, mode, **kwargs))
    assert fresh_renderer.registry.loaded() == frozenset()


def test_unknown_mode_name():
    with pytest.raises(InputError, match="unknown mode 'sketch': choose one of redux, canny, depth, fill, kontext"):
        Mode.parse("sketch")


def test_renderer_with_a_budget_override(tiny_settings, photo):
    renderer = Renderer(tiny_settings.with_(pixel_budget=48 * 32))
    assert renderer.render(request(photo, Mode.CANNY)).image.size == (48, 32)
