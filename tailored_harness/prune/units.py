"""Each family's coupled weight groups, as explicit tables, and the pure plan -> weights step.

A pruning *unit* is the smallest piece that can be removed while the layer still computes a
function of the same form:

* attention, ``attention_unit=kv_group``: one KV group, i.e. one KV head plus the ``group = heads /
  kv_heads`` query heads that read it. Members: ``group * head_dim`` rows of q, ``head_dim`` rows
  of k and of v, and the ``group * head_dim`` columns of o_proj that read those query heads.
* attention, ``attention_unit=query_head``: one query head. Members: ``head_dim`` rows of q and
  the ``head_dim`` columns of o_proj that read it; every KV head stays. Query head ``h`` reads KV
  head ``h // group`` (transformers' ``repeat_kv`` layout), so a layer keeps the same number of query
  heads in each of its groups (:func:`arrange` gives the scores that shape) and stays a plain
  grouped-query layer of a smaller group.
* MLP: one channel. Members: a row of gate and of up and a column of down_proj.

Where those projections live is the family's *layout* (:data:`MEMBERS`): ``separate`` (LLaMA,
Mistral, Qwen2/2.5 with their q/k/v biases, Qwen3 and Gemma 3 with their q/k norms, which act on
``head_dim`` and so never change) or ``fused`` (Phi-3: q, k and v are parts of one ``qkv_proj``,
gate and up the two halves of ``gate_up_proj``). A fused member lists its :class:`Part` s in order
along the cut axis; a part the unit kind does not own (k and v when query heads go) stays whole.

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

ATTENTION = "attention"  # KV groups
QUERY = "query"  # query heads within their KV groups
MLP = "mlp"


@dataclasses.dataclass(frozen=True)
class Part:
    """A stretch of a weight along its cut axis: ``count`` units of that kind, ``width`` rows/columns
    each (``"query"``: group * head_dim, ``"kv"`` and ``"head"``: head_dim, ``"channel"``: 1). The
    member's unit kind owns it, or (``owned=False``) it stays whole."""

    width: str
    count: str
    owned: bool = True


@dataclasses.dataclass(frozen=True)
class Member:
    """One weight of a unit kind: ``module`` (path inside a decoder layer), the ``axis`` it is cut
    along, and its ``parts`` in order along that axis (one for a plain projection)."""

    module: str
    axis: int
    parts: tuple[Part, ...]


def _plain(module: str, axis: int, width: str, kind: str) -> Member:
    return Member(module, axis, (Part(width, kind),))


_KV_KEPT = Part("kv", ATTENTION, owned=False)  # k or v inside a fused qkv when query heads go

#: layout -> unit kind -> its members
MEMBERS: dict[str, dict[str, tuple[Member, ...]]] = {
    "separate": {
        ATTENTION: (_plain("self_attn.q_proj", ROWS, "query", ATTENTION), _plain("self_attn.k_proj", ROWS, "kv", ATTENTION),
                    _plain("self_attn.v_proj", ROWS, "kv", ATTENTION), _plain("self_attn.o_proj", COLS, "query", ATTENTION)),
        QUERY: (_plain("self_attn.q_proj", ROWS, "head", QUERY), _plain("self_attn.o_proj", COLS, "head", QUERY)),
        MLP: (_plain("mlp.gate_proj", ROWS, "channel", MLP), _plain("mlp.up_proj", ROWS, "channel", MLP),
              _plain("mlp.down_proj", COLS, "channel", MLP)),
    },
    "fused": {
        ATTENTION: (Member("self_attn.qkv_proj", ROWS, (Part("query", ATTENTION), Part("kv", ATTENTION), Part("kv", ATTENTION))),
                    _plain("self_attn.o_proj", COLS, "query", ATTENTION)),
        QUERY: (Member("self_attn.qkv_proj", ROWS, (Part("head", QUERY), _KV_KEPT, _KV_KEPT)),
                _plain("self_attn.o_proj", COLS, "head", QUERY)),
        MLP: (Member("mlp.gate_up_proj", ROWS, (Part("channel", MLP), Part("channel", MLP))),
              _plain("mlp.down_proj", COLS, "channel", MLP)),
    },
}
#: layout -> where a layer's KV head count is read: the k projection's rows, or what of the fused
#: qkv's rows the query heads (o_proj's columns) leave, halved
KV_SOURCES = {"separate": ("self_attn.k_proj", 1), "fused": ("self_attn.qkv_proj", 2)}


#: ``attention_unit`` -> the unit kind attention is pruned in
ATTENTION_UNITS = {"kv_group": ATTENTION, "query_head": QUERY}


@dataclasses.dataclass(frozen=True)
class Geometry:
    """What the unit widths depend on: ``head_dim``, query heads per KV head (``group``: the
    config's, or one layer's by :meth:`at`) and the ``family`` (a key of
    :data:`tailored_harness.models.modeling_tailored.FAMILIES`), whose layout places the members."""

    head_dim: int
    group: int
    family: str = "llama"

    @classmethod
    def of(cls, config) -> "Geometry":
        """The geometry of a model of a supported family (else one line naming the supported ones)."""
        from tailored_harness.models.families import family_of

        family = family_of(config)
        heads, kv = config.num_attention_heads, config.num_key_value_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(head_dim=head_dim, group=heads // kv, family=family.name)

    def at(self, layer) -> "Geometry":
        """This geometry with decoder ``layer``'s own group, read from its widths."""
        units = layer_units(layer, self)
        return dataclasses.replace(self, group=units[QUERY] // units[ATTENTION])

    def width(self, name: str) -> int:
        return {"query": self.group * self.head_dim, "kv": self.head_dim, "head": self.head_dim, "channel": 1}[name]

    @property
    def layout(self) -> str:
        from tailored_harness.models.modeling_tailored import FAMILIES

        return FAMILIES[self.family].layout

    def members(self, kind: str) -> tuple[Member, ...]:
        return MEMBERS[self.layout][kind]


def layer_units(layer, geometry: Geometry) -> dict[str, int]:
    """Current unit counts of a decoder layer: ``{attention: kv groups, query: query heads, mlp: channels}``,
    read from its weights (o_proj's and down_proj's columns, and the layout's :data:`KV_SOURCES`)."""
    heads = layer.self_attn.o_proj.in_features // geometry.head_dim
    source, share = KV_SOURCES[geometry.layout]
    rows = submodule(layer, source).out_features
    kv_rows = rows if share == 1 else (rows - heads * geometry.head_dim) // share
    return {ATTENTION: kv_rows // geometry.head_dim, QUERY: heads, MLP: layer.mlp.down_proj.in_features}


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


def member_index(member: Member, units: "torch.Tensor", counts: dict[str, int], geometry: Geometry) -> "torch.Tensor":
    """The rows/columns of ``member`` that ``units`` (k,) own, in order along its axis: each owned
    part's stretch for those units, each part not owned whole. ``counts``: the layer's unit counts
    (:func:`layer_units`) before anything of this kind is cut, which place the parts."""
    import torch

    pieces, offset = [], 0
    for part in member.parts:
        width = geometry.width(part.width)
        size = counts[part.count] * width
        piece = expand(units, width) if part.owned else torch.arange(size, device=units.device)
        pieces.append(piece + offset)
        offset += size
    return torch.cat(pieces)


def member_unit_scores(member: Member, per_index: "torch.Tensor", counts: dict[str, int],
                       geometry: Geometry) -> list["torch.Tensor"]:
    """Per-row (or per-column) values of ``member`` (its whole axis) -> one (units,) sum per owned
    part: a fused qkv gives q, k and v's scores apart, as three separate projections would."""
    out, offset = [], 0
    for part in member.parts:
        width = geometry.width(part.width)
        size = counts[part.count] * width
        if part.owned:
            out.append(reduce_to_units(per_index[offset:offset + size], width))
        offset += size
    return out


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
    record of its widths (``num_key_value_groups``, which ``repeat_kv`` reads, and what else its
    family keeps) becomes the new one.
    """
    from tailored_harness.models.modeling_tailored import FAMILIES, set_attention_widths

    geometry = geometry.at(layer)
    for kind, units in kept.items():
        counts = layer_units(layer, geometry)  # before this kind's cuts: they place a fused weight's parts
        for member in geometry.members(kind):
            slice_linear(submodule(layer, member.module), member.axis, member_index(member, units, counts, geometry))
    counts = layer_units(layer, geometry)
    if MLP in kept and hasattr(layer.mlp, "intermediate_size"):
        layer.mlp.intermediate_size = counts[MLP]
    heads, kv = counts[QUERY], counts[ATTENTION]
    if heads % kv:
        raise ValueError(f"{heads} query heads cannot share {kv} KV heads evenly; keep as many heads in every group")
    set_attention_widths(layer.self_attn, FAMILIES[geometry.family], heads, kv)


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
        out_member = next(m for m in geometry.members(kind) if m.axis == COLS)
        columns = member_index(out_member, torch.nonzero(dropped).flatten(), units, geometry)
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
