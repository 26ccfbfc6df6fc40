"""Conditioning, computed once per content: re-running a source and prompt at another strength or
seed runs no text encoder, no Redux encoder and no Canny or depth preprocessing again.

Entries are keyed by content hashes (of the decoded pixels and the prompt text) and bounded
by a least-recently-used count.

    >>> cond = Conditioner(registry, ConditioningCache(max_entries=64))
    >>> embeds, pooled = cond.prompt(pipe, "a red fox", max_sequence_length=512)
    >>> edges = cond.canny(photo)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import torch
from PIL import Image

from engine import preprocess
from engine.images import image_digest
from engine.models import ModelRegistry

__all__ = ["Conditioner", "ConditioningCache"]

T = TypeVar("T")


class ConditioningCache:
    """A bounded LRU map from content keys to conditioning (tensors or images)."""

    def __init__(self, max_entries: int = 64) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries!r}")
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The entry for `key`, made by `make()` on a miss."""
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            return self._entries[key]
        self.misses += 1
        value = make()
        self._entries[key] = value
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()


class Conditioner:
    """Prompt embeddings, Redux embeddings and control maps, each through the cache."""

    def __init__(self, registry: ModelRegistry, cache: ConditioningCache) -> None:
        self.registry = registry
        self.cache = cache

    @torch.inference_mode()
    def prompt(self, pipe: Any, prompt: str, max_sequence_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """T5 sequence embeddings and CLIP pooled embeddings of `prompt`."""

        def encode() -> tuple[torch.Tensor, torch.Tensor]:
            embeds, pooled, _ = pipe.encode_prompt(
                # The registry's device, not pipe._execution_device, which walks every module on each call.
                prompt=prompt,
                prompt_2=None,
                device=self.registry.device,
                max_sequence_length=max_sequence_length,
            )
            return embeds, pooled

        return self.cache.get(("prompt", prompt, max_sequence_length), encode)

    @torch.inference_mode()
    def redux(self, image: Image.Image, prompt: str, max_sequence_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """FLUX.1-Redux embeddings of `image` appended to those of `prompt` (the prompt may be empty)."""

        def encode() -> tuple[torch.Tensor, torch.Tensor]:
            prior = self.registry.prior_redux()
            embeds, pooled = self.prompt(prior, prompt, max_sequence_length)
            out = prior(image=image, prompt_embeds=embeds, pooled_prompt_embeds=pooled)
            return out.prompt_embeds, out.pooled_prompt_embeds

        return self.cache.get(("redux", image_digest(image), prompt, max_sequence_length), encode)

    def canny(self, image: Image.Image) -> Image.Image:
        return self.cache.get(("canny", image_digest(image)), lambda: preprocess.canny_edges(image))

    def depth(self, image: Image.Image) -> Image.Image:
        def estimate() -> Image.Image:
            model, processor = self.registry.depth_estimator()
            return preprocess.depth_map(model, processor, image)

        return self.cache.get(("depth", image_digest(image)), estimate)
