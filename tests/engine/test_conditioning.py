"""A re-run of the same source and prompt at another strength or seed encodes nothing again."""

import pytest

from engine import preprocess
from engine.conditioning import ConditioningCache
from engine.types import GenerationRequest, Mode
from tests.engine.helpers import count_calls


def encoders(renderer, with_depth: bool = False):
    base = renderer.registry.base()
    prior = renderer.registry.prior_redux()
    modules = {"clip": base.text_encoder, "t5": base.text_encoder_2, "redux": prior.image_encoder}
    if with_depth:
        modules["depth"] = renderer.registry.depth_estimator()[0]
    return modules


@pytest.fixture
def canny_calls(monkeypatch):
    calls = []
    real = preprocess.canny_edges
    monkeypatch.setattr(preprocess, "canny_edges", lambda image, *a, **k: calls.append(1) or real(image, *a, **k))
    return calls


@pytest.mark.parametrize("mode", [Mode.REDUX, Mode.CANNY, Mode.DEPTH, Mode.KONTEXT])
def test_strength_rerun_runs_no_encoder_and_no_preprocessing(fresh_renderer, photo, portrait, mode, canny_calls):
    renderer = fresh_renderer
    style = {"style": portrait} if mode in (Mode.CANNY, Mode.DEPTH) else {}
    first = GenerationRequest(image=photo, prompt="a cup of tea", mode=mode, strength=0.5, seed=1, **style)
    with count_calls(**encoders(renderer, with_depth=True)) as calls:
        renderer.render(first)
    assert calls["t5"] == 1 and calls["clip"] == 1  # the first run does encode
    assert calls["redux"] == (1 if mode is Mode.REDUX or style else 0)
    assert calls["depth"] == (1 if mode is Mode.DEPTH else 0)
    assert len(canny_calls) == (1 if mode is Mode.CANNY else 0)

    transformer = renderer.registry.transformer(renderer.model_key(first))
    canny_calls.clear()
    with count_calls(transformer=transformer, **encoders(renderer, with_depth=True)) as calls:
        for strength, seed in [(0.7, 1), (0.3, 2), (0.9, 3)]:
            again = GenerationRequest(image=photo, prompt="a cup of tea", mode=mode, strength=strength, seed=seed, **style)
            renderer.render(again)
    assert calls["transformer"] > 0
    assert {k: v for k, v in calls.items() if k != "transformer"} == dict.fromkeys(("clip", "t5", "redux", "depth"), 0)
    assert canny_calls == []


def test_a_new_prompt_encodes_again(fresh_renderer, photo):
    renderer = fresh_renderer
    renderer.render(GenerationRequest(image=photo, prompt="tea", mode=Mode.CANNY, seed=1))
    with count_calls(**encoders(renderer)) as calls:
        renderer.render(GenerationRequest(image=photo, prompt="coffee", mode=Mode.CANNY, seed=1))
    assert calls["t5"] == 1


def test_cache_is_bounded_lru():
    cache = ConditioningCache(max_entries=2)
    made = []
    for key in ["a", "b", "a", "c", "b"]:
        cache.get(key, lambda key=key: made.append(key) or key)
    assert made == ["a", "b", "c", "b"]  # "b" was evicted by "c" ("a" was used more recently)
    assert len(cache) == 2
    assert (cache.hits, cache.misses) == (1, 4)


def test_cache_size_must_be_positive():
    with pytest.raises(ValueError, match="max_entries must be at least 1"):
        ConditioningCache(0)
