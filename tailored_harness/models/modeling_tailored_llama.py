"""``tailored_llama``: a LLaMA whose decoder layers may differ in width.

Structured pruning (``tailored_harness.prune``) removes whole KV groups (or query heads within them)
and MLP channels per layer, so one layer may keep 24 heads and another 32, or keep 24 heads of 128 dimensions next to a hidden
size of 4096, which ``LlamaConfig`` rejects (the hidden size must be a multiple of the head count).
This model type records the per-layer widths in ``config.json`` as plain lists::

    layer_num_attention_heads   [h_0, ..., h_{L-1}]   query heads per layer
    layer_num_key_value_heads   [k_0, ..., k_{L-1}]   KV heads per layer (k_i divides h_i)
    layer_intermediate_sizes    [m_0, ..., m_{L-1}]   MLP channels per layer

Everything else (weight names, rotary embedding, norms, ``head_dim``) is LLaMA's, so the module
tree and the state-dict keys are exactly ``LlamaForCausalLM``'s and only the tensor shapes differ.
Top-level ``num_attention_heads``, ``num_key_value_heads`` and ``intermediate_size`` hold the widest
layer's values.

This file imports nothing from ``tailored_harness``: pruned checkpoints ship a copy of it with an
``auto_map``, so ``AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)`` loads them
where the plugin is not installed. Where it is installed, the plugin registers the type with the
Auto classes and no remote code is needed.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

MODEL_TYPE = "tailored_llama"
LAYER_FIELDS = ("layer_num_attention_heads", "layer_num_key_value_heads", "layer_intermediate_sizes")


@strict
class TailoredLlamaConfig(LlamaConfig):
    """``LlamaConfig`` plus per-layer head, KV-head and MLP widths (lists of ``num_hidden_layers`` ints).

    A list left out means every layer has the top-level value. ``head_dim`` is always explicit.
    """

    model_type = MODEL_TYPE

    layer_num_attention_heads: list[int] | None = None
    layer_num_key_value_heads: list[int] | None = None
    layer_intermediate_sizes: list[int] | None = None

    def __post_init__(self, **kwargs):
        if self.head_dim is None:
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
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Per-layer lists match the layer count; every layer's KV heads are shared by as many query
        heads each (the group may differ between layers: query heads pruned within their groups)."""
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


def resize_layer(layer: nn.Module, config: TailoredLlamaConfig, index: int) -> None:
    """Give decoder layer ``index`` its own widths: fresh projections of the recorded shapes.

    q/k/v: (heads_i * head_dim or kv_i * head_dim, hidden); o: (hidden, heads_i * head_dim);
    gate/up: (m_i, hidden); down: (hidden, m_i). LLaMA's attention reshapes with ``-1`` heads; the
    only width it keeps is ``num_key_value_groups`` (query heads per KV head, which ``repeat_kv``
    reads), set here to the layer's own.
    """
    hidden, head_dim = config.hidden_size, config.head_dim
    heads = config.layer_num_attention_heads[index]
    kv = config.layer_num_key_value_heads[index]
    inter = config.layer_intermediate_sizes[index]
    attn, mlp = layer.self_attn, layer.mlp
    bias, mlp_bias = config.attention_bias, config.mlp_bias
    attn.q_proj = nn.Linear(hidden, heads * head_dim, bias=bias)
    attn.k_proj = nn.Linear(hidden, kv * head_dim, bias=bias)
    attn.v_proj = nn.Linear(hidden, kv * head_dim, bias=bias)
    attn.o_proj = nn.Linear(heads * head_dim, hidden, bias=bias)
    attn.num_key_value_groups = heads // kv
    mlp.gate_proj = nn.Linear(hidden, inter, bias=mlp_bias)
    mlp.up_proj = nn.Linear(hidden, inter, bias=mlp_bias)
    mlp.down_proj = nn.Linear(inter, hidden, bias=mlp_bias)
    mlp.intermediate_size = inter


class TailoredLlamaForCausalLM(LlamaForCausalLM):
    """``LlamaForCausalLM`` whose layers take their widths from :class:`TailoredLlamaConfig`."""

    config_class = TailoredLlamaConfig

    def __init__(self, config: TailoredLlamaConfig):
        super().__init__(config)
        for index, layer in enumerate(self.model.layers):
            resize_layer(layer, config, index)
        self.post_init()  # initialise the new projections like the rest


def register() -> None:
    """Make the Auto classes know ``tailored_llama`` (idempotent)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        AutoConfig.register(MODEL_TYPE, TailoredLlamaConfig)
    except ValueError:  # already registered (by this process or another copy of this file)
        pass
    try:
        AutoModelForCausalLM.register(TailoredLlamaConfig, TailoredLlamaForCausalLM)
    except ValueError:
        pass
