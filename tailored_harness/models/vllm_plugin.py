"""vLLM plugin (entry point group ``vllm.general_plugins``): teaches vLLM the ``tailored_llama`` type.

vLLM calls :func:`register` in every process it starts, before it loads a model. It makes
transformers' ``AutoConfig`` know ``tailored_llama`` (so no remote code is needed) and maps the
architecture name that pruned checkpoints with per-layer widths carry onto
:class:`tailored_harness.models.vllm_model.TailoredLlamaForCausalLM`, by a lazy ``module:Class`` string,
so nothing heavy is imported until such a model is loaded.
"""

from __future__ import annotations

ARCHITECTURE = "TailoredLlamaForCausalLM"


def register() -> None:
    from vllm import ModelRegistry

    from tailored_harness.models import modeling_tailored

    modeling_tailored.register()
    if ARCHITECTURE not in ModelRegistry.get_supported_archs():
        ModelRegistry.register_model(ARCHITECTURE, "tailored_harness.models.vllm_model:TailoredLlamaForCausalLM")
