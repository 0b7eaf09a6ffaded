"""``PruneSpec``: everything that decides a structured pruning, validated in one place.

Pure: no torch, no file system. Each field is declared once (:func:`tailored_harness.core.options.option`)
as a ``model_args`` key of ``--model tailored`` and an option of ``tailored prune``; defaults follow LLM-Pruner (element-wise first-order Taylor,
10 calibration samples of 64 tokens).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

from tailored_harness.core import options
from tailored_harness.core.errors import TailoredError
from tailored_harness.core.options import Choice, Integer, Number, Text, check_fields, option
from tailored_harness.prune.ranking import RANKINGS

ALL_LAYERS = "all"
TASKS_SOURCE = "tasks"
LAYER_RANGE = re.compile(r"^(\d+)-(\d+)$")
CALIBRATION_SUFFIXES = (".txt", ".jsonl")
#: what attention is pruned in (:data:`tailored_harness.prune.units.ATTENTION_UNITS` maps them to unit kinds)
ATTENTION_UNITS = ("kv_group", "query_head")
#: the attention unit checkpoints were pruned in before ``attention_unit`` existed: left out of
#: :meth:`PruneSpec.to_dict`, so their fingerprints (and every cache entry named by them) still hold
HISTORICAL_ATTENTION_UNIT = "kv_group"
#: fields added after checkpoints were cached, at the value every earlier pruning used: left out of
#: :meth:`PruneSpec.to_dict` at that value, so earlier fingerprints (and cache entries) still hold
HISTORICAL = {"attention_unit": HISTORICAL_ATTENTION_UNIT, "ranking": "layer", "group_reduction": "sum"}


def _criteria() -> tuple[str, ...]:
    from tailored_harness.prune.importance import CRITERIA  # imports torch: only when a spec is checked

    return tuple(CRITERIA)


def _reductions() -> tuple[str, ...]:
    from tailored_harness.prune.importance import REDUCTIONS

    return tuple(REDUCTIONS)


def _calibration_source(value: str) -> bool:
    return value == TASKS_SOURCE or value.endswith(CALIBRATION_SUFFIXES)


@dataclasses.dataclass(frozen=True)
class PruneSpec:
    """How to prune a LLaMA-family model; each field's meaning is its declaration's help.

    A layer keeps ``floor(units * (1 - ratio))`` units, at least one; query heads are counted per KV
    group (every group keeps the same number). LLM-Pruner and Tailored-LLaMA prune layers ``4-29`` of
    LLaMA-7B's 32. Criteria are :data:`tailored_harness.prune.importance.CRITERIA`, rankings
    :data:`tailored_harness.prune.ranking.RANKINGS`, reductions
    :data:`tailored_harness.prune.importance.REDUCTIONS`; units :mod:`tailored_harness.prune.units`.
    """

    ratio: float = option(0.0, "prune_ratio", Number(0, 1, high_open=True, note=", e.g. 0.2 (0: no pruning)"),
                          "fraction of attention units and MLP channels removed per selected layer, in [0, 1); "
                          "0: no pruning", cli="--ratio")
    layers: str = option(ALL_LAYERS, "prune_layers", None,
                         "`all` or an inclusive range such as `4-29` (LLM-Pruner's and Tailored-LLaMA's setting "
                         "for 7B)", cli="--layers")
    round_to: int = option(1, "round_to", Integer(1), "kept MLP widths rounded to a multiple of this")
    importance: str = option("param_first", "importance", Choice(_criteria, "criterion"),
                             "the importance criterion: `l1`, `l2`, `random`, `vectorize`, `param_first`, "
                             "`param_second`, `param_mix`")
    calibration: str = option(TASKS_SOURCE, "calibration",
                              Text(f"be '{TASKS_SOURCE}' or a local {' or '.join(CALIBRATION_SUFFIXES)} file",
                                   _calibration_source),
                              "`tasks` (the requested tasks' training documents, in their prompts; loss on the "
                              "gold continuation) or a `.txt`/`.jsonl` file of general text (loss on every token)")
    samples: int = option(10, "calibration_samples", Integer(1),
                          "N calibration samples for the gradient criteria", cli="--samples")
    seq_len: int = option(64, "calibration_len", Integer(2),
                          "L, tokens per calibration sample (task contexts longer than L are cut from the left)",
                          cli="--seq-len")
    seed: int = option(0, "prune_seed", Integer(), "calibration order and the `random` criterion", cli="--seed")
    attention_unit: str = option(HISTORICAL_ATTENTION_UNIT, "attention_unit", Choice(ATTENTION_UNITS, "pruning unit"),
                                 "`kv_group` (a KV head with the query heads that read it) or `query_head` (query "
                                 "heads within each KV group, as many kept in every group; every KV head stays)")
    ranking: str = option(HISTORICAL["ranking"], "prune_ranking", Choice(RANKINGS, "ranking"),
                          "`layer` (each layer keeps its share: uniform widths) or `global` (one ranking over all "
                          "selected layers, LLM-Pruner's `--global_pruning`: the same total kept, at least one "
                          "unit per layer)", cli="--ranking")
    group_reduction: str = option(HISTORICAL["group_reduction"], "group_reduction", Choice(_reductions, "reduction"),
                                  "how a unit's score combines its projections' (LLM-Pruner's grouping strategy): "
                                  "`sum` or `max`")

    def __post_init__(self) -> None:
        check_fields(self)
        parse_layers(self.layers)

    @property
    def needs_calibration(self) -> bool:
        from tailored_harness.prune.importance import CRITERIA

        return CRITERIA[self.importance].needs_gradients

    @classmethod
    def from_args(cls, values: Mapping[str, Any]) -> "PruneSpec":
        """The spec named by ``model_args``-style keys, e.g. ``{"prune_ratio": 0.2, ...}``."""
        values = dict(values)
        if values.get("prune_layers") is not None:
            values["prune_layers"] = str(values["prune_layers"])  # model_args may parse a bare range oddly
        return options.from_args(cls, values)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The unit kinds scored and cut: attention's (per ``attention_unit``) and the MLP's."""
        from tailored_harness.prune.units import ATTENTION_UNITS as KINDS, MLP

        return (KINDS[self.attention_unit], MLP)

    def to_dict(self) -> dict[str, Any]:
        """The fields, less those at their historical values (see :data:`HISTORICAL`)."""
        out = dataclasses.asdict(self)
        for name, value in HISTORICAL.items():
            if out[name] == value:
                del out[name]
        return out


def parse_layers(value: str) -> tuple[int, int] | None:
    """``all`` -> ``None``; ``"A-B"`` -> ``(A, B)`` inclusive. Anything else is an error naming the forms."""
    if value == ALL_LAYERS:
        return None
    match = LAYER_RANGE.match(value) if isinstance(value, str) else None
    if not match or int(match.group(1)) > int(match.group(2)):
        raise TailoredError(f"prune_layers={value!r} must be '{ALL_LAYERS}' or an inclusive range 'A-B' with A <= B, e.g. 4-29")
    return int(match.group(1)), int(match.group(2))


def selected_layers(value: str, num_layers: int) -> list[int]:
    """The layer indices ``value`` selects in a model of ``num_layers`` layers."""
    bounds = parse_layers(value)
    if bounds is None:
        return list(range(num_layers))
    first, last = bounds
    if last >= num_layers:
        raise TailoredError(f"prune_layers={value!r} is out of range: the model has layers 0-{num_layers - 1}")
    return list(range(first, last + 1))
