"""vLLM plugin (entry point group ``vllm.general_plugins``): teaches vLLM the ``tailored_<family>`` types.

vLLM calls :func:`register` in every process it starts, before it loads a model. It makes
transformers' ``AutoConfig`` know every ``tailored_<family>`` type (so no remote code is needed) and
maps the architecture names that pruned checkpoints with per-layer widths carry
(``TailoredLlamaForCausalLM``, ``TailoredGemma3ForCausalLM``, ...) onto the per-layer classes of
:mod:`tailored_harness.models.vllm_model`, by lazy ``module:Class`` strings, so nothing heavy is
imported until such a model is loaded.
"""

from __future__ import annotations

MODULE = "tailored_harness.models.vllm_model"


def architectures() -> list[str]:
    """The architecture names vLLM learns: one per family that :mod:`.vllm_model` builds."""
    from tailored_harness.models.modeling_tailored import MODELS
    from tailored_harness.models.vllm_model import FAMILIES

    return [MODELS[family].__name__ for family in FAMILIES]


def register() -> None:
    from vllm import ModelRegistry

    from tailored_harness.models import modeling_tailored

    modeling_tailored.register()
    supported = ModelRegistry.get_supported_archs()
    for name in architectures():
        if name not in supported:
            ModelRegistry.register_model(name, f"{MODULE}:{name}")
