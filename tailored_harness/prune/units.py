"""LLaMA's coupled weight groups, as explicit tables, and the pure plan -> weights step.

A pruning *unit* is the smallest piece that can be removed while the layer still computes a
function of the same form:

* attention: one KV group, i.e. one KV head plus the ``group = heads / kv_heads`` query heads that
  read it. Members: ``group * head_dim`` rows of q_proj, ``head_dim`` rows of k_proj and v_proj,
  and the ``group * head_dim`` columns of o_proj that read those query heads.
* MLP: one channel. Members: a row of gate_proj and of up_proj and a column of down_proj.

The hidden size is never pruned, so embeddings, norms and the LM head are untouched. No graph
tracing: the tables below are the whole of what couples the weights.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

ROWS, COLS = 0, 1  # the weight axis a unit owns: output rows or input columns of an nn.Linear


@dataclasses.dataclass(frozen=True)
class Member:
    """One weight of a unit kind: ``module`` (path inside a decoder layer), the ``axis`` it is cut
    along, and ``width``, the name of how many rows/columns one unit owns there."""

    module: str
    axis: int
    width: str  # "query": group * head_dim, "kv": head_dim, "channel": 1


ATTENTION = "attention"
MLP = "mlp"
MEMBERS: dict[str, tuple[Member, ...]] = {
    ATTENTION: (
        Member("self_attn.q_proj", ROWS, "query"),
        Member("self_attn.k_proj", ROWS, "kv"),
        Member("self_attn.v_proj", ROWS, "kv"),
        Member("self_attn.o_proj", COLS, "query"),
    ),
    MLP: (
        Member("mlp.gate_proj", ROWS, "channel"),
        Member("mlp.up_proj", ROWS, "channel"),
        Member("mlp.down_proj", COLS, "channel"),
    ),
}


@dataclasses.dataclass(frozen=True)
class Geometry:
    """What the unit widths depend on: ``head_dim`` and query heads per KV head (constant across layers)."""

    head_dim: int
    group: int

    @classmethod
    def of(cls, config) -> "Geometry":
        heads, kv = config.num_attention_heads, config.num_key_value_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(head_dim=head_dim, group=heads // kv)

    def width(self, name: str) -> int:
        return {"query": self.group * self.head_dim, "kv": self.head_dim, "channel": 1}[name]


def layer_units(layer, geometry: Geometry) -> dict[str, int]:
    """Current unit counts of a decoder layer: ``{attention: kv groups, mlp: channels}``."""
    return {
        ATTENTION: layer.self_attn.k_proj.out_features // geometry.head_dim,
        MLP: layer.mlp.gate_proj.out_features,
    }


def submodule(layer, path: str):
    module = layer
    for part in path.split("."):
        module = getattr(module, part)
    return module


def expand(units: "torch.Tensor", width: int) -> "torch.Tensor":
    """Unit indices (k,) -> the rows/columns they own (k * width,), in unit order."""
    import torch

    return (units[:, None] * width + torch.arange(width, device=units.device)[None, :]).reshape(-1)


def reduce_to_units(per_index: "torch.Tensor", width: int) -> "torch.Tensor":
    """Per-row (or per-column) values (units * width,) -> per-unit sums (units,)."""
    return per_index.reshape(-1, width).sum(dim=1)


def slice_linear(linear, axis: int, index: "torch.Tensor") -> None:
    """Keep only ``index`` along ``axis`` of ``linear`` (rows also cut the bias), in place.

    Works on the meta device too, which is how the 7B parameter counts are checked without weights.
    """
    import torch

    weight = linear.weight.data
    kept = weight.index_select(axis, index.to(weight.device))
    linear.weight = torch.nn.Parameter(kept, requires_grad=linear.weight.requires_grad)
    if axis == ROWS:
        if linear.bias is not None:
            linear.bias = torch.nn.Parameter(linear.bias.data.index_select(0, index.to(weight.device)),
                                             requires_grad=linear.bias.requires_grad)
        linear.out_features = kept.shape[0]
    else:
        linear.in_features = kept.shape[1]


def apply_layer(layer, geometry: Geometry, kept: dict[str, "torch.Tensor"]) -> None:
    """Cut decoder ``layer`` down to the ``kept`` unit indices (sorted, per unit kind), in place."""
    for kind, units in kept.items():
        for member in MEMBERS[kind]:
            slice_linear(submodule(layer, member.module), member.axis, expand(units, geometry.width(member.width)))
    if MLP in kept and hasattr(layer.mlp, "intermediate_size"):
        layer.mlp.intermediate_size = int(kept[MLP].numel())


def mask_layer(layer, geometry: Geometry, kept: dict[str, "torch.Tensor"]) -> None:
    """Zero the o_proj / down_proj columns of every unit *not* in ``kept``; shapes stay dense.

    The masked dense model computes what the pruned one does: a removed KV group or channel then
    contributes nothing to the residual stream. Used by tests as the reference for the pruned model.
    """
    import torch

    units = layer_units(layer, geometry)
    for kind, keep in kept.items():
        dropped = torch.ones(units[kind], dtype=torch.bool)
        dropped[keep] = False
        out_member = next(m for m in MEMBERS[kind] if m.axis == COLS)
        columns = expand(torch.nonzero(dropped).flatten(), geometry.width(out_member.width))
        with torch.no_grad():
            submodule(layer, out_member.module).weight[:, columns] = 0


def parameter_counts(model) -> dict[str, object]:
    """Total parameters and, per decoder layer, its parameters and unit counts."""
    geometry = Geometry.of(model.config)
    layers = []
    for layer in model.model.layers:
        layers.append({"parameters": sum(p.numel() for p in layer.parameters()), **layer_units(layer, geometry)})
    return {"total": sum(p.numel() for p in model.parameters()), "layers": layers}
