"""The pure core of pruning: ``plan = select(scores, spec)``, then ``apply(model, plan)``.

A :class:`PrunePlan` lists, per pruned layer, the sorted indices of the attention units (KV groups,
or query heads) and MLP channels that stay. It is plain data (saved as ``pruning.json`` beside the checkpoint), so a pruning can be
audited and replayed on the same base model without scoring again. :func:`finalize` then gives the
pruned model the class and config that describe its weights: the family's stock model where one can
hold them, else its ``tailored_<family>`` model with per-layer widths.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from tailored_harness.prune.ranking import RANKINGS, rows_of
from tailored_harness.prune.spec import PruneSpec
from tailored_harness.prune.units import ATTENTION, MLP, QUERY, Geometry, apply_layer, layer_units, mask_layer

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PrunePlan:
    """``kept[layer][kind]``: sorted unit indices that stay; ``units[layer][kind]``: counts before."""

    kept: dict[int, dict[str, list[int]]]
    units: dict[int, dict[str, int]]

    def to_dict(self) -> dict[str, Any]:
        return {"kept": {str(i): v for i, v in self.kept.items()}, "units": {str(i): v for i, v in self.units.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PrunePlan":
        return cls(kept={int(i): v for i, v in data["kept"].items()}, units={int(i): v for i, v in data["units"].items()})

    def tensors(self, layer: int) -> dict:
        import torch

        return {kind: torch.tensor(idx, dtype=torch.long) for kind, idx in self.kept[layer].items()}


def select(scores: dict, spec: PruneSpec) -> PrunePlan:
    """Keep the highest-scoring units of every scored layer; ties go to the lower index.

    ``scores[layer][kind]`` holds per-unit importance: (units,), or (groups, per group) for units that
    must stay as many in every group (query heads in their KV groups), where each row keeps its best
    and unit ``r * per_group + c`` is row ``r``'s ``c``-th. How many each layer keeps (per row for
    grouped kinds) is the spec's ranking's (:data:`RANKINGS`).
    """
    import torch

    counts = RANKINGS[spec.ranking].counts(scores, spec.ratio, spec.round_to)
    kept, units = {}, {}
    for layer, kinds in sorted(scores.items()):
        kept[layer], units[layer] = {}, {}
        for kind, values in kinds.items():
            rows = rows_of(values)
            width = rows.shape[1]
            order = torch.argsort(-rows, dim=1, stable=True)[:, :counts[layer][kind]]
            chosen = order + width * torch.arange(rows.shape[0])[:, None]
            kept[layer][kind] = sorted(int(i) for i in chosen.flatten())
            units[layer][kind] = int(values.numel())
    return PrunePlan(kept=kept, units=units)


def apply(model, plan: PrunePlan) -> None:
    """Cut the planned layers of a model of a supported family down to their kept units, in place."""
    geometry = Geometry.of(model.config)
    for layer, _ in sorted(plan.kept.items()):
        apply_layer(model.model.layers[layer], geometry, plan.tensors(layer))


def mask(model, plan: PrunePlan) -> None:
    """Zero what :func:`apply` would remove, keeping dense shapes (the reference the tests compare with)."""
    geometry = Geometry.of(model.config)
    for layer in sorted(plan.kept):
        mask_layer(model.model.layers[layer], geometry, plan.tensors(layer))


def layer_widths(model) -> dict[str, list[int]]:
    """Per-layer query heads, KV heads and MLP channels of a (possibly pruned) model, read from its weights."""
    geometry = Geometry.of(model.config)
    counts = [layer_units(layer, geometry) for layer in model.model.layers]
    return {
        "layer_num_attention_heads": [c[QUERY] for c in counts],
        "layer_num_key_value_heads": [c[ATTENTION] for c in counts],
        "layer_intermediate_sizes": [c[MLP] for c in counts],
    }


def fits_plain(config, widths: dict[str, list[int]], head_dim: int) -> bool:
    """The family's stock config can describe the weights: the widths are uniform, the head count
    divides the hidden size (which transformers 5 insists on for LLaMA and Gemma 3 even when
    ``head_dim`` is explicit: LLaMA-7B at 16 heads fits, at 24 it does not), and the config either
    has a ``head_dim`` field or derives the same one from hidden size and heads (Qwen2, Phi-3)."""
    heads = widths["layer_num_attention_heads"]
    uniform = all(len(set(values)) == 1 for values in widths.values())
    explicit = "head_dim" in getattr(type(config), "__dataclass_fields__", {})
    return uniform and config.hidden_size % heads[0] == 0 and (explicit or config.hidden_size // heads[0] == head_dim)


def finalize(model):
    """Return the pruned model with a class and config that describe its weights.

    Plain case: ``model`` itself, with ``num_attention_heads``, ``num_key_value_heads`` and
    ``intermediate_size`` updated. Otherwise the family's ``tailored_<family>`` model
    (:mod:`tailored_harness.models.modeling_tailored`) that takes over the very same tensors (no
    copy), with the per-layer widths in its config.
    """
    import torch

    from tailored_harness.models.families import family_of
    from tailored_harness.models.modeling_tailored import CONFIGS, MODELS

    config = model.config
    family = family_of(config)
    widths = layer_widths(model)
    head_dim = Geometry.of(config).head_dim
    if fits_plain(config, widths, head_dim):
        config.num_attention_heads = widths["layer_num_attention_heads"][0]
        config.num_key_value_heads = widths["layer_num_key_value_heads"][0]
        config.intermediate_size = widths["layer_intermediate_sizes"][0]
        if "head_dim" in getattr(type(config), "__dataclass_fields__", {}):
            config.head_dim = head_dim
        return model
    values = config.to_dict()
    for key in ("model_type", "architectures", "transformers_version", "auto_map", "_name_or_path"):
        values.pop(key, None)
    values.update(
        widths,
        head_dim=head_dim,
        num_attention_heads=max(widths["layer_num_attention_heads"]),
        num_key_value_heads=max(widths["layer_num_key_value_heads"]),
        intermediate_size=max(widths["layer_intermediate_sizes"]),
    )
    new_config = CONFIGS[family.name](**values)
    with torch.device("meta"):
        pruned = MODELS[family.name](new_config)
    pruned.load_state_dict(model.state_dict(), assign=True, strict=True)
    sources = dict(model.named_buffers())
    for name, buffer in list(pruned.named_buffers()):  # non-persistent buffers (rotary inv_freq) are not in the state dict
        if buffer.is_meta:
            owner, _, attr = name.rpartition(".")
            setattr(pruned.get_submodule(owner), attr, sources[name])
    pruned.to(dtype=next(model.parameters()).dtype)
    pruned.generation_config = model.generation_config
    pruned.train(model.training)
    # ``assign`` (and ``to``) leave the output layer a Parameter of its own even where it shares the
    # embedding's storage; re-tie, so a tied model stays one tensor (parameter counts, PEFT, saving).
    pruned.tie_weights()
    return pruned
