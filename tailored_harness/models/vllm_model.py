"""``tailored_<family>`` for vLLM: vLLM's own model of the family with each decoder layer built at its
own width.

Loaded by vLLM through the model registry entries that :func:`tailored_harness.models.vllm_plugin.register`
adds; vLLM's modules are imported only when a class is built, so the plugin reads :data:`FAMILIES`
for free. The weights, their names and the forward pass are
vLLM's; a layer only sees a copy of the config whose ``num_attention_heads``, ``num_key_value_heads``
and ``intermediate_size`` are that layer's (``head_dim`` is explicit in every ``tailored_<family>``
config, so the head size never changes). vLLM sizes each layer's KV cache from its attention module,
so layers with fewer KV heads hold less cache.

How the per-layer class reaches vLLM's model differs by family and is the table :data:`FAMILIES`:
LLaMA, Mistral and Phi-3 take a ``layer_type``; Qwen2 and Qwen3 build their decoder layers in a model
class that takes a ``decoder_layer_type`` (Qwen2's as an argument, Qwen3's as a class attribute); Gemma 3 names its decoder layer class where it builds the
layers, so that name is pointed at the per-layer class while the model is built.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import importlib

PACKAGE = "vllm.model_executor.models"


def layer_config(config, index: int):
    """A shallow copy of ``config`` with layer ``index``'s widths as the top-level ones."""
    out = copy.copy(config)
    out.num_attention_heads = config.layer_num_attention_heads[index]
    out.num_key_value_heads = config.layer_num_key_value_heads[index]
    out.intermediate_size = config.layer_intermediate_sizes[index]
    return out


def per_layer(base: type) -> type:
    """``base`` (a vLLM decoder layer class) built at the widths its layer index gives: the config
    comes as ``config=``, as the first argument, or (LLaMA's layers) from ``vllm_config``."""

    from vllm.model_executor.models.utils import extract_layer_index

    def __init__(self, *args, **kwargs):
        index = extract_layer_index(kwargs.get("prefix", ""))
        if kwargs.get("config") is not None:
            kwargs["config"] = layer_config(kwargs["config"], index)
        elif args and hasattr(args[0], "layer_num_attention_heads"):
            args = (layer_config(args[0], index), *args[1:])
        else:
            vllm_config = kwargs["vllm_config"] if "vllm_config" in kwargs else args[0]
            kwargs["config"] = layer_config(vllm_config.model_config.hf_config, index)
        base.__init__(self, *args, **kwargs)

    return type(f"Tailored{base.__name__}", (base,), {"__init__": __init__, "__module__": __name__})


@contextlib.contextmanager
def _pointed(module, name: str, value):
    """``module.name`` is ``value`` inside the block (vLLM looks the name up when it builds layers)."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


@dataclasses.dataclass(frozen=True)
class VllmFamily:
    """Where a family lives in vLLM: ``module`` (under ``vllm.model_executor.models``), its causal-LM
    class, its decoder layer class (``layer_module`` when that is another module's), and ``how``
    the per-layer class gets in: ``layer_type`` (an argument of the causal-LM class),
    ``model_argument`` or ``model_attribute`` (``decoder_layer_type``, an argument or a class
    attribute of the class named ``model_class`` that the causal LM builds), or ``name`` (the layer
    class's name in ``module``, pointed at the per-layer class)."""

    module: str
    causal_lm: str
    layer: str
    how: str
    layer_module: str | None = None
    model_class: str | None = None
    head_dim_from_hidden: bool = False  # vLLM's attention takes head_dim as hidden / heads (Qwen2's)


FAMILIES = {
    "llama": VllmFamily("llama", "LlamaForCausalLM", "LlamaDecoderLayer", "layer_type"),
    "mistral": VllmFamily("mistral", "MistralForCausalLM", "MistralDecoderLayer", "layer_type"),
    "phi3": VllmFamily("phi3", "Phi3ForCausalLM", "LlamaDecoderLayer", "layer_type", layer_module="llama"),
    "qwen2": VllmFamily("qwen2", "Qwen2ForCausalLM", "Qwen2DecoderLayer", "model_argument", model_class="Qwen2Model",
                        head_dim_from_hidden=True),
    "qwen3": VllmFamily("qwen3", "Qwen3ForCausalLM", "Qwen3DecoderLayer", "model_attribute", model_class="Qwen3Model"),
    "gemma3_text": VllmFamily("gemma3", "Gemma3ForCausalLM", "Gemma3DecoderLayer", "name"),
}


def refusal(config, pruned: bool = False) -> str | None:
    """Why vLLM cannot score a model of ``config`` (a config object or the dict of its
    ``config.json``), or ``None``. ``pruned``: attention will be pruned before scoring. Only a family
    whose vLLM attention derives ``head_dim`` from hidden / heads is refused, where pruning changes the
    head count: vLLM would build every head at the wrong size."""
    from tailored_harness.models.families import family_name

    get = config.get if isinstance(config, dict) else lambda key, default=None: getattr(config, key, default)
    family = family_name(get("model_type") or "")
    if family not in FAMILIES or not FAMILIES[family].head_dim_from_hidden:
        return None
    hidden, heads = get("hidden_size"), get("layer_num_attention_heads") or [get("num_attention_heads")]
    head_dim = get("head_dim") or hidden // heads[0]
    if not pruned and all(h * head_dim == hidden for h in heads):
        return None
    return (f"backend=vllm cannot score a {family} model with pruned attention heads: vLLM's {family} takes head_dim "
            f"as hidden_size / heads, so it would build every head at the wrong size; use backend=hf")


def causal_lm_class(family: str) -> type:
    """vLLM's causal LM of ``family`` whose decoder layers take per-layer widths."""
    entry = FAMILIES[family]
    module = importlib.import_module(f"{PACKAGE}.{entry.module}")
    base = getattr(module, entry.causal_lm)
    layer = per_layer(getattr(importlib.import_module(f"{PACKAGE}.{entry.layer_module or entry.module}"), entry.layer))

    def __init__(self, *, vllm_config, prefix: str = "", **kwargs):
        if entry.how == "layer_type":
            base.__init__(self, vllm_config=vllm_config, prefix=prefix, layer_type=layer)
            return
        if entry.how in ("model_argument", "model_attribute"):
            model = getattr(module, entry.model_class)
            built = (functools.partial(model, decoder_layer_type=layer) if entry.how == "model_argument"
                     else type(model.__name__, (model,), {"decoder_layer_type": layer, "__module__": __name__}))
            with _pointed(module, entry.model_class, built):
                base.__init__(self, vllm_config=vllm_config, prefix=prefix)
            return
        with _pointed(module, entry.layer, layer):
            base.__init__(self, vllm_config=vllm_config, prefix=prefix)

    return type(f"Tailored{entry.causal_lm}", (base,), {"__init__": __init__, "__module__": __name__})


def __getattr__(name: str):
    """``TailoredXForCausalLM``, built on first access: vLLM imports only the family it loads."""
    from tailored_harness.models.modeling_tailored import MODELS

    for family, cls in MODELS.items():
        if cls.__name__ == name and family in FAMILIES:
            built = causal_lm_class(family)
            globals()[name] = built
            return built
    raise AttributeError(name)
