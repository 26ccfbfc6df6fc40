"""Loading models once, sharing them between pipelines, and fitting them in memory.

The T5 and CLIP text encoders, their tokenizers, the VAE and the scheduler exist once, whichever
modes are loaded: every pipeline is made with `from_pipe` from one base pipeline holding them, so
only the transformer differs between modes. Transformers are the big parts (12 B parameters each
on FLUX.1); beyond the memory budget the least recently used one is evicted whole.

A registry is used from the worker thread only (torch work is never on the event loop);
`loaded()` may be read from any thread.

    >>> registry = ModelRegistry(EngineSettings(preset="tiny"))
    >>> pipe = registry.pipeline("control", "canny")   # FluxControlImg2ImgPipeline
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from typing import Any, Protocol

import torch
from diffusers import (
    AutoencoderKL,
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    FluxControlImg2ImgPipeline,
    FluxFillPipeline,
    FluxImg2ImgPipeline,
    FluxKontextInpaintPipeline,
    FluxKontextPipeline,
    FluxPipeline,
    FluxPriorReduxPipeline,
    FluxTransformer2DModel,
)
from diffusers.pipelines.flux.modeling_flux import ReduxImageEncoder

from engine import tiny
from engine.settings import EngineSettings

__all__ = ["PIPELINE_CLASSES", "ComponentSource", "HubSource", "ModelRegistry", "TinySource", "parameter_bytes"]

log = logging.getLogger(__name__)

#: Pipeline kinds the modes ask for.
PIPELINE_CLASSES: dict[str, type[DiffusionPipeline]] = {
    "img2img": FluxImg2ImgPipeline,
    "control": FluxControlImg2ImgPipeline,
    "fill": FluxFillPipeline,
    "kontext": FluxKontextPipeline,
    "kontext_inpaint": FluxKontextInpaintPipeline,
}
#: Transformer key -> the preset role whose repo holds it.
TRANSFORMER_ROLES = {
    "dev": "base",
    "schnell": "schnell",
    "canny": "canny",
    "depth": "depth",
    "fill": "fill",
    "kontext": "kontext",
}


class ComponentSource(Protocol):
    """Where components come from: the Hugging Face cache (`HubSource`) or code (`TinySource`)."""

    def text_encoders(self) -> tuple[Any, Any, Any, Any]: ...  # CLIP, its tokenizer, T5, its tokenizer
    def vae(self) -> AutoencoderKL: ...
    def scheduler(self, key: str) -> FlowMatchEulerDiscreteScheduler: ...
    def transformer(self, key: str) -> FluxTransformer2DModel: ...
    def redux(self) -> tuple[Any, Any, ReduxImageEncoder]: ...  # SigLIP, its processor, the projector
    def depth_estimator(self) -> tuple[Any, Any]: ...  # Depth Anything, its processor
    def control_lora(self, key: str) -> tuple[Any, dict[str, Any]]: ...  # load_lora_weights arguments


class HubSource:
    """Loads the preset's repos (or local folders standing in for them) with `from_pretrained`."""

    def __init__(self, settings: EngineSettings, dtype: torch.dtype) -> None:
        self.settings = settings
        self.dtype = dtype

    def _hub(self) -> dict[str, Any]:
        return {"token": self.settings.hf_token} if self.settings.hf_token else {}

    def _load(self, cls: Any, role: str, subfolder: str | None, *, weights: bool = True) -> Any:
        repo = self.settings.repo(role)
        kwargs: dict[str, Any] = {**self._hub()}
        if subfolder:
            kwargs["subfolder"] = subfolder
        if weights:
            kwargs["dtype"] = self.dtype
        log.info("loading %s from %s%s", cls.__name__, repo, f"/{subfolder}" if subfolder else "")
        return cls.from_pretrained(repo, **kwargs)

    def text_encoders(self) -> tuple[Any, Any, Any, Any]:
        from transformers import CLIPTextModel, CLIPTokenizer, T5EncoderModel, T5TokenizerFast

        return (
            self._load(CLIPTextModel, "base", "text_encoder"),
            self._load(CLIPTokenizer, "base", "tokenizer", weights=False),
            self._load(T5EncoderModel, "base", "text_encoder_2"),
            self._load(T5TokenizerFast, "base", "tokenizer_2", weights=False),
        )

    def vae(self) -> AutoencoderKL:
        return self._load(AutoencoderKL, "base", "vae")

    def scheduler(self, key: str) -> FlowMatchEulerDiscreteScheduler:
        return self._load(FlowMatchEulerDiscreteScheduler, TRANSFORMER_ROLES[key], "scheduler", weights=False)

    def transformer(self, key: str) -> FluxTransformer2DModel:
        return self._load(FluxTransformer2DModel, TRANSFORMER_ROLES[key], "transformer")

    def redux(self) -> tuple[Any, Any, ReduxImageEncoder]:
        from transformers import AutoImageProcessor, SiglipVisionModel

        return (
            self._load(SiglipVisionModel, "redux", "image_encoder"),
            self._load(AutoImageProcessor, "redux", "feature_extractor", weights=False),
            self._load(ReduxImageEncoder, "redux", "image_embedder"),
        )

    def depth_estimator(self) -> tuple[Any, Any]:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        return (
            self._load(AutoModelForDepthEstimation, "depth_estimator", None),
            self._load(AutoImageProcessor, "depth_estimator", None, weights=False),
        )

    def control_lora(self, key: str) -> tuple[Any, dict[str, Any]]:
        return self.settings.repo(f"{key}_lora"), {"weight_name": self.settings.preset_info.lora_files[key], **self._hub()}


class TinySource:
    """Builds every component in code (`engine/tiny.py`): no files, no network."""

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        self.dtype = dtype

    def text_encoders(self) -> tuple[Any, Any, Any, Any]:
        clip, clip_tokenizer = tiny.build_clip()
        t5, t5_tokenizer = tiny.build_t5()
        return clip.to(self.dtype), clip_tokenizer, t5.to(self.dtype), t5_tokenizer

    def vae(self) -> AutoencoderKL:
        return tiny.build_vae().to(self.dtype)

    def scheduler(self, key: str) -> FlowMatchEulerDiscreteScheduler:
        return tiny.build_scheduler(key)

    def transformer(self, key: str) -> FluxTransformer2DModel:
        return tiny.build_transformer(key).to(self.dtype)

    def redux(self) -> tuple[Any, Any, ReduxImageEncoder]:
        encoder, processor, embedder = tiny.build_redux()
        return encoder.to(self.dtype), processor, embedder.to(self.dtype)

    def depth_estimator(self) -> tuple[Any, Any]:
        model, processor = tiny.build_depth_estimator()
        return model.to(self.dtype), processor

    def control_lora(self, key: str) -> tuple[Any, dict[str, Any]]:
        return {k: v.to(self.dtype) for k, v in tiny.build_control_lora(key).items()}, {}


class _EmptyFp32ListFilter(logging.Filter):
    """Drops diffusers' warning about keeping an *empty* list of modules in float32 on `.to(dtype)`:
    from_pipe casts (to the dtype the modules already have) on every pipeline it makes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "should be kept in float32: []" not in record.getMessage()


_FP32_FILTER = _EmptyFp32ListFilter()


def parameter_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class ModelRegistry:
    """Loads components on first use, shares them, and evicts transformers beyond the budget."""

    def __init__(self, settings: EngineSettings, source: ComponentSource | None = None) -> None:
        self.settings = settings
        logging.getLogger("diffusers.models.modeling_utils").addFilter(_FP32_FILTER)  # idempotent
        self.device = resolve_device(settings.device)
        self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        if source is None:
            source = TinySource(self.dtype) if settings.preset_info.built_in_code else HubSource(settings, self.dtype)
        self.source = source
        self._base: FluxPipeline | None = None
        self._schedulers: dict[str, FlowMatchEulerDiscreteScheduler] = {}
        self._transformers: OrderedDict[str, FluxTransformer2DModel] = OrderedDict()
        self._pipes: dict[tuple[str, str], DiffusionPipeline] = {}
        self._prior: FluxPriorReduxPipeline | None = None
        self._depth: tuple[Any, Any] | None = None
        self._lora: str | None = None  # control LoRA now loaded on the dev transformer
        self._active: DiffusionPipeline | None = None  # the pipeline holding the offload hooks
        self._loaded_lock = threading.Lock()
        self._loaded: frozenset[str] = frozenset()
        self.evictions: list[str] = []

    # --- what is loaded -------------------------------------------------------------------------

    def loaded(self) -> frozenset[str]:
        """Model keys ready to run without loading: transformer keys, `dev+canny` for a LoRA."""
        with self._loaded_lock:
            return self._loaded

    def _update_loaded(self) -> None:
        keys = set(self._transformers)
        if self._lora and "dev" in keys:
            keys.discard("dev")
            keys.add(f"dev+{self._lora}")
        with self._loaded_lock:
            self._loaded = frozenset(keys)

    def pipelines(self) -> list[DiffusionPipeline]:
        """Every pipeline made so far (the Redux prior included)."""
        return list(self._pipes.values()) + ([self._prior] if self._prior is not None else [])

    def unique_parameter_bytes(self) -> int:
        """Bytes of parameters in memory, each shared tensor counted once."""
        seen: dict[int, int] = {}
        for pipe in self.pipelines():
            for module in pipe.components.values():
                if isinstance(module, torch.nn.Module):
                    for p in module.parameters():
                        seen[p.data_ptr()] = p.numel() * p.element_size()
        return sum(seen.values())

    def summed_parameter_bytes(self) -> int:
        """Bytes of parameters summed over pipelines, as if none shared anything."""
        return sum(
            parameter_bytes(m)
            for pipe in self.pipelines()
            for m in pipe.components.values()
            if isinstance(m, torch.nn.Module)
        )

    # --- shared parts ---------------------------------------------------------------------------

    def base(self) -> FluxPipeline:
        """A FluxPipeline holding the shared text encoders, tokenizers, VAE and dev scheduler."""
        if self._base is None:
            clip, clip_tokenizer, t5, t5_tokenizer = self.source.text_encoders()
            vae = self.source.vae()
            for module in (clip, t5, vae):
                module.eval().requires_grad_(False)
                if not self.settings.offload:
                    module.to(self.device)
            self._base = FluxPipeline(
                scheduler=self.scheduler("dev"),
                vae=vae,
                text_encoder=clip,
                tokenizer=clip_tokenizer,
                text_encoder_2=t5,
                tokenizer_2=t5_tokenizer,
                transformer=None,
            )
        return self._base

    def scheduler(self, key: str) -> FlowMatchEulerDiscreteScheduler:
        """One scheduler per configuration: dev's (dynamic shift) or schnell's."""
        config_key = "schnell" if key == "schnell" else "dev"
        if config_key not in self._schedulers:
            self._schedulers[config_key] = self.source.scheduler(config_key)
        return self._schedulers[config_key]

    def prior_redux(self) -> FluxPriorReduxPipeline:
        """FLUX.1-Redux's image encoder, sharing the text encoders (callers pass prompt embeddings)."""
        if self._prior is None:
            base = self.base()
            encoder, processor, embedder = self.source.redux()
            for module in (encoder, embedder):
                module.eval().requires_grad_(False).to(self.device)
            self._prior = FluxPriorReduxPipeline(
                image_encoder=encoder,
                feature_extractor=processor,
                image_embedder=embedder,
                text_encoder=base.text_encoder,
                tokenizer=base.tokenizer,
                text_encoder_2=base.text_encoder_2,
                tokenizer_2=base.tokenizer_2,
            )
            self._prior.set_progress_bar_config(disable=True)
        return self._prior

    def depth_estimator(self) -> tuple[Any, Any]:
        if self._depth is None:
            model, processor = self.source.depth_estimator()
            model.eval().requires_grad_(False).to(self.device)
            self._depth = (model, processor)
        return self._depth

    # --- transformers and pipelines -------------------------------------------------------------

    def transformer(self, key: str) -> FluxTransformer2DModel:
        """The transformer for `key`, loading it (and evicting others past the budget) if needed."""
        if key in self._transformers:
            self._transformers.move_to_end(key)
            return self._transformers[key]
        model = self.source.transformer(key)
        model.eval().requires_grad_(False)
        self._make_room(parameter_bytes(model))
        if not self.settings.offload:
            model.to(self.device)
        if self.settings.compile and self.device.type == "cuda":
            model.compile(mode="max-autotune-no-cudagraphs")
        self._transformers[key] = model
        self._update_loaded()
        return model

    def _make_room(self, incoming: int) -> None:
        if self.settings.memory_budget_gb is None:
            return
        budget = self.settings.memory_budget_gb * 1e9
        while self._transformers and sum(map(parameter_bytes, self._transformers.values())) + incoming > budget:
            self.evict(next(iter(self._transformers)))

    def evict(self, key: str) -> None:
        """Drop transformer `key` and every pipeline using it."""
        self._transformers.pop(key, None)
        for pipe_key in [k for k in self._pipes if k[1] == key]:
            pipe = self._pipes.pop(pipe_key)
            if pipe is self._active:
                self._active = None
        if key == "dev":
            self._lora = None
        self.evictions.append(key)
        self._update_loaded()
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        log.info("evicted the %s transformer to stay within %.1f GB", key, self.settings.memory_budget_gb or 0)

    def pipeline(self, kind: str, key: str, *, lora: str | None = None) -> DiffusionPipeline:
        """The `kind` pipeline (see PIPELINE_CLASSES) on transformer `key`, ready to run.

        :param lora: a control LoRA (canny or depth) to have loaded on the dev transformer; any
            other LoRA is unloaded first, restoring the transformer's own weights and shape
        """
        transformer = self.transformer(key)
        pipe = self._pipes.get((kind, key))
        if pipe is None:
            pipe = PIPELINE_CLASSES[kind].from_pipe(
                self.base(), transformer=transformer, scheduler=self.scheduler(key), dtype=self.dtype
            )
            pipe.set_progress_bar_config(disable=True)
            self._pipes[(kind, key)] = pipe
        if key == "dev":
            self._set_lora(pipe, lora)
        self._activate(pipe)
        return pipe

    def _set_lora(self, pipe: DiffusionPipeline, wanted: str | None) -> None:
        # A LoRA on the shared dev transformer changes it for every pipeline using it.
        if self._lora == wanted:
            return
        if self._lora is not None:
            pipe.unload_lora_weights(reset_to_overwritten_params=True)
            self._lora = None
        if wanted is not None:
            weights, kwargs = self.source.control_lora(wanted)
            pipe.load_lora_weights(weights, adapter_name=wanted, **kwargs)
            self._lora = wanted
        self._update_loaded()

    def _activate(self, pipe: DiffusionPipeline) -> None:
        # Offload hooks live on the shared modules, so only one pipeline may hold them at a time.
        if not self.settings.offload or pipe is self._active:
            return
        if self._active is not None:
            self._active.remove_all_hooks()
        pipe.enable_model_cpu_offload(device=self.device)
        self._active = pipe
