"""How many units each pruned layer keeps: the rankings (strategy objects in a registry).

Pure arithmetic on unit scores; :func:`tailored_harness.prune.plan.select` then keeps each layer's
best. ``layer`` is LLM-Pruner's default (each layer keeps its share, uniform widths); ``global`` is its
``--global_pruning`` (one ranking per kind over all pruned layers).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tailored_harness.prune.units import MLP

if TYPE_CHECKING:
    import torch


def kept_units(units: int, ratio: float, round_to: int = 1) -> int:
    """Units a layer keeps: ``floor(units * (1 - ratio))``, rounded to ``round_to``, within [1, units].

    LLaMA-7B at 0.25: 32 heads -> 24, 11008 channels -> 8256 (LLM-Pruner's 5.4B model).
    """
    return _rounded(math.floor(units * (1.0 - ratio) + 1e-9), units, round_to)


def _rounded(keep: int, units: int, round_to: int) -> int:
    """``keep`` rounded to a multiple of ``round_to`` (at least one multiple), within [1, units]."""
    if round_to > 1:
        keep = round_to * max(1, round(keep / round_to))
    return max(1, min(units, keep))


def rows_of(values) -> "torch.Tensor":
    """A kind's scores as (rows, per row): grouped kinds are (groups, per group) already, others one row."""
    return values.reshape(-1, values.shape[-1]) if values.dim() == 2 else values.reshape(1, -1)


class Ranking:
    """Where units compete. ``counts(scores, ratio, round_to)`` -> ``{layer: {kind: units kept per row}}``."""

    name = "base"

    def counts(self, scores: dict, ratio: float, round_to: int) -> dict[int, dict[str, int]]:
        raise NotImplementedError


RANKINGS: dict[str, Ranking] = {}


def register_ranking(cls):
    RANKINGS[cls.name] = cls()
    return cls


@register_ranking
class PerLayer(Ranking):
    """Every layer keeps :func:`kept_units` of each kind (LLM-Pruner's default): uniform widths."""

    name = "layer"

    def counts(self, scores, ratio, round_to):
        return {layer: {kind: kept_units(values.shape[-1], ratio, round_to if kind == MLP else 1)
                        for kind, values in kinds.items()} for layer, kinds in scores.items()}


@register_ranking
class Global(Ranking):
    """One ranking per kind over all scored layers (LLM-Pruner's ``--global_pruning``).

    The total kept per kind is what :class:`PerLayer` keeps. A layer's ``c``-th slot (its ``c``-th
    best unit in every row; one row but for grouped kinds) scores the sum of those units' scores;
    every layer keeps its first slot, the best remaining slots of all layers fill the rest, so each
    layer keeps a prefix of its own order. Raw scores are compared across layers, as LLM-Pruner
    does. MLP counts are then rounded to ``round_to`` (within [1, width]).
    """

    name = "global"

    def counts(self, scores, ratio, round_to):
        import torch

        uniform = PerLayer().counts(scores, ratio, round_to)
        out = {layer: {} for layer in scores}
        for kind in sorted({kind for kinds in scores.values() for kind in kinds}):
            layers = [layer for layer in sorted(scores) if kind in scores[layer]]
            slots = [rows_of(scores[layer][kind]).sort(dim=1, descending=True, stable=True).values.sum(0) for layer in layers]
            total = sum(uniform[layer][kind] for layer in layers)
            extra = torch.cat([slot[1:] for slot in slots])
            owner = torch.cat([torch.full((len(slot) - 1,), i) for i, slot in enumerate(slots)])
            chosen = owner[torch.argsort(-extra, stable=True)[:max(0, total - len(layers))]]
            step = round_to if kind == MLP else 1
            for i, layer in enumerate(layers):
                out[layer][kind] = _rounded(1 + int((chosen == i).sum()), slots[i].numel(), step)
        return out
