"""LLaMA's coupled weight groups, as explicit tables, and the pure plan -> weights step.

A pruning *unit* is the smallest piece that can be removed while the layer still computes a
function of the same form:

* attention, ``attention_unit=kv_group``: one KV group, i.e. one KV head plus the ``group = heads /
  kv_heads`` query heads that read it. Members: ``group * head_dim`` rows of q_proj, ``head_dim``
  rows of k_proj and v_proj, and the ``group * head_dim`` columns of o_proj that read those query heads.
* attention, ``attention_unit=query_head``: one query head. Members: ``head_dim`` rows of q_proj and
  the ``head_dim`` columns of o_proj that read it; every KV head stays. Query head ``h`` reads KV
  head ``h // group`` (transformers' ``repeat_kv`` layout), so a layer keeps the same number of query
  heads in each of its groups (:func:`arrange` gives the scores that shape) and stays a plain
  grouped-query layer of a smaller group.
* MLP: one channel. Members: a row of gate_proj and of up_proj and a column of down_proj.

The group may differ between layers once query heads are pruned, so :meth:`Geometry.at` reads it
from each layer's own weights.

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
    width: str  # "query": group * head_dim, "kv" and "head": head_dim, "channel": 1


ATTENTION = "attention"  # KV groups
QUERY = "query"  # query heads within their KV groups
MLP = "mlp"
MEMBERS: dict[str, tuple[Member, ...]] = {
    ATTENTION: (
        Member("self_attn.q_proj", ROWS, "query"),
        Member("self_attn.k_proj", ROWS, "kv"),
        Member("self_attn.v_proj", ROWS, "kv"),
        Member("self_attn.o_proj", COLS, "query"),
    ),
    QUERY: (
        Member("self_attn.q_proj", ROWS, "head"),
        Member("self_attn.o_proj", COLS, "head"),
    ),
    MLP: (
        Member("mlp.gate_proj", ROWS, "channel"),
        Member("mlp.up_proj", ROWS, "channel"),
        Member("mlp.down_proj", COLS, "channel"),
    ),
}


#: ``attention_unit`` -> the unit kind attention is pruned in
ATTENTION_UNITS = {"kv_group": ATTENTION, "query_head": QUERY}


@dataclasses.dataclass(frozen=True)
class Geometry:
    """What the unit widths depend on: ``head_dim`` and query heads per KV head (``group``: the
    config's, or one layer's by :meth:`at`)."""

    head_dim: int
    group: int

    @classmethod
    def of(cls, config) -> "Geometry":
        heads, kv = config.num_attention_heads, config.num_key_value_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(head_dim=head_dim, group=heads // kv)

    def at(self, layer) -> "Geometry":
        """This geometry with decoder ``layer``'s own group, read from its q_proj and k_proj widths."""
        attn = layer.self_attn
        return dataclasses.replace(self, group=attn.q_proj.out_features // attn.k_proj.out_features)

    def width(self, name: str) -> int:
        return {"query": self.group * self.head_dim, "kv": self.head_dim, "head": self.head_dim, "channel": 1}[name]


def layer_units(layer, geometry: Geometry) -> dict[str, int]:
    """Current unit counts of a decoder layer: ``{attention: kv groups, query: query heads, mlp: channels}``."""
    return {
        ATTENTION: layer.self_attn.k_proj.out_features // geometry.head_dim,
        QUERY: layer.self_attn.q_proj.out_features // geometry.head_dim,
        MLP: layer.mlp.gate_proj.out_features,
    }


def arrange(kind: str, layer, geometry: Geometry, scores: "torch.Tensor") -> "torch.Tensor":
    """Per-unit scores in the shape selection reads: query heads (heads,) -> (kv groups, group), one
    row per KV group, so every group keeps the same number; other kinds stay (units,)."""
    if kind != QUERY:
        return scores
    return scores.reshape(layer_units(layer, geometry)[ATTENTION], -1)


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
    """Cut decoder ``layer`` down to the ``kept`` unit indices (sorted, per unit kind), in place.

    Kept query heads must be as many in every KV group (:func:`arrange`); the attention module's
    ``num_key_value_groups``, which ``repeat_kv`` reads, becomes the new group.
    """
    geometry = geometry.at(layer)
    for kind, units in kept.items():
        for member in MEMBERS[kind]:
            slice_linear(submodule(layer, member.module), member.axis, expand(units, geometry.width(member.width)))
    if MLP in kept and hasattr(layer.mlp, "intermediate_size"):
        layer.mlp.intermediate_size = int(kept[MLP].numel())
    attn = layer.self_attn
    heads, kv = attn.q_proj.out_features // geometry.head_dim, attn.k_proj.out_features // geometry.head_dim
    if heads % kv:
        raise ValueError(f"{heads} query heads cannot share {kv} KV heads evenly; keep as many heads in every group")
    if hasattr(attn, "num_key_value_groups"):
        attn.num_key_value_groups = heads // kv


def mask_layer(layer, geometry: Geometry, kept: dict[str, "torch.Tensor"]) -> None:
    """Zero the o_proj / down_proj columns of every unit *not* in ``kept``; shapes stay dense.

    The masked dense model computes what the pruned one does: a removed KV group or channel then
    contributes nothing to the residual stream. Used by tests as the reference for the pruned model.
    """
    import torch

    geometry = geometry.at(layer)
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
        units = layer_units(layer, geometry)
        layers.append({"parameters": sum(p.numel() for p in layer.parameters()), ATTENTION: units[ATTENTION],
                       MLP: units[MLP], "query_heads": units[QUERY]})
    return {"total": sum(p.numel() for p in model.parameters()), "layers": layers}
