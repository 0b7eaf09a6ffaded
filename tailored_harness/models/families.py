"""Which family a model belongs to, read from its config's ``model_type``, and the one-line refusal
for the rest.

The families themselves are the table :data:`tailored_harness.models.modeling_tailored.FAMILIES`
(stock classes, projection layout, quirks); pruning's coupled weight groups per layout are in
:mod:`tailored_harness.prune.units`. A stock model and its per-layer-width ``tailored_<family>``
variant are the same family.
"""

from __future__ import annotations

from tailored_harness.core.errors import TailoredError
from tailored_harness.models.modeling_tailored import FAMILIES, MODEL_TYPES, Family

#: what the refusal lists: the stock model types, in the table's order
SUPPORTED = tuple(FAMILIES)


def family_name(model_type: str) -> str | None:
    """The family of a config's ``model_type`` (stock or ``tailored_<family>``), or ``None``."""
    if model_type in FAMILIES:
        return model_type
    return MODEL_TYPES.get(model_type)


def family_of(config) -> Family:
    """The :class:`Family` of ``config``; an unknown architecture is refused in one line naming the supported ones."""
    model_type = getattr(config, "model_type", None)
    name = family_name(model_type or "")
    if name is None:
        raise TailoredError(f"model_type {model_type!r} is not a supported architecture; the plugin prunes and "
                            f"adapts these families: {', '.join(SUPPORTED)}")
    return FAMILIES[name]


#: layout -> the module that holds each of LLaMA's seven projections where it is not a module of its
#: own (Phi-3 fuses q, k and v into ``qkv_proj`` and gate and up into ``gate_up_proj``)
HOLDERS = {"separate": {}, "fused": {"q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj",
                                     "gate_proj": "gate_up_proj", "up_proj": "gate_up_proj"}}


def lora_modules(config, targets) -> list[str]:
    """The module names LoRA wraps in a model of ``config``'s family for ``targets``, given as
    LLaMA's projection names (an adapter spec's): a fused module is wrapped once, whole."""
    holders = HOLDERS[family_of(config).layout]
    return sorted({holders.get(target, target) for target in targets})
