"""``tailored_<family>``: a decoder of a supported family whose layers may differ in width.

Structured pruning (``tailored_harness.prune``) removes whole KV groups (or query heads within them)
and MLP channels per layer, so one layer may keep 24 heads and another 32, or keep 24 heads of 128
dimensions next to a hidden size of 4096, which the stock configs reject (the hidden size must be a
multiple of the head count) or cannot express (one width for every layer). Each model type here is
its family's own config and model plus the per-layer widths, recorded in ``config.json`` as plain lists::

    layer_num_attention_heads   [h_0, ..., h_{L-1}]   query heads per layer
    layer_num_key_value_heads   [k_0, ..., k_{L-1}]   KV heads per layer (k_i divides h_i)
    layer_intermediate_sizes    [m_0, ..., m_{L-1}]   MLP channels per layer

Everything else (weight names, rotary embedding, norms, ``head_dim``) is the family's, so the module
tree and the state-dict keys are exactly the stock model's and only the tensor shapes differ. The
top-level ``num_attention_heads``, ``num_key_value_heads`` and ``intermediate_size`` hold the widest
layer's values; ``head_dim`` is always explicit.

:data:`FAMILIES` is the whole of what differs between families here: the stock classes, which
projections a layer has (separate q/k/v and gate/up, or Phi-3's fused ``qkv_proj`` and
``gate_up_proj``) and whether attention reads its head count from the config in ``forward`` (Phi-3
does, to split ``qkv_proj``; it then gets a per-layer view of the config).

This file imports nothing from ``tailored_harness``: pruned checkpoints ship a copy of it with an
``auto_map``, so ``AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)`` loads them
where the plugin is not installed. Where it is installed, the plugin registers the types with the
Auto classes and no remote code is needed.
"""

from __future__ import annotations

import dataclasses

from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import (Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Phi3Config, Phi3ForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

PREFIX = "tailored_"
LAYER_FIELDS = ("layer_num_attention_heads", "layer_num_key_value_heads", "layer_intermediate_sizes")

#: projection (path in a decoder layer) -> (output size, input size), named by what they count:
#: ``q`` heads * head_dim, ``kv`` KV heads * head_dim, ``qkv`` both fused (q, then k, then v),
#: ``m`` MLP channels, ``2m`` gate and up fused (gate, then up), ``h`` the hidden size.
SEPARATE = {"self_attn.q_proj": ("q", "h"), "self_attn.k_proj": ("kv", "h"), "self_attn.v_proj": ("kv", "h"),
            "self_attn.o_proj": ("h", "q"), "mlp.gate_proj": ("m", "h"), "mlp.up_proj": ("m", "h"),
            "mlp.down_proj": ("h", "m")}
FUSED = {"self_attn.qkv_proj": ("qkv", "h"), "self_attn.o_proj": ("h", "q"), "mlp.gate_up_proj": ("2m", "h"),
         "mlp.down_proj": ("h", "m")}
LAYOUTS = {"separate": SEPARATE, "fused": FUSED}


@dataclasses.dataclass(frozen=True)
class Family:
    """One supported architecture: its stock config and model, its projections (:data:`SEPARATE` or
    :data:`FUSED`) and whether its attention reads the head count from the config in ``forward``."""

    name: str  # the stock ``model_type``
    config: type
    model: type
    layout: str  # "separate" or "fused": the keys of :data:`LAYOUTS`
    config_heads: bool = False

    @property
    def projections(self) -> dict:
        return LAYOUTS[self.layout]

    @property
    def model_type(self) -> str:
        return PREFIX + self.name


FAMILIES = {f.name: f for f in (
    Family("llama", LlamaConfig, LlamaForCausalLM, "separate"),
    Family("mistral", MistralConfig, MistralForCausalLM, "separate"),
    Family("qwen2", Qwen2Config, Qwen2ForCausalLM, "separate"),
    Family("qwen3", Qwen3Config, Qwen3ForCausalLM, "separate"),
    Family("gemma3_text", Gemma3TextConfig, Gemma3ForCausalLM, "separate"),
    Family("phi3", Phi3Config, Phi3ForCausalLM, "fused", config_heads=True),
)}


def _fill_widths(self) -> None:
    """Default ``head_dim`` and every per-layer list left out (each layer at the top-level width)."""
    if getattr(self, "head_dim", None) is None:
        self.head_dim = self.hidden_size // self.num_attention_heads
    if self.num_key_value_heads is None:
        self.num_key_value_heads = self.num_attention_heads
    layers = self.num_hidden_layers
    if self.layer_num_attention_heads is None:
        self.layer_num_attention_heads = [self.num_attention_heads] * layers
    if self.layer_num_key_value_heads is None:
        self.layer_num_key_value_heads = [self.num_key_value_heads] * layers
    if self.layer_intermediate_sizes is None:
        self.layer_intermediate_sizes = [self.intermediate_size] * layers


def validate_widths(self) -> None:
    """Per-layer lists match the layer count; every layer's KV heads are shared by as many query heads
    each (the group may differ between layers: query heads pruned within their groups). Replaces the
    stock check that the hidden size is a multiple of the head count, which per-layer widths break."""
    layers = self.num_hidden_layers
    for name in LAYER_FIELDS:
        values = getattr(self, name)
        if len(values) != layers or any(int(v) < 1 for v in values):
            raise ValueError(f"{name}={values} must list {layers} positive widths, one per layer")
    if self.num_attention_heads % self.num_key_value_heads:
        raise ValueError(f"num_attention_heads={self.num_attention_heads} is not a multiple of "
                         f"num_key_value_heads={self.num_key_value_heads}")
    for i, (heads, kv) in enumerate(zip(self.layer_num_attention_heads, self.layer_num_key_value_heads)):
        if heads % kv:
            raise ValueError(f"layer {i}: {heads} query heads cannot share {kv} KV heads evenly")


def _config_class(family: Family) -> type:
    """``family.config`` plus the per-layer widths (and ``head_dim`` where the stock config has none)."""
    base = family.config
    fields = {name: list[int] | None for name in LAYER_FIELDS}
    if "head_dim" not in base.__dataclass_fields__:
        fields["head_dim"] = int | None

    def __post_init__(self, **kwargs):
        _fill_widths(self)
        base.__post_init__(self, **kwargs)

    namespace = {"__annotations__": fields, "__module__": __name__, "__doc__": f"{base.__name__} with per-layer widths.",
                 "model_type": family.model_type, "__post_init__": __post_init__,
                 "validate_architecture": validate_widths, **{name: None for name in fields}}
    return strict(type(f"Tailored{base.__name__}", (base,), namespace))


class LayerConfig:
    """One layer's view of a shared config: its own head counts, everything else read through (so a
    later change to the shared config, such as the attention implementation, is seen)."""

    def __init__(self, shared, **own):
        object.__setattr__(self, "_shared", shared)
        object.__setattr__(self, "_own", own)

    def __getattr__(self, name):
        own = object.__getattribute__(self, "_own")
        return own[name] if name in own else getattr(object.__getattribute__(self, "_shared"), name)


def _sizes(config, heads: int, kv: int, inter: int) -> dict[str, int]:
    d = config.head_dim
    return {"q": heads * d, "kv": kv * d, "qkv": (heads + 2 * kv) * d, "m": inter, "2m": 2 * inter,
            "h": config.hidden_size}


def resize_layer(layer: nn.Module, config, family: Family, index: int) -> None:
    """Give decoder layer ``index`` its own widths: fresh projections of the recorded shapes (each
    keeps its bias if it had one), and the attention's head bookkeeping set to the layer's own
    (``num_key_value_groups``, which ``repeat_kv`` reads; the KV head count and, where ``forward``
    reads it from the config, a :class:`LayerConfig`)."""
    heads = config.layer_num_attention_heads[index]
    kv = config.layer_num_key_value_heads[index]
    inter = config.layer_intermediate_sizes[index]
    sizes = _sizes(config, heads, kv, inter)
    for path, (rows, cols) in family.projections.items():
        owner_path, _, name = path.rpartition(".")
        owner = layer.get_submodule(owner_path)
        old = getattr(owner, name)
        setattr(owner, name, nn.Linear(sizes[cols], sizes[rows], bias=old.bias is not None))
    set_attention_widths(layer.self_attn, family, heads, kv)
    if hasattr(layer.mlp, "intermediate_size"):
        layer.mlp.intermediate_size = inter


def set_attention_widths(attn: nn.Module, family: Family, heads: int, kv: int) -> None:
    """The attention module's own record of its widths, after its projections changed size."""
    if hasattr(attn, "num_key_value_groups"):
        attn.num_key_value_groups = heads // kv
    if hasattr(attn, "num_key_value_heads"):
        attn.num_key_value_heads = kv
    if family.config_heads:
        shared = attn.config._shared if isinstance(attn.config, LayerConfig) else attn.config
        attn.config = LayerConfig(shared, num_attention_heads=heads, num_key_value_heads=kv)


def _model_class(family: Family, config_class: type) -> type:
    def __init__(self, config):
        family.model.__init__(self, config)
        for index, layer in enumerate(self.model.layers):
            resize_layer(layer, config, family, index)
        self.post_init()  # initialise the new projections like the rest

    name = family.model.__name__.replace("ForCausalLM", "")
    return type(f"Tailored{name}ForCausalLM", (family.model,), {
        "__module__": __name__, "__doc__": f"{family.model.__name__} whose layers take their widths from the config.",
        "config_class": config_class, "__init__": __init__})


CONFIGS = {name: _config_class(family) for name, family in FAMILIES.items()}
MODELS = {name: _model_class(family, CONFIGS[name]) for name, family in FAMILIES.items()}
globals().update({cls.__name__: cls for cls in (*CONFIGS.values(), *MODELS.values())})  # auto_map names them
MODEL_TYPES = {family.model_type: name for name, family in FAMILIES.items()}


def auto_map(family_name: str) -> dict[str, str]:
    """The ``auto_map`` of a checkpoint of this family that ships this file."""
    module = __name__.rpartition(".")[2]
    return {"AutoConfig": f"{module}.{CONFIGS[family_name].__name__}",
            "AutoModelForCausalLM": f"{module}.{MODELS[family_name].__name__}"}


def register() -> None:
    """Make the Auto classes know every ``tailored_<family>`` type (idempotent)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    for name in FAMILIES:
        try:
            AutoConfig.register(FAMILIES[name].model_type, CONFIGS[name])
        except ValueError:  # already registered (by this process or another copy of this file)
            pass
        try:
            AutoModelForCausalLM.register(CONFIGS[name], MODELS[name])
        except ValueError:
            pass
