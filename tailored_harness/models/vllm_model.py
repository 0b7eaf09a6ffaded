"""``tailored_llama`` for vLLM: vLLM's own LLaMA with each decoder layer built at its own width.

Imported by vLLM only, through the model registry entry that :func:`tailored_harness.models.vllm_plugin.register`
adds, so this module may import vLLM at the top. The weights, their names and the forward pass are
vLLM's ``LlamaForCausalLM``; a layer only sees a copy of the config whose ``num_attention_heads``,
``num_key_value_heads`` and ``intermediate_size`` are that layer's (``head_dim`` is explicit in every
``tailored_llama`` config, so the head size never changes). vLLM sizes each layer's KV cache from its
attention module, so layers with fewer KV heads hold less cache.
"""

from __future__ import annotations

import copy

from vllm.model_executor.models.llama import LlamaDecoderLayer, LlamaForCausalLM
from vllm.model_executor.models.utils import extract_layer_index


def layer_config(config, index: int):
    """A shallow copy of ``config`` with layer ``index``'s widths as the top-level ones."""
    out = copy.copy(config)
    out.num_attention_heads = config.layer_num_attention_heads[index]
    out.num_key_value_heads = config.layer_num_key_value_heads[index]
    out.intermediate_size = config.layer_intermediate_sizes[index]
    return out


class TailoredLlamaDecoderLayer(LlamaDecoderLayer):
    """vLLM's LLaMA decoder layer at the widths ``config.layer_*[index]`` give it."""

    def __init__(self, vllm_config, prefix: str = "", config=None, **kwargs) -> None:
        config = config or vllm_config.model_config.hf_config
        super().__init__(vllm_config=vllm_config, prefix=prefix,
                         config=layer_config(config, extract_layer_index(prefix)), **kwargs)


class TailoredLlamaForCausalLM(LlamaForCausalLM):
    """vLLM's ``LlamaForCausalLM`` with per-layer widths."""

    def __init__(self, *, vllm_config, prefix: str = "", layer_type=TailoredLlamaDecoderLayer) -> None:
        super().__init__(vllm_config=vllm_config, prefix=prefix, layer_type=layer_type)
